"""Lambda's poller for an SQS queue, following the applied event source mapping (``ingest: queue``).

With the function's own credentials (as Lambda polls with the function's
role: ReceiveMessage, DeleteMessage), it receives up to ``BatchSize``
messages, hands them to the function in Lambda's SQS event shape, and deletes
those that succeeded. With ``ReportBatchItemFailures`` the answer's
``batchItemFailures`` are left on the queue (an unknown or empty identifier
fails the whole batch, as in Lambda); an error leaves the whole batch. A
message left on the queue is received again once its visibility timeout has
passed, and SQS (moto implements it) moves it to the dead-letter queue once
it has been received ``maxReceiveCount`` times.

Time is compressed locally: a received message stays hidden ``retry_delay``
seconds (at most the queue's own visibility timeout, 174 s in AWS), so a
retry comes within a test's patience. One invocation at a time.
"""

from __future__ import annotations

import logging

from devstack.background import Loop

log = logging.getLogger(__name__)

RECEIVE_MAX = 10  # SQS: messages per ReceiveMessage


def lambda_message(message: dict, queue_arn: str, region: str) -> dict:
    """A ReceiveMessage message -> the record Lambda hands a function."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                            "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        attributes[name] = {k: v for k, v in attributes[name].items() if v is not None}
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": dict(message.get("Attributes") or {}), "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
            "awsRegion": region}


def failed_ids(batch: list[dict], result, report_failures: bool) -> set[str]:
    """The message ids to leave on the queue, as Lambda reads the function's answer."""
    every = {m["messageId"] for m in batch}
    failures = result.get("batchItemFailures") if report_failures and isinstance(result, dict) else None
    if not failures:
        return set()
    ids = {f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures}
    return every if not ids <= every else ids


class QueuePoller(Loop):
    """Polls the queue of ``mapping`` (a ``devstack.applied.QueueMapping``) and invokes ``function``."""

    thread_name = "queue-poller"
    join_seconds = 60.0

    def __init__(self, sqs, mapping, function, *, region: str, interval: float = 0.1, retry_delay: float = 0.5):
        self.sqs, self.mapping, self.function, self.region = sqs, mapping, function, region
        self.interval = interval
        self.hidden = max(1, min(int(round(retry_delay)), mapping.visibility_timeout))
        self.delivered = self.failed = 0

    def drained(self) -> bool:
        """Whether the queue holds nothing, not even a message being processed."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.mapping.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return not any(int(v) for v in attributes.values())

    def step(self) -> bool:
        """One receive and, if it got messages, one invocation; whether it got any."""
        received = self.sqs.receive_message(
            QueueUrl=self.mapping.queue_url, MaxNumberOfMessages=min(self.mapping.batch_size, RECEIVE_MAX),
            MessageAttributeNames=["All"], AttributeNames=["All"], VisibilityTimeout=self.hidden,
            WaitTimeSeconds=0).get("Messages") or []
        if not received:
            return False
        batch = [lambda_message(m, self.mapping.queue_arn, self.region) for m in received]
        try:
            failed = failed_ids(batch, self.function.invoke({"Records": batch}), self.mapping.report_failures)
        except Exception as exc:
            log.warning("the %s function failed on a batch of %d: %s", self.function.name, len(batch), exc)
            failed = {m["messageId"] for m in batch}
        for message in batch:
            if message["messageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.mapping.queue_url, ReceiptHandle=message["receiptHandle"])
        self.delivered += len(batch) - len(failed)
        self.failed += len(failed)
        return True
