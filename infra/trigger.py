"""The sender's trigger: the mail sender table's stream -> the sender function.

Only INSERT records reach the function (event filter); a failing batch is
bisected, the function reports the records that failed (partial batch
response), retries and record age are bounded, and what still fails lands in
an encrypted SQS queue (the on-failure destination), never silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import queues
from infra.function import policy_document

BATCH_SIZE = 100
INSERT_ONLY = json.dumps({"eventName": ["INSERT"]})


@dataclass
class StreamTriggerArgs:
    stream_arn: pulumi.Input[str]
    function_name: pulumi.Input[str]
    role: pulumi.Input[str]
    """The function's role (its id, i.e. name): the trigger grants it what it needs."""
    kms_key_arn: pulumi.Input[str] | None
    max_retries: int
    max_record_age_seconds: int


class StreamTrigger(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    mapping: aws.lambda_.EventSourceMapping

    def __init__(self, name: str, args: StreamTriggerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:StreamTrigger", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.queue = queues.queue(f"{name}-failures", args.kms_key_arn, child)
        statements = [
            {"Effect": "Allow",
             "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
             "Resource": [args.stream_arn]},
            # ListStreams has no resource-level permissions: "*" is the only resource it takes.
            {"Effect": "Allow", "Action": ["dynamodb:ListStreams"], "Resource": ["*"]},
            *queues.send_statements(self.queue.arn, args.kms_key_arn),
        ]
        policy = aws.iam.RolePolicy(f"{name}-policy", role=args.role, policy=policy_document(statements),
                                    opts=child)
        self.mapping = aws.lambda_.EventSourceMapping(
            name,
            event_source_arn=args.stream_arn,
            function_name=args.function_name,
            starting_position="LATEST",
            batch_size=BATCH_SIZE,
            filter_criteria=aws.lambda_.EventSourceMappingFilterCriteriaArgs(
                filters=[aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(pattern=INSERT_ONLY)]),
            bisect_batch_on_function_error=True,
            function_response_types=["ReportBatchItemFailures"],
            maximum_retry_attempts=args.max_retries,
            maximum_record_age_in_seconds=args.max_record_age_seconds,
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.queue.arn)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs({"queue_url": self.queue.url, "mapping": self.mapping.uuid})
