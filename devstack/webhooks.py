"""The SendGrid stand-in's webhook settings: the Webhooks API v3, and who gets which events.

``WebhookAccount`` keeps what a SendGrid account keeps: Event Webhooks (id,
URL, friendly name, enabled, event flags, and while signing is on, a P-256
key of its own), webhook security policies (each with its own key) and
Inbound Parse settings (by hostname). ``handle(method, path, body)`` answers
the API calls the program's dynamic providers make (``infra.sendgrid``), with
SendGrid's paths, shapes and statuses (201 on create, 204 on delete, 404 with
``errors`` for an unknown id).

``accept(accepted)`` is the stand-in's ``on_accept``: the events of an
accepted mail go to every enabled webhook configured through the API, only
the types its flags enable, signed with its own key, by an ``EventPoster`` of
its own. ``resolve`` turns the URL SendGrid was given into where it is served
on this machine (an ``execute-api`` host to the local API front, as DNS would).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from devstack.eventwebhook import LOOPBACK, EventPoster, WebhookKey
from devstack.sendgrid import Accepted, events_for
from infra.sendgrid import EVENT_SETTINGS, FLAGS, PARSE_SETTINGS, POLICIES, flags_for

log = logging.getLogger(__name__)

MAX_WEBHOOKS = 10  # SendGrid's limit per account


@dataclass
class Webhook:
    id: str
    url: str
    friendly_name: str | None = None
    enabled: bool = True
    flags: set[str] = field(default_factory=set)
    key: WebhookKey | None = None
    """Set while signing is on; a new one each time it is turned on."""

    def settings(self) -> dict:
        return {"id": self.id, "url": self.url, "friendly_name": self.friendly_name, "enabled": self.enabled,
                **{flag: flag in self.flags for flag in FLAGS}}

    def wants(self, event: dict) -> bool:
        flags, _unknown = flags_for([event.get("event")])
        return bool(flags) and flags[0] in self.flags


@dataclass
class Policy:
    id: str
    name: str
    key: WebhookKey

    def settings(self) -> dict:
        return {"policy": {"id": self.id, "name": self.name,
                           "signature": {"public_key": self.key.public_key_b64}}}


def _error(status: int, message: str) -> tuple[int, dict]:
    return status, {"errors": [{"field": None, "message": message}]}


class WebhookAccount:
    """One account's webhook settings; ``poster(url, key)`` makes a started poster for a webhook."""

    def __init__(self, poster: Callable[[str, WebhookKey | None], EventPoster] | None = None,
                 resolve: Callable[[str], str] = lambda url: url):
        self.poster, self.resolve = poster, resolve
        self.webhooks: dict[str, Webhook] = {}
        self.policies: dict[str, Policy] = {}
        self.parse: dict[str, dict] = {}
        self.posters: dict[str, EventPoster] = {}
        self._lock = threading.RLock()

    # --- events ------------------------------------------------------------------------

    def accept(self, accepted: Accepted) -> None:
        """The events of an accepted mail, to each enabled webhook: the types it enabled."""
        events = events_for(accepted)
        with self._lock:
            for webhook in self.webhooks.values():
                poster = self.poster_of(webhook.id) if webhook.enabled else None
                if poster is not None:
                    poster.enqueue([e for e in events if webhook.wants(e)], message_ids=[accepted.message_id])

    def poster_of(self, webhook_id: str) -> EventPoster | None:
        """The webhook's poster (made on first use), following its URL and key; None when its URL is
        not served on this machine."""
        with self._lock:
            webhook = self.webhooks[webhook_id]
            url = self.resolve(webhook.url)
            if urlsplit(url).hostname not in LOOPBACK or self.poster is None:
                log.warning("stand-in: webhook %s posts to %s, which is not served here", webhook_id, url)
                return None
            poster = self.posters.get(webhook_id)
            if poster is None:
                poster = self.posters[webhook_id] = self.poster(url, webhook.key)
            poster.url, poster.key = url, webhook.key
            return poster

    def stop(self) -> None:
        for poster in self.posters.values():
            poster.stop()

    # --- the API -----------------------------------------------------------------------

    def handle(self, method: str, path: str, body) -> tuple[int, dict | None]:
        """SendGrid's answer (status, JSON body) to a Webhooks API call."""
        path = path.split("?", 1)[0].rstrip("/")
        with self._lock:
            for prefix, handler in ((f"{EVENT_SETTINGS}/signed", self._signed), (EVENT_SETTINGS, self._event),
                                    (POLICIES, self._policy), (PARSE_SETTINGS, self._parse)):
                if path == prefix or path.startswith(prefix + "/"):
                    return handler(method, path[len(prefix) + 1:], body if isinstance(body, dict) else {})
        return _error(404, "Not Found")

    def _event(self, method: str, ident: str, body: dict):
        if not ident and method == "POST":
            if len(self.webhooks) >= MAX_WEBHOOKS:
                return _error(400, f"the maximum number of webhooks ({MAX_WEBHOOKS}) is reached")
            if not str(body.get("url", "")).startswith(("https://", "http://")):
                return _error(400, "url is required and must be a valid URL")
            webhook = Webhook(uuid.uuid4().hex, body["url"])
            self._apply(webhook, body)
            self.webhooks[webhook.id] = webhook
            return 201, webhook.settings()
        if ident == "all" and method == "GET":
            return 200, {"max_allowed": MAX_WEBHOOKS, "webhooks": [w.settings() for w in self.webhooks.values()]}
        webhook = self.webhooks.get(ident)
        if webhook is None:
            return _error(404, "webhook not found")
        if method == "GET":
            return 200, webhook.settings()
        if method == "PATCH":
            self._apply(webhook, body)
            return 200, webhook.settings()
        if method == "DELETE":
            del self.webhooks[ident]
            poster = self.posters.pop(ident, None)
            if poster:
                poster.stop()
            return 204, None
        return _error(405, "Method Not Allowed")

    @staticmethod
    def _apply(webhook: Webhook, body: dict) -> None:
        webhook.url = body.get("url", webhook.url)
        webhook.friendly_name = body.get("friendly_name", webhook.friendly_name)
        webhook.enabled = bool(body.get("enabled", webhook.enabled))
        webhook.flags = {f for f in FLAGS if body.get(f, f in webhook.flags)}

    def _signed(self, method: str, ident: str, body: dict):
        webhook = self.webhooks.get(ident)
        if webhook is None:
            return _error(404, "webhook not found")
        if method == "PATCH":
            if not isinstance(body.get("enabled"), bool):
                return _error(400, "enabled is required")
            if body["enabled"] and webhook.key is None:
                webhook.key = WebhookKey()  # a new key pair each time signing is turned on
            elif not body["enabled"]:
                webhook.key = None
            if ident in self.posters:
                self.posters[ident].key = webhook.key
        elif method != "GET":
            return _error(405, "Method Not Allowed")
        return 200, {"id": ident, "public_key": webhook.key.public_key_b64 if webhook.key else ""}

    def _policy(self, method: str, ident: str, body: dict):
        if not ident and method == "POST":
            if not body.get("name") or not (body.get("signature") or body.get("oauth")):
                return _error(400, "a name and one of signature or oauth are required")
            policy = Policy(uuid.uuid4().hex, body["name"], WebhookKey())
            self.policies[policy.id] = policy
            return 201, policy.settings()
        policy = self.policies.get(ident)
        if policy is None:
            return _error(404, "policy not found")
        if method == "PATCH":
            policy.name = body.get("name", policy.name)
        elif method == "DELETE":
            del self.policies[ident]
            return 204, None
        return 200, policy.settings()

    def _parse(self, method: str, ident: str, body: dict):
        if not ident and method == "POST":
            hostname = body.get("hostname")
            if not hostname or not body.get("url"):
                return _error(400, "hostname and url are required")
            if hostname in self.parse:
                return _error(400, "A parse setting for this hostname already exists")
            if body.get("security_policy") and body["security_policy"] not in self.policies:
                return _error(400, "security_policy not found")
            self.parse[hostname] = {"hostname": hostname, "url": body["url"], "spam_check": False,
                                    "send_raw": False, "security_policy": None,
                                    **{k: body[k] for k in ("spam_check", "send_raw", "security_policy") if k in body}}
            return 201, self.parse[hostname]
        setting = self.parse.get(ident)
        if setting is None:
            return _error(404, "parse setting not found")
        if method == "PATCH":
            setting.update({k: body[k] for k in ("url", "spam_check", "send_raw", "security_policy") if k in body})
        elif method == "DELETE":
            del self.parse[ident]
            return 204, None
        return 200, setting
