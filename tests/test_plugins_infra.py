"""Issue 7's plugins in the real Pulumi program (under mocks): enabled, their resources and grants; disabled, none."""

import json

import pytest

from handlers import manager
from handlers.tables import SENDER, WEBHOOK
from infra import pipeline
from infra.config import ConfigError
from infra.plugins import StackContext
from infra.preview import SENDGRID_OUTPUTS, Engine
from tests.infra_program import PUBLIC_KEY, run_program
from tests.test_infra import granted, table_arn

TABLE = "aws:dynamodb/table:Table"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
BASE = ["bounce", "dropped", "dynamodb"]


@pytest.fixture
def program():
    def run(*plugins, **config):
        return run_program({"plugins": BASE + list(plugins), **config})
    return run


def test_history_table_env_and_grants_only_when_enabled(program):
    made = program("delivered", "history", historyTtlDays="30")
    table = made.table("event_history")
    assert (table.inputs["hashKey"], table.inputs["rangeKey"]) == ("messageId", "eventKey")
    assert table.inputs["ttl"] == {"enabled": True, "attributeName": "expiresAt"}
    for fn in (SENDER, WEBHOOK):
        assert made.environment(fn)["HISTORY_TTL_DAYS"] == "30"
        assert made.environment(fn)["TABLE_EVENT_HISTORY"] == table.outputs["name"]
        assert granted(made.policies(fn))[table_arn("event_history")] == {"dynamodb:BatchWriteItem"}

    without = program("delivered")
    assert "event-history" not in {r.name for r in without.of_type(TABLE)}
    for fn in (SENDER, WEBHOOK):
        assert not {"HISTORY_TTL_DAYS", "TABLE_EVENT_HISTORY"} & set(without.environment(fn))
        assert table_arn("event_history") not in granted(without.policies(fn))


def test_sns_topic_subscriptions_env_grants_and_output_only_when_enabled(program):
    made = program("sns", snsEmails=["ops@example.com"], snsEvents=["bounce"])
    [topic] = made.besides_operations(TOPIC)
    [key] = made.of_type("aws:kms/key:Key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    [subscription] = made.besides_operations(SUBSCRIPTION)
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "ops@example.com")
    assert made.environment(WEBHOOK)["SNS_TOPIC_ARN"] == topic.outputs["arn"]
    assert made.environment(WEBHOOK)["SNS_EVENTS"] == "bounce"
    webhook = granted(made.policies(WEBHOOK))
    assert webhook[topic.outputs["arn"]] == {"sns:Publish"}
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= webhook[key.outputs["arn"]]
    assert topic.outputs["arn"] not in granted(made.policies(SENDER))
    assert made.resolved_outputs()["snsTopicArn"] == topic.outputs["arn"]

    without = program(snsEmails=["ops@example.com"])
    assert without.besides_operations(TOPIC) == [] and without.besides_operations(SUBSCRIPTION) == []
    assert not {"SNS_TOPIC_ARN", "SNS_EVENTS"} & set(without.environment(WEBHOOK))
    assert "snsTopicArn" not in without.outputs


def test_sns_topic_uses_the_aws_managed_key_when_the_stack_has_none(program):
    [topic] = program("sns", kmsKey="aws-owned").besides_operations(TOPIC)
    assert topic.inputs["kmsMasterKeyId"] == "alias/aws/sns"


def test_suppression_adds_the_address_index_and_the_senders_query_only_when_enabled(program):
    made = program("suppression")
    bounce = made.table("bounce")
    [index] = bounce.inputs["globalSecondaryIndexes"]
    assert index["name"] == "byAddress" and "address" in json.dumps(index)  # hash key (schema form may vary)
    assert {"name": "address", "type": "S"} in bounce.inputs["attributes"]
    sender = granted(made.policies(SENDER))
    assert sender[table_arn("bounce")] == {"dynamodb:Query"}
    assert sender[table_arn("bounce") + "/index/*"] == {"dynamodb:Query"}
    assert made.environment(SENDER)["TABLE_BOUNCE"] == bounce.outputs["name"]

    without = program()
    assert "globalSecondaryIndexes" not in without.table("bounce").inputs
    assert table_arn("bounce") not in granted(without.policies(SENDER))
    assert "TABLE_BOUNCE" not in without.environment(SENDER)


def test_event_types_need_nothing_but_their_name(program):
    types = ["processed", "deferred", "delivered", "open", "click", "spamreport", "unsubscribe",
             "group_unsubscribe", "group_resubscribe"]
    made, base = program(*types), program()
    # processed/delivered make the silent-webhook alarm possible (every mail then yields an event): that alone
    silent = ("aws:cloudwatch/metricAlarm:MetricAlarm", "sendgrid-events-test-webhook-silent")
    assert sorted((r.type, r.name) for r in made.resources) == sorted([(r.type, r.name) for r in base.resources]
                                                                     + [silent])
    assert made.environment(WEBHOOK)["ENABLED_PLUGINS"] == ",".join(BASE + types)


@pytest.mark.parametrize("config, key", [
    ({"bounceTtlDays": "-1"}, "bounceTtlDays"),
    ({"bounceTtlDays": "ninety"}, "bounceTtlDays"),
    ({"historyTtlDays": "soon"}, "historyTtlDays"),
    ({"historyTtlDays": "-30"}, "historyTtlDays"),
    ({"snsEmails": "ops@example.com"}, "snsEmails"),  # not a list
    ({"snsEmails": ["ops@example.com", "ops"]}, "snsEmails"),
    ({"snsEvents": [1]}, "snsEvents"),
    ({"snsEvents": ["bounce, dropped"]}, "snsEvents"),
])
def test_bad_plugin_config_fails_naming_the_key_before_any_resource(config, key):
    engine = Engine()
    with pytest.raises(ConfigError, match=f"^sendgrid-events:{key}: ") as error:
        run_program({"plugins": sorted(manager.BUILTIN_PLUGINS), **config}, engine=engine)
    assert error.value.key == f"sendgrid-events:{key}"
    assert engine.created == []


def test_a_disabled_plugins_keys_are_not_read(program):
    assert program(historyTtlDays="soon", snsEmails=["ops"], allowUnsignedInbound="maybe").resources


def test_builtin_infrastructure_hooks_get_their_keys_from_stack_settings_only(monkeypatch):
    """Every plugin key read once, before any resource: the hooks find them in ``stack.settings``."""
    assert not hasattr(StackContext, "config")  # the hooks cannot read the config: what they get is settings
    made = run_program({"plugins": sorted(manager.BUILTIN_PLUGINS), "bounceTtlDays": "7", "historyTtlDays": "30",
                        "snsEmails": ["ops@example.com"], "snsEvents": ["bounce", "spamreport"],
                        "inboundPublicKeys": [PUBLIC_KEY], "allowUnsignedInbound": "TRUE",
                        "inboundMaxAgeSeconds": "600", "inboundExpireDays": "3"})
    assert made.environment(WEBHOOK)["BOUNCE_TTL_DAYS"] == "7"
    assert made.environment(SENDER)["HISTORY_TTL_DAYS"] == "30"
    assert made.environment(WEBHOOK)["SNS_EVENTS"] == "bounce,spamreport"
    inbound = made.environment("inbound")
    assert (inbound["INBOUND_PUBLIC_KEYS"], inbound["INBOUND_MAX_AGE_SECONDS"]) == \
        (f"{SENDGRID_OUTPUTS['publicKey']},{PUBLIC_KEY}", "600")
    assert inbound["INBOUND_ALLOW_UNSIGNED_INSECURE"] == "true"
