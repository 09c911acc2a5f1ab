"""Queue ingest (``ingest: queue``): API Gateway puts each webhook post on SQS; the webhook function drains it.

No Lambda on the request path: the REST API's webhook route is an AWS service
integration calling SQS ``SendMessage`` with a role allowed only that, on
that queue. The message is the raw body exactly as received (API Gateway
URL-encodes it into the form it posts to SQS, which decodes it: the message
holds the body's own bytes), with the two signature headers and API
Gateway's receive time as message attributes. SendGrid is answered 200 as
soon as SQS has the message; SQS's refusals are answered for what they are
(``INTEGRATION_RESPONSES``): a body over SQS's limit 413, another refused
content 400, anything else (throttling, a broken role or key) 503. SendGrid
posts anything but 2xx again for 24 hours.

Size: SQS takes 1 MiB (1,048,576 bytes) per message since 2025, counting the
body and the attributes (names, types, values: about 150 bytes here);
SendGrid posts at most 768 KB. The queue's ``MaximumMessageSize`` is set to
that 1 MiB (the provider's default is still 256 KiB).

The webhook function consumes the queue (``handlers.ingest``): batches of
``BATCH_SIZE`` with partial batch responses; a message that fails
``MAX_RECEIVES`` times moves to the dead-letter queue (14 days, like the
queue), which ``infra.operations`` alarms on and an operator re-drives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers import ingest as message
from handlers.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from infra import queues
from infra.function import policy_document

QUEUE = "queue"  # infra.config.INGEST_MODES: queue | direct
MAX_MESSAGE_BYTES = 1024 * 1024  # SQS's limit since 2025 (body and attributes)
MAX_RECEIVES = 10  # receives of a failing message before it moves to the dead-letter queue
BATCH_SIZE = 5  # posts per invocation: each may take the webhook's whole 20 s answer budget
# Invocations draining the queue at once (Lambda's SQS maximum concurrency, 2 to 1000): after an outage the
# backlog drains at up to ~50 posts/s (bench: 5.8 a second per invocation) without taking the account's
# concurrency from the sender or bursting DynamoDB (a throttled drain would spend the posts' receives).
MAX_CONCURRENCY = 10
VISIBILITY_FACTOR = 6  # AWS: a queue's visibility timeout at least 6x the consuming function's timeout
CONTENT_TYPE = "application/json"  # SendGrid's posts; another content type is answered 415, as API Gateway does

_HEADERS = f"$input.params('{SIGNATURE_HEADER}') != \"\" && " \
           f"$input.params('{TIMESTAMP_HEADER}') != \"\""


def _attribute(index: int, name: str, data_type: str, value: str) -> str:
    prefix = f"MessageAttribute.{index}"
    return f"&{prefix}.Name={name}&{prefix}.Value.DataType={data_type}&{prefix}.Value.StringValue={value}"


# SQS SendMessage (query API, form-encoded): the body and the receive time always; the signature headers
# when both were sent (an attribute may not be empty; a post without them is refused by the function, 403).
REQUEST_TEMPLATE = (
    "Action=SendMessage&MessageBody=$util.urlEncode($input.body)"
    + _attribute(1, message.RECEIVED_AT, "Number", "$context.requestTimeEpoch")
    + f"#if({_HEADERS})"
    + _attribute(2, message.SIGNATURE, "String",
                 f"$util.urlEncode($input.params('{SIGNATURE_HEADER}'))")
    + _attribute(3, message.TIMESTAMP, "String",
                 f"$util.urlEncode($input.params('{TIMESTAMP_HEADER}'))")
    + "#end"
)
TOO_LARGE = ("the post is larger than an SQS message takes (1 MiB with its attributes); "
             "it was not queued")
REFUSED = "the queue refused the post (empty, or characters SQS cannot hold); it was not queued"
NOT_QUEUED = "the post could not be queued; it will be accepted on retry"


@dataclass(frozen=True)
class Answer:
    """An integration response: SQS's status matched by ``pattern`` (None: any other) -> ``status``."""

    pattern: str | None
    status: int
    template: str


INTEGRATION_RESPONSES = (
    Answer(r"2\d\d", 200, json.dumps({"queued": True})),
    # SQS answers 400 for what it will never take; its message says which ("must be shorter than").
    Answer("400", 400, f"#if($input.body.contains(\"shorter than\"))#set($context.responseOverride.status = 413)"
                       f"{json.dumps({'error': TOO_LARGE})}#else{json.dumps({'error': REFUSED})}#end"),
    Answer(None, 503, json.dumps({"error": NOT_QUEUED})),
)
METHOD_STATUSES = (200, 400, 413, 503)


def queue_uri(queue_arn: str) -> str:
    """``SendMessage``'s integration URI for a queue ARN: ``arn:aws:apigateway:<region>:sqs:path/<account>/<name>``."""
    _arn, _partition, _sqs, region, account, name = queue_arn.split(":")
    return f"arn:aws:apigateway:{region}:sqs:path/{account}/{name}"


@dataclass
class IngestQueueArgs:
    kms_key_arn: pulumi.Input[str] | None
    """The stack's key (None: SQS-managed encryption)."""
    function_timeout: int
    """The consuming function's timeout (seconds): the queue's visibility timeout is ``VISIBILITY_FACTOR`` times it."""


class IngestQueue(pulumi.ComponentResource):
    """The queue, its dead-letter queue and API Gateway's role (``__init__``); the route's integration
    (``integrate``, called by ``infra.api``); the function's mapping (``consume``, once it exists)."""

    queue: aws.sqs.Queue
    dlq: aws.sqs.Queue
    role: aws.iam.Role
    mapping: aws.lambda_.EventSourceMapping

    def __init__(self, name: str, args: IngestQueueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:IngestQueue", name, None, opts)
        self._name, self._kms = name, args.kms_key_arn
        child = pulumi.ResourceOptions(parent=self)
        self.dlq = queues.queue(f"{name}-dlq", args.kms_key_arn, child, max_message_size=MAX_MESSAGE_BYTES)
        self.queue = queues.queue(
            name, args.kms_key_arn, child, max_message_size=MAX_MESSAGE_BYTES,
            visibility_timeout_seconds=VISIBILITY_FACTOR * args.function_timeout,
            redrive_policy=self.dlq.arn.apply(lambda arn: json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES})))
        self.role = aws.iam.Role(f"{name}-apigateway", description="API Gateway puts webhook posts on the queue",
                                 assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                                     "Effect": "Allow", "Action": "sts:AssumeRole",
                                     "Principal": {"Service": "apigateway.amazonaws.com"}}]}), opts=child)
        self._send_policy = aws.iam.RolePolicy(
            f"{name}-apigateway-send", role=self.role.id,
            policy=policy_document(queues.send_statements(self.queue.arn, args.kms_key_arn)), opts=child)

    def integrate(self, name: str, rest_api: aws.apigateway.RestApi, resource: aws.apigateway.Resource,
                  method: aws.apigateway.Method, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """The route's AWS integration (SQS SendMessage), its answers and their method responses."""
        integration = aws.apigateway.Integration(
            f"{name}-sqs", rest_api=rest_api.id, resource_id=resource.id, http_method=method.http_method,
            type="AWS", integration_http_method="POST", uri=self.queue.arn.apply(queue_uri),
            credentials=self.role.arn, passthrough_behavior="NEVER",
            request_parameters={"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"},
            request_templates={CONTENT_TYPE: REQUEST_TEMPLATE},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self._send_policy])))
        made: list[pulumi.Resource] = [integration]
        responses = {status: aws.apigateway.MethodResponse(
            f"{name}-{status}", rest_api=rest_api.id, resource_id=resource.id, http_method=method.http_method,
            status_code=str(status), opts=opts) for status in METHOD_STATUSES}
        for answer in INTEGRATION_RESPONSES:
            made.append(aws.apigateway.IntegrationResponse(
                f"{name}-sqs-{answer.status}", rest_api=rest_api.id, resource_id=resource.id,
                http_method=method.http_method, status_code=str(answer.status),
                selection_pattern=answer.pattern, response_templates={CONTENT_TYPE: answer.template},
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                    depends_on=[integration, responses[answer.status]]))))
        return made + list(responses.values())

    def consume(self, function: aws.lambda_.Function, role: pulumi.Input[str]) -> None:
        """The function drains the queue: its role may receive and delete (on this queue only), and the
        event source mapping (batches, partial batch responses, at most ``MAX_CONCURRENCY`` at once)."""
        child = pulumi.ResourceOptions(parent=self)
        statements = [{"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                     "sqs:GetQueueAttributes"], "Resource": [self.queue.arn]}]
        if self._kms is not None:
            statements.append({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [self._kms]})
        policy = aws.iam.RolePolicy(f"{self._name}-consume", role=role, policy=policy_document(statements),
                                    opts=child)
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{self._name}-mapping", event_source_arn=self.queue.arn, function_name=function.name,
            batch_size=BATCH_SIZE, function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=MAX_CONCURRENCY),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.register_outputs({"queue_url": self.queue.url, "dlq_url": self.dlq.url})
