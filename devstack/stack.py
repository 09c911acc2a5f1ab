"""The whole pipeline on one machine: start it, describe it, stop it.

``Stack(Options(...)).start()`` brings up, all on 127.0.0.1: moto with every
declared table (``handlers.tables.create_tables``, the definitions the Pulumi
program uses) and whatever the enabled plugins' ``local_infrastructure`` hooks
add; the SendGrid stand-in and its Event Webhook poster; the webhook's HTTP
front; the stream poller feeding the sender. Then it writes the state file
(``state``), which ``stop()`` removes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from devstack.aws import Local, LocalAWS
from devstack.eventwebhook import EventPoster, WebhookKey
from devstack.front import WebhookFront
from devstack.lambdas import Function, process_env
from devstack.poller import StreamPoller, to_queue
from devstack.sendgrid import SendGridStandIn
from handlers import dynamo, env, manager
from handlers.tables import MAIL_SENDER, SENDER, WEBHOOK, create_tables

log = logging.getLogger(__name__)

DEFAULT_STATE = Path(".devstack/state.json")
HANDLERS = {SENDER: "handlers.sender.lambda_handler", WEBHOOK: "handlers.webhook.lambda_handler"}
FINAL_STATUSES = ("sent", "rejected", "failed")
STACK_NAME = "local"


@dataclass
class Options:
    plugins: str | None = None
    """Comma-separated plugin names (None: the defaults), as ``ENABLED_PLUGINS``."""
    state_path: Path | None = DEFAULT_STATE
    """Where the state file goes (None: no file)."""
    webhook_delay: float = 0.3
    """Seconds between SendGrid accepting a mail and posting its events."""
    webhook_retry_delay: float = 0.5
    """First wait before SendGrid posts a batch again (doubling, at most 5 s)."""
    poll_interval: float = 0.1
    """Seconds between reads of an idle stream."""
    sender_max_retries: int = 3
    """Retries of a failing stream batch before it goes to the on-failure queue."""


class Stack:
    """A running local stack (``start()`` / ``stop()``, or ``with``)."""

    def __init__(self, options: Options | None = None):
        self.options = options or Options()
        self.plugins = manager.build(self.options.plugins)  # unknown names fail before anything starts
        self.state: dict = {}
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Stack":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started, newest first; remove the state file."""
        self._exit.close()

    def _start(self) -> None:
        opts = self.options
        started = time.monotonic()
        self.aws = self._started(LocalAWS())
        ddb = self.aws.client("dynamodb")
        self.key = WebhookKey()
        self.local = Local(self.aws, tables={}, public_key=self.key.public_key_b64)
        names = self.local.tables
        tables_env = create_tables(ddb, self.plugins.tables.values(),
                                   name_of=lambda t: names.setdefault(t.name, self.local.name(t.name)))
        for table in self.plugins.tables.values():
            for function in table.access:
                self.local.add_env(function, table.env_var, tables_env[table.env_var])
        sqs = self.aws.client("sqs")
        failures_queue = sqs.create_queue(QueueName=self.local.name("sender-failures"))["QueueUrl"]
        self.plugins.hook.local_infrastructure(local=self.local)

        self.poster = EventPoster(self.key, delay=opts.webhook_delay, retry_delay=opts.webhook_retry_delay)
        self.sendgrid = self._started(SendGridStandIn(on_accept=self.poster.accept))
        self.functions = {name: Function(name, handler)
                          for name, handler in {**HANDLERS, **self.local.functions}.items()}
        self.front = self._started(WebhookFront(self.functions[WEBHOOK]))
        self.fronts = {fn: self._started(WebhookFront(self.functions[fn])) for fn in self.local.routes}
        values = {"ENABLED_PLUGINS": ",".join(self.plugins.names), "SENDGRID_API_HOST": self.sendgrid.url,
                  "SENDGRID_API_KEY": self.sendgrid.api_key, "SENDGRID_WEBHOOK_PUBLIC_KEYS": self.key.public_key_b64,
                  "SENDGRID_EVENTS_STACK": STACK_NAME}
        for name, function in self.functions.items():
            reads = env.READ_BY.get(name, (env.ENABLED_PLUGINS,))  # a plugin's function: its own vars come from its hook
            function.env = {**self.aws.env, **{v.name: values[v.name] for v in reads if v.name in values},
                            **self.local.env[name]}
        self._exit.callback(process_env(self.functions.values()))
        self.poster.url = self.front.url
        self._started(self.poster)

        stream_arn = ddb.describe_table(TableName=names[MAIL_SENDER.name])["Table"]["LatestStreamArn"]
        self.poller = self._started(StreamPoller(
            self.aws.client("dynamodbstreams"), stream_arn, self.functions[SENDER], region=self.aws.region,
            on_failure=to_queue(sqs, failures_queue), interval=opts.poll_interval,
            max_retries=opts.sender_max_retries))

        self.state = {
            "pid": os.getpid(),
            "plugins": list(self.plugins.names),
            "aws_endpoint_url": self.aws.endpoint_url,
            "region": self.aws.region,
            "aws_env": self.aws.env,
            "tables": dict(names),
            "streams": {MAIL_SENDER.name: stream_arn},
            "queues": {"sender_failures": failures_queue},
            "webhook_url": self.front.url,
            "urls": {fn: front.url for fn, front in self.fronts.items()},
            "sendgrid_api_host": self.sendgrid.url,
            "sendgrid_api_key": self.sendgrid.api_key,
            "webhook_public_key": self.key.public_key_b64,
            "webhook_private_key_pem": self.key.private_key_pem,
            "env": {name: dict(function.env) for name, function in self.functions.items()},
        }
        if opts.state_path:
            write_state(Path(opts.state_path), self.state)
            self._exit.callback(remove_state, Path(opts.state_path), self.state["pid"])
        log.info("devstack up in %.1fs", time.monotonic() - started)

    def _started(self, component):
        """Start ``component`` and make ``stop()`` stop it."""
        component.start()
        self._exit.callback(component.stop)
        return component

    # --- using the running stack -------------------------------------------------------

    def table(self, logical: str) -> str:
        return self.state["tables"][logical]

    def insert(self, item: dict) -> None:
        """Put an item into the mail sender table (what a user's program does)."""
        self.aws.client("dynamodb").put_item(TableName=self.table(MAIL_SENDER.name), Item=dynamo.serialize(item))

    def scan(self, logical: str) -> list[dict]:
        """Every item of a table, as plain Python."""
        pages = self.aws.client("dynamodb").get_paginator("scan").paginate(
            TableName=self.table(logical), ConsistentRead=True)
        return [dynamo.deserialize(i) for page in pages for i in page["Items"]]

    def item(self, item_id: str) -> dict | None:
        answer = self.aws.client("dynamodb").get_item(
            TableName=self.table(MAIL_SENDER.name), Key={MAIL_SENDER.hash_key: {"S": item_id}}, ConsistentRead=True)
        return dynamo.deserialize(answer["Item"]) if "Item" in answer else None

    def settled(self, item_id: str) -> dict | None:
        """The item once its outcome is written and every webhook event of it was answered 2xx."""
        item = self.item(item_id)
        if not item or item.get("status") not in FINAL_STATUSES:
            return None
        if item["status"] == "sent" and not self.poster.settled(item["messageId"]):
            return None
        return item

    def wait_settled(self, *item_ids: str, timeout: float = 20.0) -> list[dict]:
        """``settled`` for each item, waiting at most ``timeout`` seconds in all."""
        return [wait_for(lambda i=i: self.settled(i), f"item {i!r} settled (sent and its events posted)",
                         timeout) for i in item_ids]


def wait_for(check: Callable[[], object], what: str, timeout: float = 20.0, interval: float = 0.05):
    """Call ``check`` until it returns something truthy; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"devstack: gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def write_state(path: Path, state: dict) -> None:
    """Write the state file atomically, readable by its owner only (it holds a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def read_state(path: Path = DEFAULT_STATE) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"devstack: no state file at {path}; is `python -m devstack up` running?") from None


def remove_state(path: Path, pid: int) -> None:
    """Remove the state file if it is still this process's."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
