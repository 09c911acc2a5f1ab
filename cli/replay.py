"""``replay rejects``: events the webhook set aside, run again through the plugins deployed now.

Reads the ``rejects`` table (``--since``: events since then, by the event's own time,
``--reason``: rows whose reason holds that text, ``--sink``: rows a sink
refused), then invokes the stack's webhook function with their ids, at most
``handlers.replay.MAX_ROWS`` a call (``lambda:InvokeFunction`` on it is the
permission this needs). The function replays them with the code and plugins it
runs (``handlers.replay``): exactly once, as the webhook's own marks apply. It
reports, per row, what changed: ``stored`` and ``duplicate`` rows are removed,
``rejected`` ones hold the new reason; ``ignored``, ``sink not enabled`` and
``cut`` ones stay as they were. ``--dry-run`` lists the rows without replaying.
"""

from __future__ import annotations

import json
from collections import Counter

from cli import periods
from cli.errors import CliError, Transient, UsageError
from cli.output import table
from cli.read import Reader
from handlers.functions import WEBHOOK
from handlers.replay import MAX_ROWS
from handlers.tables import REJECTS

FUNCTIONS_OUTPUT = "functionNames"
SHOWN = ("eventId", "reason", "sink", "timestamp", "replayedAt")


def register(subparsers) -> None:
    group = subparsers.add_parser("replay", help="run set-aside events again through the current plugins")
    kinds = group.add_subparsers(dest="kind", required=True, metavar="WHAT")
    parser = kinds.add_parser("rejects", help="the rejects table's events, exactly once",
                              description=__doc__.split("\n\n")[1])
    parser.add_argument("--since", type=periods.argument, metavar="AGE|DATE",
                        help="only events since (7d, 2026-11-01): the event's own time")
    parser.add_argument("--reason", help="only rows whose reason contains this text")
    parser.add_argument("--sink", help="only rows this sink refused")
    parser.add_argument("--dry-run", action="store_true", help="list the rows, replay nothing")
    parser.set_defaults(func=run)


def chosen(rows, args) -> list[dict]:
    return sorted((r for r in rows
                   if (args.since is None or (r.get("timestamp") or 0) >= args.since)
                   and (not args.reason or args.reason in str(r.get("reason")))
                   and (not args.sink or r.get("sink") == args.sink)),
                  key=lambda r: (r.get("timestamp") or 0, r["eventId"]))


def invoke(lam, function: str, ids: list[str]) -> dict:
    """One replay call; its answer, or a clear error (a replay running at the same time is transient)."""
    answer = lam.invoke(FunctionName=function, Payload=json.dumps({"replay": {"rejects": ids}}).encode())
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError"):
        kind, message = (payload or {}).get("errorType", "Error"), (payload or {}).get("errorMessage", "")
        if kind == "Busy":
            raise Transient(f"another delivery holds some of these events right now: run the replay again ({message})")
        raise CliError(f"the webhook function failed the replay: {kind}: {message}")
    return payload


def run(target, args) -> int:
    function = (target.outputs.get(FUNCTIONS_OUTPUT) or {}).get(WEBHOOK.name)
    if not function and not args.dry_run:
        raise UsageError(f"stack {target.name!r} has no {FUNCTIONS_OUTPUT!r} output naming its webhook function "
                         "(deployed before it was added? pulumi up once more)")
    rows = chosen(Reader(target, args.out).scan(REJECTS, attributes=SHOWN), args)
    outcomes: dict[str, str] = {}
    if rows and not args.dry_run:
        lam = target.client("lambda")
        with args.out.progress("replaying", len(rows)) as advance:
            for start in range(0, len(rows), MAX_ROWS):
                ids = [r["eventId"] for r in rows[start:start + MAX_ROWS]]
                outcomes.update(invoke(lam, function, ids)["outcomes"])
                advance(len(ids))
    entries = [{"eventId": r["eventId"], "time": periods.iso(r.get("timestamp")), "sink": r.get("sink"),
                "reason": r.get("reason"), "outcome": outcomes.get(r["eventId"], "not replayed")} for r in rows]
    counts = dict(Counter(e["outcome"] for e in entries))

    def render(console):
        console.print(table(f"{len(entries)} reject(s){' (dry run)' if args.dry_run else ''}: "
                            + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
                            ("event time", "sink", "reason", "outcome"),
                            [(e["time"], e["sink"], e["reason"], e["outcome"]) for e in entries]))

    args.out.result({"count": len(entries), "counts": counts, "rejects": entries}, render)
    return 0
