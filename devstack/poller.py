"""The event source mapping: the mail sender table's stream, fed to the sender function.

Mirrors the mapping the Pulumi program creates: a filter that lets only
INSERT records through (the others are consumed, never delivered), batches of
up to 100 records in Lambda's DynamoDB Streams event shape, partial batch
responses (``batchItemFailures``: the batch is retried from the first failed
record, records before it are done), bounded retries with backoff (counted
from the latest checkpoint), then the
batch's description goes to the on-failure destination (an SQS queue) and the
poller moves on.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import datetime, timezone

from devstack.lambdas import Function

log = logging.getLogger(__name__)


def lambda_record(record: dict, stream_arn: str, region: str) -> dict:
    """A GetRecords record -> the record Lambda hands a function."""
    ddb = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "eventVersion": "1.1", "awsRegion": region, "dynamodb": ddb,
            "eventSourceARN": stream_arn}


def failed_position(batch: list[dict], result) -> int | None:
    """Index of the first record to retry, or None when the batch succeeded.

    As Lambda reads a partial batch response: an unknown or empty identifier
    fails the whole batch.
    """
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not failures:
        return None
    positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
    ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    if not all(i in positions for i in ids):
        return 0
    return min(positions[i] for i in ids)


class StreamPoller:
    """Polls ``stream_arn`` (every shard, from the start) and invokes ``function``."""

    def __init__(self, streams, stream_arn: str, function: Function, *, region: str,
                 on_failure=None, batch_size: int = 100, interval: float = 0.1,
                 max_retries: int = 3, retry_delay: float = 0.2):
        self.streams = streams
        self.stream_arn = stream_arn
        self.function = function
        self.region = region
        self.on_failure = on_failure
        self.batch_size = batch_size
        self.interval = interval
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.invocations = 0
        self.delivered = 0
        self.filtered = 0
        self.discarded: list[dict] = []
        self._buffer: list[dict] = []
        self._iterators: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "StreamPoller":
        for shard in self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
            self._iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read()
            except Exception:
                log.exception("reading the stream failed")
            self._deliver()
            if not self._buffer:
                self._stop.wait(self.interval)

    def _read(self) -> None:
        for shard, iterator in list(self._iterators.items()):
            answer = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard] = answer["NextShardIterator"]
            for record in answer["Records"]:
                if record.get("eventName") == "INSERT":
                    self._buffer.append(lambda_record(record, self.stream_arn, self.region))
                else:
                    self.filtered += 1

    def _deliver(self) -> None:
        attempts = 0
        while self._buffer and not self._stop.is_set():
            batch = self._buffer[:self.batch_size]
            self.invocations += 1
            try:
                position = failed_position(batch, self.function.invoke({"Records": batch}))
            except Exception:
                log.exception("the sender function failed on a batch of %d", len(batch))
                position = 0
            done = len(batch) if position is None else position
            self.delivered += done
            del self._buffer[:done]
            if position is None:
                attempts = 0
                continue
            attempts = 1 if position else attempts + 1  # progress: a new checkpoint, its first failure
            if attempts > self.max_retries:
                failed = batch[position:]
                del self._buffer[:len(failed)]
                self._discard(failed, attempts)
                attempts = 0
            else:
                self._stop.wait(self.retry_delay * 2 ** (attempts - 1))

    def _discard(self, records: list[dict], attempts: int) -> None:
        info = on_failure_message(records, self.stream_arn, self.function.name, attempts)
        log.warning("sender: %d record(s) failed %d times, sent to the on-failure destination",
                    len(records), attempts)
        self.discarded.append(info)
        if self.on_failure:
            self.on_failure(info)


def on_failure_message(records: list[dict], stream_arn: str, function: str, attempts: int) -> dict:
    """What Lambda sends to an on-failure destination for a stream batch it gave up on."""
    def arrival(record):
        stamp = record["dynamodb"].get("ApproximateCreationDateTime") or 0
        return datetime.fromtimestamp(stamp, timezone.utc).isoformat()

    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function,
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "DDBStreamBatchInfo": {
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(records[0]),
            "approximateArrivalOfLastRecord": arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def to_queue(sqs, queue_url: str):
    """An ``on_failure`` callback sending the message to an SQS queue."""
    def send(info: dict) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(info))
    return send

