"""The deploy path, rehearsed: the program configures the SendGrid stand-in, which posts where it was told.

The local stack applies the program's dynamic resources by calling their provider's ``create``
against the stand-in (``sendgridApiBaseUrl``); the stand-in then posts each accepted mail's
events only to webhooks configured through its API, only their enabled types, signed with the
webhook's own key.
"""

from __future__ import annotations

import pytest

from devstack import demo
from devstack.apply import ApplyError
from devstack.apply.dynamic import DYNAMIC
from devstack.stack import PARSE_HOSTNAME
from devstack.testing import local_stack  # noqa: F401  (the fixture)


def bounce_item(item_id: str) -> dict:
    return demo.seed_item(item_id, [{"email": "nobody@bounce.test", "name": "Nobody"}], "Bounce")


def test_events_reach_the_webhook_through_the_webhook_the_program_created(local_stack):
    stack = local_stack()
    [applied] = stack.program.of_type(DYNAMIC)
    [webhook] = stack.webhooks.webhooks.values()
    assert webhook.id == applied.outputs["webhookId"] == stack.state["outputs"]["webhookId"]
    assert webhook.friendly_name == "sendgrid-events-local" and webhook.flags == {"bounce", "dropped"}
    assert webhook.url.startswith("https://") and ".execute-api." in webhook.url  # the URL AWS would serve
    assert stack.resolve(webhook.url) == stack.state["webhook_url"] == stack.poster.url
    # The key SendGrid made for this webhook is the one the program wired into the function.
    assert stack.state["env"]["webhook"]["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == webhook.key.public_key_b64 \
        == stack.state["webhook_public_key"]
    stack.insert(bounce_item("m1"))
    [sent] = stack.wait_settled("m1")
    [row] = stack.scan("bounce")
    assert row["messageId"] == sent["messageId"]
    assert [p.status for p in stack.poster.posts] == [200]


def test_the_manual_flow_is_unchanged_with_the_switch_off(local_stack):
    stack = local_stack(settings={"manageSendgridWebhook": False})
    assert stack.program.of_type(DYNAMIC) == []
    [webhook] = stack.webhooks.webhooks.values()  # made "by hand" before the deploy, its URL pasted in after
    assert stack.resolve(webhook.url) == stack.state["webhook_url"]
    assert stack.state["env"]["webhook"]["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == webhook.key.public_key_b64
    stack.insert(bounce_item("m2"))
    stack.wait_settled("m2")
    assert len(stack.scan("bounce")) == 1


def test_inbound_parse_is_configured_by_the_program(local_stack):
    stack = local_stack("bounce,dropped,dynamodb,inbound")
    setting = stack.webhooks.parse[PARSE_HOSTNAME]
    assert stack.resolve(setting["url"]) == stack.state["urls"]["inbound"]
    policy = stack.webhooks.policies[setting["security_policy"]]
    assert stack.state["env"]["inbound"]["INBOUND_PUBLIC_KEYS"] == policy.key.public_key_b64 \
        == stack.state["inbound_public_key"]


def test_an_api_key_sendgrid_refuses_stops_up_naming_the_resource_not_the_key(local_stack):
    with pytest.raises(ApplyError) as error:
        local_stack(settings={"sendgridApiKey": "SG.refused-by-the-stand-in"})
    message = str(error.value)
    assert "'sendgrid-event-webhook'" in message and "401" in message and "sendgridApiKey" in message
    assert "SG.refused-by-the-stand-in" not in message
