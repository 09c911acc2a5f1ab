"""SendGrid's settings as Pulumi resources (``infra.sendgrid``), against the stand-in's Webhooks API.

The providers are the ones ``pulumi up`` runs; the stand-in (``devstack.sendgrid`` with
``devstack.webhooks``) keeps the account's webhooks, policies and parse settings. The inputs come
from the real program under mocks (``tests.infra_program``), pointed at the stand-in.
"""

from __future__ import annotations

import time

import pytest

from devstack.apply.dynamic import provider_of
from devstack.eventwebhook import WebhookKey, batch_body
from devstack.sendgrid import Scripted, SendGridStandIn
from devstack.webhooks import WebhookAccount
from handlers import signature
from infra import sendgrid
from infra.sendgrid_client import SendGridError
from tests.infra_program import run_program

DYNAMIC = "pulumi-python:dynamic:Resource"


@pytest.fixture
def standin():
    with SendGridStandIn(webhooks=WebhookAccount()) as server:
        yield server


def inputs(standin, resource_name="sendgrid-event-webhook", **config) -> dict:
    """A SendGrid resource's inputs as the program registers them, aimed at the stand-in."""
    made = run_program({"sendgridApiKey": standin.api_key, "sendgridApiBaseUrl": standin.url, **config})
    [resource] = [r for r in made.of_type(DYNAMIC) if r.name == resource_name]
    return {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in resource.inputs.items()}


def provider(props: dict):
    made = provider_of(props)
    made.backoff = 0.0
    return made


def webhook_create(standin, **config):
    props = inputs(standin, **config)
    made = provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    return props, made, standin.webhooks.webhooks[made.id]


def test_create_makes_an_enabled_signed_webhook_with_the_plugins_event_types(standin):
    props, made, webhook = webhook_create(standin)
    assert webhook.url == props["url"] and webhook.url.startswith("https://") and webhook.enabled
    assert webhook.friendly_name == "sendgrid-events-test"
    assert webhook.flags == {"bounce", "dropped"}  # the default plugins; bounce covers blocked
    assert made.outs["publicKey"] == webhook.key.public_key_b64 and made.outs["webhookId"] == made.id
    assert made.outs["apiKey"] == standin.api_key  # kept for delete and refresh (a secret output)


def test_event_flags_are_exactly_the_enabled_plugins_types(standin):
    props = inputs(standin, plugins=["bounce", "dropped", "processed", "spamreport", "group_unsubscribe", "open"])
    assert props["eventTypes"] == ["bounce", "dropped", "group_unsubscribe", "open", "processed", "spam_report"]
    assert inputs(standin, plugins=["dynamodb"])["eventTypes"] == []


def test_diff_reports_no_change_when_there_is_none_and_what_changes_otherwise(standin):
    props, made, _ = webhook_create(standin)
    olds = {**props, **made.outs}
    same = provider(props).diff(made.id, olds, inputs(standin))
    assert (same.changes, same.replaces) == (False, [])
    moved = provider(props).diff(made.id, olds, {**props, "url": props["url"] + "x"})
    assert (moved.changes, moved.replaces) == (True, [])
    eu = provider(props).diff(made.id, olds, {**props, "baseUrl": "https://api.eu.sendgrid.com"})
    assert (eu.changes, eu.replaces) == (True, ["baseUrl"])  # another region is another account


def test_enabling_a_plugin_later_updates_the_same_webhook_in_place(standin):
    props, made, webhook = webhook_create(standin)
    key = webhook.key.public_key_b64
    later = inputs(standin, plugins=["bounce", "dropped", "dynamodb", "delivered"])
    olds = {**props, **made.outs}
    assert provider(later).diff(made.id, olds, later).changes is True
    updated = provider(later).update(made.id, olds, later)
    assert list(standin.webhooks.webhooks) == [made.id]
    assert webhook.flags == {"bounce", "dropped", "delivered"}
    assert updated.outs["publicKey"] == key  # same webhook, same signing key


def test_refresh_reads_sendgrid_back_and_a_deleted_webhook_reads_as_gone(standin):
    props, made, webhook = webhook_create(standin)
    olds = {**props, **made.outs}
    webhook.url, webhook.flags = "https://changed-in-the-console.example/", {"open"}
    read = provider(props).read(made.id, olds)
    assert (read.id, read.outs["url"], read.outs["eventTypes"]) == (made.id, webhook.url, ["open"])
    assert provider(props).diff(made.id, read.outs, props).changes is True  # the next up puts it back
    webhook.enabled, webhook.key = False, None  # disabled and unsigned in the console
    drifted = provider(props).read(made.id, olds).outs
    assert (drifted["enabled"], drifted["signed"]) == (False, False)
    provider(props).update(made.id, drifted, props)  # what `pulumi up` after the refresh does
    assert webhook.enabled and webhook.key is not None
    provider(props).delete(made.id, olds)
    assert standin.webhooks.webhooks == {}
    assert provider(props).read(made.id, olds).id is None
    provider(props).delete(made.id, olds)  # already gone: nothing to do


def verifies(keys: str, key: WebhookKey) -> bool:
    body = batch_body([{"event": "bounce"}])
    try:
        signature.verify(body, key.headers(body), signature.parse_settings(keys, "0", "false"), time.time())
    except signature.Forbidden:
        return False
    return True


def test_a_rotation_keeps_both_keys_valid_until_the_old_one_is_dropped(standin):
    props, made, webhook = webhook_create(standin)
    old_key = webhook.key
    # Rotation: the current key becomes an extra configured key, then webhookKeyVersion is raised.
    rotating = inputs(standin, webhookPublicKeys=[old_key.public_key_b64], webhookKeyVersion="2")
    updated = provider(rotating).update(made.id, {**props, **made.outs}, rotating)
    new_key = standin.webhooks.webhooks[made.id].key
    assert new_key is not old_key and updated.outs["publicKey"] == new_key.public_key_b64
    env = run_program({"webhookPublicKeys": [old_key.public_key_b64], "webhookKeyVersion": "2"},
                      engine=_answering(updated.outs["publicKey"])).environment("webhook")
    keys = env["SENDGRID_WEBHOOK_PUBLIC_KEYS"]
    assert verifies(keys, new_key) and verifies(keys, old_key)  # batches signed before the rotation still pass
    dropped = run_program({"webhookPublicKeys": None, "webhookKeyVersion": "2"},
                          engine=_answering(updated.outs["publicKey"])).environment("webhook")
    assert verifies(dropped["SENDGRID_WEBHOOK_PUBLIC_KEYS"], new_key)
    assert not verifies(dropped["SENDGRID_WEBHOOK_PUBLIC_KEYS"], old_key)


def _answering(public_key: str):
    """A preview engine whose SendGrid answers ``public_key``."""
    from infra import preview

    class Engine(preview.Engine):
        def outputs(self, resource):
            state = super().outputs(resource)
            return {**state, "publicKey": public_key} if resource.type == DYNAMIC else state

    return Engine()


@pytest.mark.parametrize("status, needle", [
    (401, "SendGrid refused the API key (401)"),
    (403, "give it the 'user.webhooks.event.settings.create' permission"),
    (400, "SendGrid answered 400"),
])
def test_refusals_are_named_and_never_show_the_key(standin, status, needle):
    props = inputs(standin)
    body = {"errors": [{"message": f"bad key {standin.api_key}", "field": None}]}  # even if SendGrid echoed it
    standin.script.append(Scripted(status=status, body=body))
    with pytest.raises(SendGridError) as error:
        provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    message = str(error.value)
    assert needle in message and "Event Webhook 'sendgrid-events-test'" in message
    assert standin.api_key not in message and error.value.status == status
    assert standin.webhooks.webhooks == {}


def test_a_wrong_api_key_is_a_401_that_names_the_config_key(standin):
    props = inputs(standin)
    props["apiKey"] = "SG.not-the-right-one"
    with pytest.raises(SendGridError, match="check sendgrid-events:sendgridApiKey") as error:
        provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    assert "SG.not-the-right-one" not in str(error.value)


def test_429_waits_as_told_then_goes_on(standin):
    props = inputs(standin)
    standin.script.extend([Scripted(status=429, headers={"Retry-After": "1"}),
                           Scripted(status=429, headers={"X-RateLimit-Reset": str(int(time.time()))})])
    started = time.monotonic()
    made = provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    assert time.monotonic() - started >= 1.0  # Retry-After: 1
    assert list(standin.webhooks.webhooks) == [made.id]


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_and_server_errors_that_last_fail_naming_the_resource(standin, status):
    props = inputs(standin)
    standin.script.extend(Scripted(status=status, headers={"Retry-After": "0"}) for _ in range(4))
    with pytest.raises(SendGridError, match=f"Event Webhook 'sendgrid-events-test'.*{status}.* 4 attempts") as error:
        provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    assert standin.api_key not in str(error.value) and standin.requests == 4
    assert standin.webhooks.webhooks == {}


def test_a_server_error_is_retried(standin):
    props = inputs(standin)
    standin.script.append(Scripted(status=502))
    made = provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    assert list(standin.webhooks.webhooks) == [made.id]


def test_create_is_all_or_nothing_when_signing_fails(standin):
    props = inputs(standin)
    standin.script.extend([Scripted(), Scripted(status=403)])  # the POST goes through, the signing PATCH not
    with pytest.raises(SendGridError, match="user.webhooks.event.settings.update"):
        provider(props).create({k: v for k, v in props.items() if k != "__provider"})
    assert standin.webhooks.webhooks == {}


def test_inbound_parse_policy_and_setting(standin):
    config = {"plugins": ["bounce", "inbound"], "inboundParseHostname": "parse.example.com", "inboundSendRaw": "true"}
    policy_props = inputs(standin, "inbound-security-policy", **config)
    policy = provider(policy_props).create({k: v for k, v in policy_props.items() if k != "__provider"})
    assert policy.outs["publicKey"] == standin.webhooks.policies[policy.id].key.public_key_b64
    setting_props = inputs(standin, "inbound-parse-setting", **config)
    route = setting_props["url"]
    setting_props = {**setting_props, "securityPolicy": policy.id}  # the program wires the policy's id
    made = provider(setting_props).create({k: v for k, v in setting_props.items() if k != "__provider"})
    stored = standin.webhooks.parse["parse.example.com"]
    assert (made.id, stored["url"], stored["send_raw"], stored["security_policy"]) == \
        ("parse.example.com", route, True, policy.id)
    renamed = {**setting_props, "hostname": "mail.example.com"}
    assert provider(setting_props).diff(made.id, setting_props, renamed).replaces == ["hostname"]
    provider(setting_props).delete(made.id, setting_props)
    provider(policy_props).delete(policy.id, {**policy_props, **policy.outs})
    assert standin.webhooks.parse == {} and standin.webhooks.policies == {}


def test_flags_for_maps_event_types_and_names_the_unknown():
    assert sendgrid.flags_for(["blocked", "bounce", "spamreport", "account_status_change"]) == \
        (["bounce", "spam_report"], ["account_status_change"])
