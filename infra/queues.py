"""An SQS queue of the stack, described once: encrypted, and kept as long as SQS keeps anything.

The sender's on-failure queue (``infra.trigger``) and the ingest queue and its
dead-letter queue (``infra.ingest``) are made here: with the stack's KMS key,
or SQS-managed encryption when the stack has none (``kmsKey: aws-owned``), and
14 days' retention, SQS's maximum (what waits there is what an operator
has not handled yet). ``send_statements`` is what a role needs to send to one.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.plugins import KMS_ACTIONS

RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum


def queue(name: str, kms_key_arn: pulumi.Input[str] | None, opts: pulumi.ResourceOptions,
          **settings) -> aws.sqs.Queue:
    """The queue ``name``, with ``settings`` (other ``aws.sqs.Queue`` arguments) besides encryption and retention."""
    encryption = ({"kms_master_key_id": kms_key_arn} if kms_key_arn is not None
                  else {"sqs_managed_sse_enabled": True})
    return aws.sqs.Queue(name, message_retention_seconds=RETENTION_SECONDS, **encryption, **settings, opts=opts)


def send_statements(queue_arn: pulumi.Input[str], kms_key_arn: pulumi.Input[str] | None) -> list[dict]:
    """The IAM statements that let a role send to the queue: SendMessage, and the key's use when the queue
    is encrypted with the stack's key."""
    statements = [{"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [queue_arn]}]
    if kms_key_arn is not None:
        statements.append({"Effect": "Allow", "Action": list(KMS_ACTIONS), "Resource": [kms_key_arn]})
    return statements
