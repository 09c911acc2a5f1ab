"""The program under mocks registers SendGrid's settings (``infra.sendgrid``), or none with the switch off."""

from __future__ import annotations

import pytest

from infra.config import ConfigError
from infra.preview import SENDGRID_OUTPUTS
from tests.infra_program import PUBLIC_KEY, run_program

DYNAMIC = "pulumi-python:dynamic:Resource"


def unwrapped(value):
    return value["value"] if isinstance(value, dict) and "value" in value else value


def test_the_event_webhook_is_registered_with_the_url_the_stage_will_serve():
    made = run_program()
    [webhook] = made.of_type(DYNAMIC)
    outputs = made.resolved_outputs()
    # Built from the REST API's id before any function exists (no cycle), equal to the stage's URL.
    assert unwrapped(webhook.inputs["url"]) == outputs["webhookUrl"]
    assert webhook.inputs["url"]["value"] and made.is_secret("webhookUrl")
    stage = made.one("aws:apigateway/stage:Stage", "sendgrid-events-test-api-v1")
    function = made.function("webhook")
    created = [r.urn for r in made.resources]
    assert created.index(webhook.urn) < created.index(function.urn) < created.index(stage.urn)
    assert (webhook.inputs["name"], webhook.inputs["baseUrl"]) == ("sendgrid-events-test", "https://api.sendgrid.com")
    assert outputs["webhookId"] == SENDGRID_OUTPUTS["webhookId"]
    assert outputs["webhookPublicKey"] == SENDGRID_OUTPUTS["publicKey"]


def test_webhook_public_keys_become_optional_extra_keys():
    env = run_program({"webhookPublicKeys": None}).environment("webhook")
    assert env["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == SENDGRID_OUTPUTS["publicKey"]


def test_the_eu_base_url_is_a_config_key_and_is_checked():
    [webhook] = run_program({"sendgridApiBaseUrl": "https://api.eu.sendgrid.com"}).of_type(DYNAMIC)
    assert webhook.inputs["baseUrl"] == "https://api.eu.sendgrid.com"
    with pytest.raises(ConfigError, match="^sendgrid-events:sendgridApiBaseUrl: "):
        run_program({"sendgridApiBaseUrl": "http://api.sendgrid.com"})  # the API key never goes over plain HTTP


def test_with_the_switch_off_nothing_is_registered_and_the_configured_keys_are_the_keys():
    made = run_program({"manageSendgridWebhook": "false", "plugins": ["bounce", "inbound"],
                        "inboundPublicKeys": [PUBLIC_KEY], "inboundParseHostname": "parse.example.com"})
    assert made.of_type(DYNAMIC) == []
    assert made.environment("webhook")["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == PUBLIC_KEY
    assert made.environment("inbound")["INBOUND_PUBLIC_KEYS"] == PUBLIC_KEY
    assert "webhookId" not in made.outputs


def test_inbound_registers_its_policy_and_the_parse_setting_posting_to_its_route():
    made = run_program({"plugins": ["bounce", "inbound"], "inboundParseHostname": "Parse.Example.com",
                        "inboundSendRaw": "true"})
    by_name = {r.name: r for r in made.of_type(DYNAMIC)}
    assert set(by_name) == {"sendgrid-event-webhook", "inbound-security-policy", "inbound-parse-setting"}
    setting = by_name["inbound-parse-setting"].inputs
    assert (setting["hostname"], setting["sendRaw"]) == ("parse.example.com", True)
    assert unwrapped(setting["url"]) == made.resolved_outputs()["inboundUrl"]
    assert setting["securityPolicy"] == SENDGRID_OUTPUTS["policyId"]
    assert by_name["inbound-security-policy"].inputs["name"] == "sendgrid-events-test-inbound"
    assert made.environment("inbound")["INBOUND_PUBLIC_KEYS"] == SENDGRID_OUTPUTS["publicKey"]


def test_inbound_without_a_hostname_makes_the_policy_only(caplog):
    made = run_program({"plugins": ["bounce", "inbound"]})
    assert {r.name for r in made.of_type(DYNAMIC)} == {"sendgrid-event-webhook", "inbound-security-policy"}
    assert "no inboundParseHostname" in caplog.text


def test_a_bad_parse_hostname_stops_the_program():
    with pytest.raises(ConfigError, match="^sendgrid-events:inboundParseHostname: "):
        run_program({"plugins": ["bounce", "inbound"], "inboundParseHostname": "not a host"})
