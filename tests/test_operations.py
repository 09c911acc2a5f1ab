"""Alarms, their topic, the dashboard and the access logs on the program under mocks (``infra.operations``).

The cross-check: every metric an alarm or the dashboard reads is one the
handlers emit (``handlers.metrics``, whose lines ``tests/test_metrics.py``
checks from real runs), with the dimension the functions' environment gives
them, or an AWS metric of a resource this stack made.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from handlers import metrics
from infra import operations
from infra.config import ConfigError
from tests.infra_program import PROJECT, STACK, run_program

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PREFIX = f"{PROJECT}-{STACK}"
# The failures the issue lists, each with its alarm (plus one errors and one throttles alarm per function).
FAILURES = {"webhook-5xx", "webhook-forbidden", "sender-failures-queued", "stream-behind", "events-rejected",
            "webhook-silent", "ingest-dead-letters"}
AWS_METRICS = {("AWS/ApiGateway", "5XXError"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
               ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
               ("AWS/Lambda", "IteratorAge"), ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")}
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.fixture(scope="module")
def made():
    return run_program({"plugins": ["bounce", "dropped", "delivered", "dynamodb", "inbound"],
                        "alarmEmails": ["ops@example.com", "oncall@example.com"]})


def alarms(program) -> dict[str, dict]:
    """Alarm key (its name without the stack prefix) -> its inputs."""
    return {r.inputs["name"].removeprefix(f"{PREFIX}-"): r.inputs for r in program.of_type(ALARM)}


def metrics_read(alarm: dict) -> list[tuple[str, str, dict]]:
    """(namespace, name, dimensions) of every metric an alarm reads (itself or in its metric math)."""
    if "metricName" in alarm:
        return [(alarm["namespace"], alarm["metricName"], alarm["dimensions"])]
    return [(q["metric"]["namespace"], q["metric"]["metricName"], q["metric"]["dimensions"])
            for q in alarm["metricQueries"] if "metric" in q]


def resource_names(program) -> dict[str, set[str]]:
    """The dimension -> the names it may hold: this stack's functions, queue and REST API."""
    return {"FunctionName": {r.outputs["name"] for r in program.of_type("aws:lambda/function:Function")},
            "QueueName": {r.outputs["name"] for r in program.of_type("aws:sqs/queue:Queue")},
            "ApiName": {r.outputs["name"] for r in program.of_type("aws:apigateway/restApi:RestApi")},
            "Stage": {"v1"}}


def check_metric(program, namespace: str, name: str, dimensions: dict) -> None:
    if namespace == metrics.NAMESPACE:
        emitted = {n for r in metrics.RECORDERS.values() for n in r.metrics}
        assert name in emitted, f"{name}: no handler emits it"
        stack_values = {program.environment(fn)["SENDGRID_EVENTS_STACK"] for fn in metrics.RECORDERS}
        assert dimensions == {metrics.DIMENSION: STACK} and stack_values == {STACK}, (name, dimensions)
    else:
        assert (namespace, name) in AWS_METRICS, (namespace, name)
        names = resource_names(program)
        for key, value in dimensions.items():
            assert value in names[key], f"{namespace} {name}: {key}={value} is no resource of this stack"


def test_every_failure_has_an_alarm_to_the_topic_with_what_to_do(made):
    [topic] = [t for t in made.of_type("aws:sns/topic:Topic") if t.name == f"{PREFIX}-alarms"]
    found = alarms(made)
    functions = {"sender", "webhook", "inbound"}
    assert set(found) == FAILURES | {f"{fn}-{m}" for fn in functions for m in ("errors", "throttles")}
    for key, alarm in found.items():
        assert alarm["alarmActions"] == alarm["okActions"] == [topic.outputs["arn"]], key
        assert alarm["treatMissingData"] == "notBreaching"
        assert 40 < len(alarm["alarmDescription"]) <= 1024 and "README Operating" in alarm["alarmDescription"]
    subscriptions = made.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted((s.inputs["protocol"], s.inputs["endpoint"], s.inputs["topic"]) for s in subscriptions) == [
        ("email", "oncall@example.com", topic.outputs["arn"]), ("email", "ops@example.com", topic.outputs["arn"])]
    assert made.resolved_outputs()["alarmTopicArn"] == topic.outputs["arn"]


def test_every_alarm_has_a_runbook_paragraph():
    operating = README.split("\n## Operating", 1)[1].split("\n## ", 1)[0]
    for key in FAILURES | {"<function>-errors", "<function>-throttles"}:
        assert re.search(rf"^\*\*`{re.escape(key)}`\*\*", operating, re.M), f"README Operating: no runbook for {key}"


def test_every_alarm_reads_a_metric_the_code_emits_or_one_of_the_stacks_resources(made):
    read = [m for alarm in alarms(made).values() for m in metrics_read(alarm)]
    for namespace, name, dimensions in read:
        check_metric(made, namespace, name, dimensions)
    assert {name for ns, name, _ in read if ns == metrics.NAMESPACE} == {
        "WebhookRefused403", "WebhookPosts", "EventsRejected", "MailsSent", "EventsReceived"}


def test_the_alarms_follow_their_thresholds(made):
    found = alarms(made)
    assert (found["webhook-5xx"]["threshold"], found["webhook-5xx"]["period"]) == (5, 300)
    forbidden = found["webhook-forbidden"]
    assert (forbidden["evaluationPeriods"], forbidden["datapointsToAlarm"]) == (3, 3)  # 15 minutes
    [expression] = [q for q in forbidden["metricQueries"] if q.get("returnData")]
    assert expression["expression"] == "IF(posts > 0 AND refused == posts, 1, 0)"
    assert {q["id"]: q["metric"]["metricName"] for q in forbidden["metricQueries"] if "metric" in q} == {
        "posts": "WebhookPosts", "refused": "WebhookRefused403"}
    silent = found["webhook-silent"]
    assert {q["metric"]["period"] for q in silent["metricQueries"] if "metric" in q} == {6 * 3600}
    assert found["stream-behind"]["threshold"] == 3600 * 1000  # IteratorAge is in milliseconds
    assert found["sender-failures-queued"]["statistic"] == "Maximum"
    assert found["events-rejected"]["period"] == 3600

    tuned = alarms(run_program({"plugins": ["bounce", "dropped", "processed", "dynamodb"],
                                "alarmWebhook5xx": "20", "alarmForbiddenMinutes": "30",
                                "alarmSilentWebhookHours": "24", "alarmIteratorAgeSeconds": "600",
                                "alarmRejects": "10", "alarmLambdaErrors": "3"}))
    assert tuned["webhook-5xx"]["threshold"] == 20
    assert tuned["webhook-forbidden"]["evaluationPeriods"] == 6
    assert {q["metric"]["period"] for q in tuned["webhook-silent"]["metricQueries"] if "metric" in q} == {86400}
    assert tuned["stream-behind"]["threshold"] == 600_000
    assert tuned["events-rejected"]["threshold"] == 10
    assert tuned["sender-errors"]["threshold"] == tuned["webhook-throttles"]["threshold"] == 3
    assert "inbound-errors" not in tuned  # only the enabled functions
    assert "webhook-silent" not in alarms(run_program({"plugins": ["bounce", "dropped", "delivered", "dynamodb"],
                                                       "alarmSilentWebhookHours": "0"}))  # turned off
    # Without an event every mail yields (the defaults: bounce, dropped), a quiet day is no sign: no alarm.
    assert "webhook-silent" not in alarms(run_program())


@pytest.mark.parametrize("config, key", [
    ({"alarmEmails": ["not an address"]}, "alarmEmails"),
    ({"alarmForbiddenMinutes": "7"}, "alarmForbiddenMinutes"),
    ({"alarmSilentWebhookHours": "25"}, "alarmSilentWebhookHours"),
    ({"alarmIteratorAgeSeconds": "10"}, "alarmIteratorAgeSeconds"),
    ({"apiAccessLogRole": "mine"}, "apiAccessLogRole"),
])
def test_bad_operations_config_fails_naming_the_key(config, key):
    with pytest.raises(ConfigError, match=f"^sendgrid-events:{key}: "):
        run_program(config)


def test_the_dashboard_shows_the_emitted_metrics_alarm_states_queue_and_iterator_age(made):
    [board] = made.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert board.inputs["dashboardName"] == PREFIX
    body = json.loads(board.inputs["dashboardBody"])
    widgets = {w["properties"]["title"]: w for w in body["widgets"]}
    assert sorted(widgets["Alarms"]["properties"]["alarms"]) == sorted(r.outputs["arn"]
                                                                        for r in made.of_type(ALARM))
    shown = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            namespace, name, *pairs = [v for v in row if not isinstance(v, dict)]
            check_metric(made, namespace, name, dict(zip(pairs[::2], pairs[1::2])))
            shown.add(name)
    emitted = {n for r in metrics.RECORDERS.values() for n in r.metrics}
    assert emitted <= shown  # every metric the handlers emit is on the dashboard
    assert {"ApproximateNumberOfMessagesVisible", "IteratorAge", "Errors", "Throttles", "5XXError"} <= shown
    query = widgets["Stored events by type (per hour)"]["properties"]["query"]
    assert query.startswith(f"SOURCE '/aws/lambda/{PREFIX}-webhook' ")
    assert "sum(acceptedTypes.bounce) as bounce" in query and "sum(acceptedTypes.dropped) as dropped" in query
    webhook_logs = {r.inputs["name"] for r in made.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert f"/aws/lambda/{PREFIX}-webhook" in webhook_logs
    assert made.resolved_outputs()["dashboardName"] == PREFIX


def test_the_stage_writes_json_access_logs_without_bodies_query_strings_or_the_secret_path(made):
    [stage] = made.of_type("aws:apigateway/stage:Stage")
    group = made.one("aws:cloudwatch/logGroup:LogGroup", f"{PREFIX}-api-access")
    settings = stage.inputs["accessLogSettings"]
    assert settings["destinationArn"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == 30
    fields = json.loads(settings["format"])
    assert fields["requestId"] == "$context.requestId" and fields["status"] == "$context.status"
    variables = set(fields.values())
    assert not {v for v in variables if re.search(r"path|body|querystring|sourceIp|caller|user\b", v, re.I)}
    account = made.one("aws:apigateway/account:Account", f"{PREFIX}-api-access-account")
    role = made.one("aws:iam/role:Role", f"{PREFIX}-api-access-role")
    assert account.inputs["cloudwatchRoleArn"] == role.outputs["arn"]
    assert "apigateway.amazonaws.com" in role.inputs["assumeRolePolicy"]
    [push] = [r for r in made.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role.id]
    assert json.loads(push.inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": operations.PUSH_TO_LOGS, "Resource": "*"}]
    assert "logs:PutLogEvents" in operations.PUSH_TO_LOGS


def test_an_existing_api_gateway_logging_role_is_left_alone_and_retention_follows_the_config():
    made = run_program({"apiAccessLogRole": "existing", "logRetentionDays": "90"})
    assert made.of_type("aws:apigateway/account:Account") == []
    assert not [r for r in made.of_type("aws:iam/role:Role") if "apigateway" in r.inputs["assumeRolePolicy"]
                and "-ingest-" not in r.name]  # the ingest queue's role only sends to its queue
    assert made.one("aws:cloudwatch/logGroup:LogGroup", f"{PREFIX}-api-access").inputs["retentionInDays"] == 90


def test_a_metric_no_handler_emits_cannot_be_alarmed_on():
    with pytest.raises(KeyError, match="no function emits the metric 'MailsLost'"):
        operations._own("MailsLost", {metrics.DIMENSION: STACK})
