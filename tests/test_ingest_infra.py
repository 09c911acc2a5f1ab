"""``ingest: queue`` (the default) under mocks: the queue, its dead-letter queue, API Gateway's SQS
integration and role, the webhook function's mapping and grants, the outputs; and ``direct`` without them."""

from __future__ import annotations

import json

import pytest

from handlers import functions
from handlers.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from handlers.tables import WEBHOOK
from infra import ingest
from infra.config import ConfigError
from infra.preview import ACCOUNT
from tests.infra_program import PROJECT, STACK, run_program

QUEUE, ROLE_POLICY = "aws:sqs/queue:Queue", "aws:iam/rolePolicy:RolePolicy"
PREFIX = f"{PROJECT}-{STACK}-ingest"


@pytest.fixture(scope="module")
def made():
    return run_program()


def statements(policy) -> list[dict]:
    return json.loads(policy.inputs["policy"])["Statement"]


def test_the_queue_and_its_dead_letter_queue(made):
    queue, dlq = made.one(QUEUE, PREFIX), made.one(QUEUE, f"{PREFIX}-dlq")
    for q in (queue, dlq):
        assert q.inputs["messageRetentionSeconds"] == 14 * 86400
        assert q.inputs["maxMessageSize"] == 1024 * 1024  # SQS's limit since 2025; the provider's default is 256 KiB
        assert q.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")  # the stack's key, as the sender's queue
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * functions.WEBHOOK.timeout
    assert json.loads(queue.inputs["redrivePolicy"]) == {"deadLetterTargetArn": dlq.outputs["arn"],
                                                          "maxReceiveCount": ingest.MAX_RECEIVES}
    outputs = made.resolved_outputs()
    assert (outputs["ingestQueueUrl"], outputs["ingestDlqUrl"]) == (queue.outputs["url"], dlq.outputs["url"])


def test_api_gateway_may_only_send_to_that_queue_and_the_route_is_an_sqs_integration(made):
    queue = made.one(QUEUE, PREFIX)
    role = made.one("aws:iam/role:Role", f"{PREFIX}-apigateway")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"}
    policy = made.one(ROLE_POLICY, f"{PREFIX}-apigateway-send")
    assert policy.inputs["role"] == role.outputs.get("id", f"{role.name}-id")
    send, key = statements(policy)
    assert (send["Action"], send["Resource"]) == (["sqs:SendMessage"], [queue.outputs["arn"]])
    assert key["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]  # SendMessage to a KMS-encrypted queue

    [integration] = made.of_type("aws:apigateway/integration:Integration")
    i = integration.inputs
    assert (i["type"], i["integrationHttpMethod"], i["credentials"]) == ("AWS", "POST", role.outputs["arn"])
    assert i["uri"] == f"arn:aws:apigateway:us-east-1:sqs:path/{ACCOUNT}/{queue.outputs['name']}"
    assert i["passthroughBehavior"] == "NEVER"
    template = i["requestTemplates"]["application/json"]
    assert template.startswith("Action=SendMessage&MessageBody=$util.urlEncode($input.body)")
    for expression in ("$context.requestTimeEpoch", f"$input.params('{SIGNATURE_HEADER}')",
                       f"$input.params('{TIMESTAMP_HEADER}')"):
        assert expression in template
    answers = {r.inputs["statusCode"]: r.inputs.get("selectionPattern")
               for r in made.of_type("aws:apigateway/integrationResponse:IntegrationResponse")}
    assert answers == {"200": r"2\d\d", "400": "400", "503": None}  # 413 is the 400 answer's override
    statuses = {r.inputs["statusCode"] for r in made.of_type("aws:apigateway/methodResponse:MethodResponse")}
    assert statuses == {"200", "400", "413", "503"}
    assert made.of_type("aws:lambda/permission:Permission") == []  # nothing invokes the function from the API


def test_the_webhook_function_drains_the_queue_with_partial_batch_responses(made):
    queue = made.one(QUEUE, PREFIX)
    [mapping] = [m for m in made.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
                 if m.inputs["eventSourceArn"] == queue.outputs["arn"]]
    assert mapping.inputs["functionName"] == f"{PROJECT}-{STACK}-{WEBHOOK}"
    assert mapping.inputs["batchSize"] == ingest.BATCH_SIZE
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": ingest.MAX_CONCURRENCY}  # a drain is bounded
    granted = {}
    for statement in made.policies(WEBHOOK):
        for resource in statement["Resource"]:
            granted.setdefault(resource, set()).update(statement["Action"])
    assert granted[queue.outputs["arn"]] == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert not any(a.startswith("sqs:") for r, actions in granted.items() if r != queue.outputs["arn"]
                   for a in actions)  # the dead-letter queue is the operator's, not the function's


def test_the_dead_letter_queue_raises_an_alarm(made):
    dlq = made.one(QUEUE, f"{PREFIX}-dlq")
    alarm = made.one("aws:cloudwatch/metricAlarm:MetricAlarm", f"{PROJECT}-{STACK}-ingest-dead-letters").inputs
    assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": dlq.outputs["name"]})
    assert alarm["threshold"] == 1


def test_direct_keeps_the_lambda_proxy_route_and_makes_no_ingest_queue():
    made = run_program({"ingest": "direct"})
    assert [q.name for q in made.of_type(QUEUE)] == [f"{PROJECT}-{STACK}-mail-sender-stream-failures"]
    [integration] = made.of_type("aws:apigateway/integration:Integration")
    assert integration.inputs["type"] == "AWS_PROXY"
    assert "ingestQueueUrl" not in made.resolved_outputs()
    assert not [a for a in made.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "ingest" in a.name]


def test_without_the_stacks_kms_key_the_queues_use_sqs_managed_encryption():
    made = run_program({"kmsKey": "aws-owned"})
    for name in (PREFIX, f"{PREFIX}-dlq"):
        assert made.one(QUEUE, name).inputs["sqsManagedSseEnabled"] is True
    role = made.one("aws:iam/role:Role", f"{PREFIX}-apigateway")
    policy = made.one(ROLE_POLICY, f"{PREFIX}-apigateway-send")
    assert policy.inputs["role"] == role.outputs.get("id", f"{role.name}-id")
    assert [s["Action"] for s in statements(policy)] == [["sqs:SendMessage"]]


def test_an_unknown_ingest_mode_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="^sendgrid-events:ingest: must be one of queue, direct"):
        run_program({"ingest": "lambda"})
