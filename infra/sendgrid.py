"""SendGrid as Pulumi resources: the Event Webhook (signed), an Inbound Parse security policy and setting.

Dynamic providers (``pulumi.dynamic``) over SendGrid's Webhooks API v3
(``infra.sendgrid_client``). Every resource's inputs carry the API key
(``apiKey``, a secret) and the API's base URL (``baseUrl``: the EU data
residency one, or the local stand-in's), so that ``delete`` and ``read``,
which Pulumi hands the stored state only, can call SendGrid too. The key and
the URLs (their path is a secret) are additional secret outputs: encrypted in
the state, ``[secret]`` in outputs. Public keys are not secret.

State and diff: the resource's id is SendGrid's (a webhook or policy id, or
the parse hostname); the state is the inputs plus what SendGrid made (the
public key). ``diff`` compares the inputs that SendGrid holds (and the API
key, so that the stored one is the key ``delete`` will use): a change of
``baseUrl`` (another region is another account) or of a parse hostname
replaces the resource, any other change updates it in place, and equal
inputs are no change. ``read`` (``pulumi refresh``) reads SendGrid's
settings back; a resource gone from SendGrid reads as deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from infra.sendgrid_client import Client, SendGridError

# SendGrid's Event Webhook flags; each event type a plugin registers turns one on.
FLAGS = ("bounce", "click", "deferred", "delivered", "dropped", "group_resubscribe", "group_unsubscribe",
         "open", "processed", "spam_report", "unsubscribe")
# Event types whose flag has another name ("blocked" is a bounce type, reported under "bounce").
FLAG_OF = {"spamreport": "spam_report", "blocked": "bounce"}
EVENT_SETTINGS = "/v3/user/webhooks/event/settings"
POLICIES = "/v3/user/webhooks/security/policies"
PARSE_SETTINGS = "/v3/user/webhooks/parse/settings"
# The API key, and the URLs (their random path is what keeps strangers out). Public keys are not secret:
# SendGrid shows them to anyone with console access, and they only verify.
SECRET_OUTPUTS = ["apiKey", "url"]


def flags_for(event_types) -> tuple[list[str], list[str]]:
    """(SendGrid flags to turn on, sorted; event types SendGrid has no flag for)."""
    flags, unknown = set(), []
    for event_type in event_types:
        flag = FLAG_OF.get(event_type, event_type)
        (flags.add(flag) if flag in FLAGS else unknown.append(event_type))
    return sorted(flags), unknown


@dataclass(frozen=True)
class Access:
    """How the program reaches SendGrid's API: the stack's API key (a secret ``Output``) and base URL."""

    api_key: pulumi.Input[str]
    base_url: str


class _Provider(ResourceProvider):
    """What every SendGrid provider shares: its client, the diff, create/update/read's outputs."""

    kind = "resource"
    collection = ""
    """The API path of the resources (``<collection>/<id>`` is one)."""
    compared: tuple[str, ...] = ()
    """Inputs SendGrid holds: a change is an update."""
    replaced: tuple[str, ...] = ("baseUrl",)
    """Inputs whose change makes a new resource."""
    backoff = 1.0
    """First wait (seconds, doubling) before a 5xx or unanswered call is retried."""

    def client(self, props: dict, name: str | None = None) -> Client:
        return Client(props["apiKey"], props["baseUrl"], f"SendGrid {self.kind} {name or props.get('name')!r}",
                      backoff=self.backoff)

    def diff(self, _id: str, olds: dict, news: dict) -> DiffResult:
        replaces = [k for k in self.replaced if olds.get(k) != news.get(k)]
        changed = [k for k in (*self.compared, "apiKey") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=bool(replaces))

    def delete(self, id_: str, props: dict) -> None:
        self.client(props).call("DELETE", f"{self.collection}/{id_}", missing_ok=True)  # gone already: fine

    def read(self, id_: str, props: dict) -> ReadResult:
        found = self.client(props).call("GET", f"{self.collection}/{id_}", missing_ok=True)
        if found is None:  # gone from SendGrid: the engine drops it from the state
            return ReadResult(None, {})
        return ReadResult(id_, {**props, **self.live(id_, props, found)})

    def live(self, id_: str, props: dict, found: dict) -> dict:
        """The resource's inputs and outputs as SendGrid holds them (``found``: its answer to a GET)."""
        raise NotImplementedError


class EventWebhookProvider(_Provider):
    """An Event Webhook; inputs ``url``, ``name``, ``eventTypes`` (flags), ``keyVersion``, and ``enabled``
    and ``signed`` (always true: a refresh that finds either turned off in the console makes the next
    ``pulumi up`` turn it on again)."""

    kind = "Event Webhook"
    collection = EVENT_SETTINGS
    compared = ("url", "name", "eventTypes", "keyVersion", "enabled", "signed")

    @staticmethod
    def body(props: dict) -> dict:
        return {"enabled": props["enabled"], "url": props["url"], "friendly_name": props["name"],
                **{flag: flag in props["eventTypes"] for flag in FLAGS}}

    def create(self, props: dict) -> CreateResult:
        client = self.client(props)
        webhook_id = client.call("POST", EVENT_SETTINGS, self.body(props))["id"]
        try:
            public_key = self._signed(client, webhook_id)
        except SendGridError:
            client.call("DELETE", f"{EVENT_SETTINGS}/{webhook_id}", missing_ok=True)  # create is all or nothing
            raise
        return CreateResult(webhook_id, {**props, "webhookId": webhook_id, "publicKey": public_key})

    def update(self, id_: str, olds: dict, news: dict) -> UpdateResult:
        client = self.client(news)
        client.call("PATCH", f"{EVENT_SETTINGS}/{id_}", self.body(news))
        if olds.get("keyVersion") != news.get("keyVersion") or not olds.get("signed"):
            client.call("PATCH", f"{EVENT_SETTINGS}/signed/{id_}", {"enabled": False})  # a new key: off, on
            public_key = self._signed(client, id_)
        else:
            public_key = client.call("GET", f"{EVENT_SETTINGS}/signed/{id_}")["public_key"]
        return UpdateResult({**news, "webhookId": id_, "publicKey": public_key})

    def live(self, id_: str, props: dict, found: dict) -> dict:
        signed = self.client(props).call("GET", f"{EVENT_SETTINGS}/signed/{id_}", missing_ok=True) or {}
        return {"url": found["url"], "name": found.get("friendly_name"), "webhookId": id_,
                "eventTypes": sorted(f for f in FLAGS if found.get(f)), "enabled": bool(found.get("enabled")),
                "signed": bool(signed.get("public_key")), "publicKey": signed.get("public_key")}

    @staticmethod
    def _signed(client: Client, webhook_id: str) -> str:
        """Turn signing on; SendGrid's public key for the webhook."""
        answer = client.call("PATCH", f"{EVENT_SETTINGS}/signed/{webhook_id}", {"enabled": True}) or {}
        return answer.get("public_key") or client.call("GET", f"{EVENT_SETTINGS}/signed/{webhook_id}")["public_key"]


class SecurityPolicyProvider(_Provider):
    """A webhook security policy with signature verification (for Inbound Parse); input ``name``."""

    kind = "security policy"
    collection = POLICIES
    compared = ("name",)

    def create(self, props: dict) -> CreateResult:
        policy = self.client(props).call("POST", POLICIES, {"name": props["name"],
                                                            "signature": {"enabled": True}})["policy"]
        return CreateResult(policy["id"], {**props, "policyId": policy["id"],
                                           "publicKey": policy["signature"]["public_key"]})

    def update(self, id_: str, olds: dict, news: dict) -> UpdateResult:
        policy = self.client(news).call("PATCH", f"{POLICIES}/{id_}", {"name": news["name"]})["policy"]
        return UpdateResult({**news, "policyId": id_, "publicKey": policy["signature"]["public_key"]})

    def live(self, id_: str, props: dict, found: dict) -> dict:
        policy = found["policy"]
        return {"name": policy["name"], "policyId": id_, "publicKey": policy["signature"]["public_key"]}


class ParseSettingProvider(_Provider):
    """An Inbound Parse setting: ``hostname`` (its id), ``url``, ``sendRaw``, ``securityPolicy``."""

    kind = "Inbound Parse setting"
    collection = PARSE_SETTINGS
    compared = ("url", "sendRaw", "securityPolicy")
    replaced = ("baseUrl", "hostname")

    def client(self, props: dict, name: str | None = None) -> Client:
        return super().client(props, props["hostname"])

    @staticmethod
    def body(props: dict) -> dict:
        return {"url": props["url"], "send_raw": props["sendRaw"], "spam_check": False,
                "security_policy": props["securityPolicy"]}

    def create(self, props: dict) -> CreateResult:
        self.client(props).call("POST", PARSE_SETTINGS, {"hostname": props["hostname"], **self.body(props)})
        return CreateResult(props["hostname"], dict(props))

    def update(self, id_: str, olds: dict, news: dict) -> UpdateResult:
        self.client(news).call("PATCH", f"{PARSE_SETTINGS}/{id_}", self.body(news))
        return UpdateResult(dict(news))

    def live(self, id_: str, props: dict, found: dict) -> dict:
        return {"hostname": found["hostname"], "url": found["url"], "sendRaw": bool(found.get("send_raw")),
                "securityPolicy": found.get("security_policy")}


class SendGridResource(Resource):
    """A SendGrid dynamic resource (type ``pulumi-python:dynamic:Resource``); outputs as attributes."""

    webhookId: pulumi.Output[str]
    policyId: pulumi.Output[str]
    publicKey: pulumi.Output[str]


def _resource(provider: ResourceProvider, name: str, access: Access, props: dict[str, Any],
              opts: pulumi.ResourceOptions | None) -> SendGridResource:
    """A dynamic resource whose API key and URL are secret in the state."""
    inputs = {"apiKey": pulumi.Output.secret(access.api_key), "baseUrl": access.base_url, **props}
    return SendGridResource(provider, name, inputs, pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)))


def event_webhook(name: str, access: Access, url: pulumi.Input[str], friendly_name: str, event_types,
                  key_version: int, opts: pulumi.ResourceOptions | None = None) -> SendGridResource:
    """The signed Event Webhook; outputs ``webhookId`` and ``publicKey``."""
    flags, _unknown = flags_for(event_types)
    return _resource(EventWebhookProvider(), name, access, {
        "url": url, "name": friendly_name, "eventTypes": flags, "keyVersion": key_version,
        "enabled": True, "signed": True,
        "webhookId": None, "publicKey": None}, opts)


def security_policy(name: str, access: Access, policy_name: str,
                    opts: pulumi.ResourceOptions | None = None) -> SendGridResource:
    """A signature security policy; outputs ``policyId`` and ``publicKey``."""
    return _resource(SecurityPolicyProvider(), name, access, {
        "name": policy_name, "policyId": None, "publicKey": None}, opts)


def parse_setting(name: str, access: Access, hostname: str, url: pulumi.Input[str], send_raw: bool,
                  policy_id: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> SendGridResource:
    """The Inbound Parse setting of ``hostname``, posting to ``url``, signed by the policy ``policy_id``."""
    return _resource(ParseSettingProvider(), name, access, {
        "hostname": hostname, "url": url, "sendRaw": send_raw, "securityPolicy": policy_id}, opts)


def key_list(resource: SendGridResource, configured) -> pulumi.Output[str]:
    """Comma-separated public keys (a function's setting): ``resource``'s, then the ``configured`` ones."""
    return resource.publicKey.apply(lambda key: ",".join([key, *configured]))
