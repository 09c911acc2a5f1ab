"""Lambda's poller for a DynamoDB stream, following the applied event source mapping.

Reads every shard of the mapped stream (from the mapping's starting
position) with the function's own credentials, as Lambda's poller uses the
function's role. Records the mapping's filter criteria do not match are
consumed, never delivered. The rest go to the function in batches of up to
``BatchSize``, in Lambda's DynamoDB Streams event shape. With
``ReportBatchItemFailures`` a ``batchItemFailures`` answer retries the batch
from the first failed record (records before it are done); without it, only
an error fails a batch. A failing batch is split in two when
``BisectBatchOnFunctionError`` is on (splitting is not a retry); a record is
retried ``MaximumRetryAttempts`` times (counted from the latest checkpoint;
-1: until it expires) and dropped once older than
``MaximumRecordAgeInSeconds``; either way the batch's description goes to the
on-failure destination and the poller moves on.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone

from devstack.background import Loop

log = logging.getLogger(__name__)

MISSING = object()


def matches(pattern: dict, value) -> bool:
    """Whether ``value`` (a record) matches a Lambda event filter ``pattern``.

    Supported: nested objects, lists of allowed values (equality), and the
    ``exists``, ``prefix`` and ``anything-but`` rules; another rule is an
    error, never silently a match.
    """
    for key, rule in pattern.items():
        found = value.get(key, MISSING) if isinstance(value, dict) else MISSING
        if isinstance(rule, dict):  # deeper keys of an absent object are absent (``exists: false`` holds)
            if not matches(rule, found if isinstance(found, dict) else {}):
                return False
        elif isinstance(rule, list):
            if not any(_allowed(r, found) for r in rule):
                return False
        else:
            raise ValueError(f"filter pattern: the rule for {key!r} must be an object or a list, not {rule!r}")
    return True


def _allowed(rule, found) -> bool:
    if isinstance(rule, dict):
        [(name, argument)] = rule.items()
        if name == "exists":
            return (found is not MISSING) == bool(argument)
        if found is MISSING:
            return False
        if name == "prefix":
            return isinstance(found, str) and found.startswith(argument)
        if name == "anything-but":
            return found not in (argument if isinstance(argument, list) else [argument])
        raise ValueError(f"filter pattern: the local poller does not support the rule {name!r}")
    return found is not MISSING and found == rule


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


class StreamPoller(Loop):
    """Polls the stream of ``mapping`` (a ``devstack.applied.StreamMapping``) and invokes ``function``."""

    thread_name = "stream-poller"

    def __init__(self, streams, mapping, function, *, region: str, on_failure=None,
                 interval: float = 0.1, retry_delay: float = 0.2):
        self.streams = streams
        self.mapping = mapping
        self.function = function
        self.region = region
        self.on_failure = on_failure
        self.interval = interval
        self.retry_delay = retry_delay
        self.invocations = 0
        self.delivered = 0
        self.filtered = 0
        self.discarded: list[dict] = []
        self._buffer: list[dict] = []
        self._iterators: dict[str, str] = {}
        self._shard_of: dict[str, str] = {}  # sequence number -> shard (for the on-failure message)

    def start(self) -> "StreamPoller":
        arn = self.mapping.stream_arn
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            self._iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"],
                ShardIteratorType=self.mapping.starting_position)["ShardIterator"]
        return super().start()

    def step(self) -> bool:
        """Read what the stream has, deliver what is buffered; whether records are still waiting."""
        try:
            self._read()
        except Exception:
            log.exception("reading the stream failed")
        self._deliver()
        return bool(self._buffer)

    def _read(self) -> None:
        for shard, iterator in list(self._iterators.items()):
            answer = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            self._iterators[shard] = answer["NextShardIterator"]
            for record in answer["Records"]:
                record = lambda_record(record, self.mapping.stream_arn, self.region)
                if not self.mapping.filters or any(matches(p, record) for p in self.mapping.filters):
                    self._shard_of[record["dynamodb"]["SequenceNumber"]] = shard
                    self._buffer.append(record)
                else:
                    self.filtered += 1

    def _deliver(self) -> None:
        full = self.mapping.batch_size
        attempts, limit, split = 0, full, 0  # split: records left of the batch that was bisected
        while self._buffer and not self.stopped:
            if self._expired():
                attempts, limit, split = 0, full, 0
                continue
            batch = self._buffer[:limit]
            self.invocations += 1
            try:
                result = self.function.invoke({"Records": batch})
                position = failed_position(batch, result) if self.mapping.report_failures else None
                errored = False
            except Exception as exc:
                log.warning("the %s function failed on a batch of %d: %s", self.function.name, len(batch), exc)
                position, errored = 0, True
            done = len(batch) if position is None else position
            self.delivered += done
            for record in self._buffer[:done]:
                self._shard_of.pop(record["dynamodb"]["SequenceNumber"], None)
            del self._buffer[:done]
            split -= done
            if split <= 0:  # past the bisected batch: full batches again
                limit, split = full, 0
            if position is None:
                attempts = 0
                continue
            if errored and self.mapping.bisect and len(batch) > 1:
                limit, split = (len(batch) + 1) // 2, len(batch)  # try each half on its own; not a retry
                continue
            attempts = 1 if position else attempts + 1  # progress: a new checkpoint, its first failure
            if 0 <= self.mapping.max_retries < attempts:
                failed = batch[position:]
                del self._buffer[:len(failed)]
                self._discard(failed, attempts, "RetryAttemptsExhausted")
                attempts, limit, split = 0, full, 0
            else:
                self.wait(self.retry_delay * 2 ** min(attempts - 1, 5))

    def _expired(self) -> bool:
        """Drop the records at the head of the buffer that are older than the mapping allows."""
        if self.mapping.max_record_age < 0:
            return False
        oldest = time.time() - self.mapping.max_record_age
        count = 0
        for record in self._buffer:
            if record["dynamodb"].get("ApproximateCreationDateTime", time.time()) >= oldest:
                break
            count += 1
        if count:
            expired, self._buffer[:count] = self._buffer[:count], []
            self._discard(expired, 0, "RecordAgeExceeded")
        return bool(count)

    def _discard(self, records: list[dict], attempts: int, condition: str) -> None:
        shard = self._shard_of.get(records[0]["dynamodb"]["SequenceNumber"])
        for record in records:
            self._shard_of.pop(record["dynamodb"]["SequenceNumber"], None)
        info = on_failure_message(records, self.mapping.stream_arn, self.function.name, attempts, condition, shard)
        log.warning("%s: %d record(s) sent to the on-failure destination (%s)",
                    self.function.name, len(records), condition)
        self.discarded.append(info)
        if self.on_failure:
            self.on_failure(info)


def on_failure_message(records: list[dict], stream_arn: str, function: str, attempts: int,
                       condition: str = "RetryAttemptsExhausted", shard: str | None = None) -> dict:
    """What Lambda sends to an on-failure destination for a stream batch it gave up on."""
    def arrival(record):
        stamp = record["dynamodb"].get("ApproximateCreationDateTime") or 0
        return datetime.fromtimestamp(stamp, timezone.utc).isoformat()

    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function,
                           "condition": condition, "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "DDBStreamBatchInfo": {
            "shardId": shard,
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
