"""``sendgrid-events``: the operator's command line (``python -m cli``).

Answers what the pipeline recorded (a mail's story, who to stop mailing and
why, bounce rates) and acts on it, on a deployed stack or on the local one
(``cli.target``). One module per command, each with ``register(subparsers)``;
``cli.__main__`` parses, finds the target and turns errors into one line.
"""
