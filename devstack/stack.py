"""The whole pipeline on one machine: the Pulumi program applied to moto, then run.

``Stack(Options(...)).start()`` brings up, all on 127.0.0.1: moto with IAM
enforced (``devstack.aws``), the SendGrid stand-in (its webhook settings in
``devstack.webhooks``), and the API front. Then it runs the Pulumi program
itself (``__main__.py``, with this stack's config: ``sendgridApiBaseUrl`` is
the stand-in) and applies every resource it registers (``devstack.apply``):
AWS resources to moto, the SendGrid settings through their dynamic provider
to the stand-in, which then posts each accepted mail's events to the webhook
the program created, signed with that webhook's key. With
``manageSendgridWebhook: false`` the stack does what a person does in
SendGrid's console instead (a webhook, signing, its key into the config, the
URL pasted in after the deploy). Then it runs the pipeline on what was
applied (``devstack.applied``): each function in processes of its own with
exactly the applied environment and the credentials of its role
(``devstack.lambdas``), the front serving the applied routes (a Lambda
proxy, or with ``ingest: queue`` the SQS integration, as its role), the
pollers following the applied event source mappings (the stream's, the
ingest queue's). Then it writes the state file
(``state``), which ``stop()`` removes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from devstack import applied, http, messages
from devstack.apply import Applier, ApplyError
from devstack.aws import LocalAWS, queue_url
from devstack.eventwebhook import EventPoster, WebhookKey, batch_body
from devstack.front import ApiFront, Services
from devstack.invoke import LambdaApi
from devstack.lambdas import Function
from devstack.poller import StreamPoller, to_queue
from devstack.queue_poller import QueuePoller
from devstack.sendgrid import SendGridStandIn
from devstack.state import DEFAULT_STATE, QUEUE_OUTPUTS, queue_urls, remove_state, write_state
from devstack.webhooks import WebhookAccount
from handlers import dynamo, env, manager
from handlers.tables import MAIL_SENDER
from infra import offline, sendgrid
from infra.config import NAMESPACE

log = logging.getLogger(__name__)

FINAL_STATUSES = ("sent", "rejected", "failed")
STACK_NAME = "local"
PREFIX = f"{offline.PROJECT}-{STACK_NAME}-"  # the program names each function's resource <project>-<stack>-<function>
FUNCTION = "aws:lambda/function:Function"
TOPIC = "aws:sns/topic:Topic"
PARSE_HOSTNAME = "parse.local.test"
# What API Gateway's DNS name is locally: the front (``https://<id>.execute-api.<region>.amazonaws.com/<path>``).
EXECUTE_API = re.compile(r"^https://[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?(?P<path>/.*)$")


@dataclass
class Options:
    plugins: str | None = None
    """Comma-separated plugin names (None: the defaults), the stack's ``plugins``."""
    settings: dict[str, object] = field(default_factory=dict)
    """More stack config (key without namespace -> value), as ``pulumi config set`` would set it."""
    state_path: Path | None = DEFAULT_STATE
    """Where the state file goes (None: no file)."""
    webhook_delay: float = 0.3
    """Seconds between SendGrid accepting a mail and posting its events."""
    webhook_retry_delay: float = 0.5
    """First wait before SendGrid posts a batch again (doubling, at most 5 s)."""
    poll_interval: float = 0.1
    """Seconds between reads of an idle stream."""
    queue_retry_delay: float = 1.0
    """Seconds a failed queued post stays hidden before it is received again (the queue's visibility
    timeout, 174 s in AWS: compressed locally; whole seconds, at least 1)."""
    sender_max_retries: int = 3
    """The stack's ``streamMaximumRetryAttempts``: retries of a failing stream batch."""
    plugin_paths: tuple[Path, ...] = ()
    """Folders of plugins under development: on the program's path and the functions' (as a layer)."""


class Stack:
    """A running local stack (``start()`` / ``stop()``, or ``with``)."""

    def __init__(self, options: Options | None = None):
        self.options = options or Options()
        with _on_path(self.options.plugin_paths):
            self.plugins = manager.build(self.options.plugins, source="--plugins")  # before anything starts
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

    @property
    def managed(self) -> bool:
        """Whether the program configures the stand-in (``manageSendgridWebhook``, default true)."""
        return str(self.options.settings.get("manageSendgridWebhook", True)).lower() != "false"

    def config(self) -> dict[str, str]:
        """The stack config the program gets, as the CLI hands it (``namespace:key`` -> text)."""
        values = {"sendgridApiKey": self.sendgrid.api_key, "sendgridApiBaseUrl": self.sendgrid.url,
                  "plugins": list(self.plugins.names), "inboundParseHostname": PARSE_HOSTNAME,
                  "streamMaximumRetryAttempts": self.options.sender_max_retries, **self._by_hand()}
        values.update(self.options.settings)
        return {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}

    def _by_hand(self) -> dict[str, list[str]]:
        """The keys a person copies from SendGrid's console into the config (``manageSendgridWebhook: false``)."""
        if self._manual is None:
            return {}
        webhook, policy = self._manual
        return {"webhookPublicKeys": [self.webhooks.webhooks[webhook].key.public_key_b64],
                "inboundPublicKeys": [self.webhooks.policies[policy].key.public_key_b64]}

    def _configure_by_hand(self) -> tuple[str, str]:
        """README Deploy's manual steps before ``pulumi up``: a webhook with a placeholder URL and the
        plugins' event types, signing on, a signature security policy. Their ids."""
        flags, _unknown = sendgrid.flags_for(self.plugins.event_types)
        _, made = self.webhooks.handle("POST", sendgrid.EVENT_SETTINGS, {
            "url": "https://placeholder.invalid/", "enabled": True, **{f: True for f in flags}})
        self.webhooks.handle("PATCH", f"{sendgrid.EVENT_SETTINGS}/signed/{made['id']}", {"enabled": True})
        _, policy = self.webhooks.handle("POST", sendgrid.POLICIES, {"name": "by hand", "signature": {"enabled": True}})
        return made["id"], policy["policy"]["id"]

    def _start(self) -> None:
        opts = self.options
        started = time.monotonic()
        self.aws = self._started(LocalAWS())
        self.front = self._started(ApiFront())
        self.webhooks = WebhookAccount(poster=self._poster, resolve=self.resolve)
        self.sendgrid = self._started(SendGridStandIn(webhooks=self.webhooks))
        self._exit.callback(self.webhooks.stop)
        self._manual = None if self.managed else self._configure_by_hand()

        self.applier = Applier(self.aws, self.front.base_url)
        with _on_path(opts.plugin_paths):
            try:
                program = offline.run(self.config(), self.applier, stack=STACK_NAME,
                                      secret_keys=(f"{NAMESPACE}:sendgridApiKey",))
            except ApplyError:
                raise self.applier.errors[0] from None
        self.program = program
        """What the program registered: every resource, with what was made for it (``offline.Result``)."""
        self.outputs = program.resolved_outputs()

        self.functions = self._functions()
        by_lambda_name = {f.lambda_name: f for f in self.functions.values()}
        routes = applied.routes(self.aws)
        roles = {r.service.credentials for r in routes if r.service is not None}
        self.front.serve(routes, by_lambda_name, Services(self.aws.endpoint_url, self.aws.region, {
            role: applied.credentials_for(self.aws, role.rsplit("/", 1)[1], role) for role in roles}))
        self.lambda_api = self._started(LambdaApi(self.aws.endpoint_url))
        self.lambda_api.serve(by_lambda_name)
        [mapping] = applied.stream_mappings(self.aws)
        sender = by_lambda_name[mapping.function]
        on_failure = None
        if mapping.on_failure:  # Lambda finds the queue; it sends with the function's role
            url = queue_url(self.aws.client("sqs"), mapping.on_failure)
            on_failure = to_queue(self.aws.client("sqs", sender.credentials), url)
        self.poller = self._started(StreamPoller(
            self.aws.client("dynamodbstreams", sender.credentials), mapping, sender, region=self.aws.region,
            on_failure=on_failure, interval=opts.poll_interval))
        self.queue_pollers = [self._started(QueuePoller(
            self.aws.client("sqs", by_lambda_name[m.function].credentials), m, by_lambda_name[m.function],
            region=self.aws.region, interval=opts.poll_interval, retry_delay=opts.queue_retry_delay))
            for m in applied.queue_mappings(self.aws)]
        self.topics = {made.outputs["name"]: made.outputs["arn"] for made in self.program.of_type(TOPIC)}
        self.messages_queue = messages.subscribe(self.aws.client("sqs"), self.aws.client("sns"), PREFIX,
                                                 list(self.topics.values()))
        self._sendgrid_settings()
        self.state = self._state(mapping)
        if opts.state_path:
            write_state(Path(opts.state_path), self.state)
            self._exit.callback(remove_state, Path(opts.state_path), self.state["pid"])
        log.info("devstack up in %.1fs", time.monotonic() - started)

    def _poster(self, url: str, key: WebhookKey | None) -> EventPoster:
        """A started poster for one of the stand-in's webhooks."""
        return self._started(EventPoster(key, url=url, delay=self.options.webhook_delay,
                                         retry_delay=self.options.webhook_retry_delay))

    def resolve(self, url: str) -> str:
        """Where a URL SendGrid was given is served here: an API Gateway host is the local front."""
        found = EXECUTE_API.match(url)
        return self.front.base_url + found["path"] if found else url

    def _sendgrid_settings(self) -> None:
        """The stand-in's webhook the program made (or, by hand, the one whose URL is now pasted in):
        ``poster`` posts its events, ``key`` signs them; ``inbound_key`` signs Inbound Parse posts."""
        if self.managed:
            webhook_id, policy_id = self.outputs["webhookId"], self.outputs.get("inboundPolicyId")
        else:  # after the deploy, the person pastes the webhook URL into SendGrid
            webhook_id, policy_id = self._manual
            self.webhooks.handle("PATCH", f"{sendgrid.EVENT_SETTINGS}/{webhook_id}", {"url": self.outputs["webhookUrl"]})
        self.key = self.webhooks.webhooks[webhook_id].key
        self.poster = self.webhooks.poster_of(webhook_id)
        self.inbound_key = self.webhooks.policies[policy_id].key if policy_id in self.webhooks.policies else None

    def _functions(self) -> dict[str, Function]:
        """Every applied function, started (their cold starts side by side), by logical name."""
        lam = self.aws.client("lambda")
        functions = {}
        for made in self.program.of_type(FUNCTION):
            name = made.outputs["name"]
            config = lam.get_function_configuration(FunctionName=name)
            credentials = applied.credentials_for(self.aws, name, config["Role"])
            package = self._unpacked(name)
            function = Function(
                name=made.name.removeprefix(PREFIX), handler=config["Handler"], package=package,
                env={**config.get("Environment", {}).get("Variables", {}),
                     **self.aws.env(credentials),
                     "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config["MemorySize"]),
                     env.SENDGRID_API_HOST.name: self.sendgrid.url},  # the stand-in, not the real API
                timeout=config["Timeout"], lambda_name=name, credentials=credentials,
                extra_paths=tuple(str(p) for p in self.options.plugin_paths))
            functions[function.name] = function
        with ThreadPoolExecutor(len(functions)) as pool:
            list(pool.map(lambda f: self._started(f), functions.values()))
        return functions

    def _unpacked(self, function_name: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=f"devstack-{function_name}-"))
        self._exit.callback(shutil.rmtree, folder, ignore_errors=True)
        zipfile.ZipFile(io.BytesIO(self.applier.archives[function_name])).extractall(folder)
        return folder

    def _state(self, mapping) -> dict:
        urls = {k.removesuffix("Url"): v for k, v in self.outputs.items()
                if k.endswith("Url") and k not in QUEUE_OUTPUTS.values()}
        return {
            "pid": os.getpid(),
            "plugins": list(self.plugins.names),
            "aws_endpoint_url": self.aws.endpoint_url,
            "region": self.aws.region,
            "aws_env": {**self.aws.env(), "AWS_ENDPOINT_URL_LAMBDA": self.lambda_api.base_url},
            "tables": dict(self.outputs["tableNames"]),
            "streams": {MAIL_SENDER.name: mapping.stream_arn},
            "queues": {**queue_urls(self.outputs), "messages": self.messages_queue},
            "topics": self.topics,
            "webhook_url": urls.pop("webhook"),
            "urls": urls,
            "outputs": self.outputs,
            "sendgrid_api_host": self.sendgrid.url,
            "sendgrid_api_key": self.sendgrid.api_key,
            "webhook_public_key": self.key.public_key_b64,
            "webhook_private_key_pem": self.key.private_key_pem,
            **({"inbound_public_key": self.inbound_key.public_key_b64,
                "inbound_private_key_pem": self.inbound_key.private_key_pem} if self.inbound_key else {}),
            "env": {name: dict(function.env) for name, function in self.functions.items()},
        }

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

    def post(self, events: list, key: WebhookKey | None = None) -> tuple[int, bytes]:
        """Post ``events`` to the webhook URL as SendGrid does, signed with ``key`` (the webhook's own unless
        told); the status and the answer."""
        body = batch_body(events)
        return http.post(self.state["webhook_url"], body, (key or self.key).headers(body))

    def messages(self, wait: int = 0) -> list[dict]:
        """What SNS published since the last call (``devstack.messages``), oldest first."""
        return messages.take(self.aws.client("sqs"), self.messages_queue, wait)

    def item(self, item_id: str) -> dict | None:
        answer = self.aws.client("dynamodb").get_item(
            TableName=self.table(MAIL_SENDER.name), Key={MAIL_SENDER.hash_key: {"S": item_id}}, ConsistentRead=True)
        return dynamo.deserialize(answer["Item"]) if "Item" in answer else None

    def settled(self, item_id: str) -> dict | None:
        """The item once its outcome is written, every webhook event of it was answered 2xx, and the ingest
        queue (if any) is empty."""
        item = self.item(item_id)
        if not item or item.get("status") not in FINAL_STATUSES:
            return None
        if item["status"] == "sent" and not self.poster.settled(item["messageId"]):
            return None
        return item if self.drained() else None

    def drained(self) -> bool:
        """Whether every queued webhook post was processed (``ingest: queue``; always true when direct)."""
        return all(p.drained() for p in self.queue_pollers)

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


@contextlib.contextmanager
def _on_path(paths):
    """``paths`` first on ``sys.path`` while the program runs (plugins under development)."""
    import importlib
    import sys

    saved = list(sys.path)
    sys.path[:0] = [str(p) for p in paths]
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = saved
