"""``redrive``: what the sender's on-failure queue holds, mapped back to mail sender items; ``--ingest``.

Lambda puts a message on the sender's on-failure queue (``dlqUrl``) for each
stream batch it gave up on (retries exhausted, records too old). The message
holds no records, only where they are in the stream: shard, first and last
sequence number. ``redrive`` reads those records back from the stream
(DynamoDB Streams keeps them 24 hours: a message older than that is reported
``expired``) and each item's state now in the mail sender table.

Without ``--resend`` nothing changes: the messages read are made visible again
at once. With ``--resend``, each item that was not sent (no ``status``, or
``failed``) is copied under a new id (``<id>-resend-<8 hex>``: never the same
id, which the sender's claim would treat as the old mail), the copy carrying
``resentFrom`` and the original ``resentAs``; the sender then sends the copy.
A message is deleted once none of its items needs anything (sent, rejected,
gone, or resent). An item still ``sending`` is never resent: the send may
have reached SendGrid (Mail Send has no idempotency key), so it is listed and
its message kept; check SendGrid's activity for it first.

``redrive --ingest`` (``ingest: queue``): the webhook posts that kept failing
and wait in the ingest dead-letter queue (``ingestDlqUrl``): when each was
received, how many events and bytes it holds. ``--resend`` puts each back on
the ingest queue exactly as it was (body, signature headers, receive time:
the signature's age is still checked against the receive time) and removes
it from the dead-letter queue; the webhook function processes it again,
exactly once (its marks skip what was stored before).
"""

from __future__ import annotations

import json
import uuid

from cli.errors import UsageError
from cli.output import table
from cli import periods
from cli.target import INGEST, INGEST_DLQ, SENDER_FAILURES
from handlers import dynamo, ingest
from handlers.sender_item import WRITTEN_ATTRIBUTES
from handlers.tables import MAIL_SENDER

RESENDABLE = (None, "failed")
RESEND, IN_FLIGHT = "resend", "in flight: check SendGrid before resending"  # what an item still needs
READ_VISIBILITY_SECONDS = 60  # how long a message read here stays hidden from another reader
GONE_FROM_STREAM = ("TrimmedDataAccessException", "ExpiredIteratorException", "ResourceNotFoundException")


def register(subparsers) -> None:
    parser = subparsers.add_parser("redrive", help="the sender's on-failure queue, mapped back to items; --resend",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("--resend", action="store_true",
                        help="insert a copy of each item not sent, under a new id, and delete the handled messages "
                             "(with --ingest: put each post back on the ingest queue)")
    parser.add_argument("--ingest", action="store_true",
                        help="the ingest dead-letter queue (webhook posts that kept failing) instead")
    parser.set_defaults(func=run)


def stream_inserts(streams, batch: dict) -> list[dict] | None:
    """The INSERT records of the stream batch an on-failure message names; None when the stream no longer has them."""
    arn, start, end = batch["streamArn"], batch["startSequenceNumber"], int(batch["endSequenceNumber"])
    shards = [batch["shardId"]] if batch.get("shardId") else [
        s["ShardId"] for s in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]]
    for shard in shards:
        try:
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, SequenceNumber=start,
                                                  ShardIteratorType="AT_SEQUENCE_NUMBER")["ShardIterator"]
        except streams.exceptions.ClientError as error:
            if error.response["Error"]["Code"] in (*GONE_FROM_STREAM, "ValidationException"):
                continue  # not this shard, or trimmed
            raise
        found, ended = [], False
        while iterator and not ended:
            answer = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in answer["Records"]:
                if int(record["dynamodb"]["SequenceNumber"]) > end:
                    ended = True
                    break
                if record["eventName"] == "INSERT":
                    found.append(record)
            ended = ended or not answer["Records"]
            iterator = answer.get("NextShardIterator")
        if found:
            return found
    return None


def queued(sqs, queue_url: str, out) -> list[dict]:
    """Every message on the queue, with its attributes (hidden from other readers while this command runs)."""
    messages = []
    with out.progress("reading the queue") as advance:
        while True:
            answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                         VisibilityTimeout=READ_VISIBILITY_SECONDS, AttributeNames=["SentTimestamp"])
            if not answer.get("Messages"):
                return messages
            messages += answer["Messages"]
            advance(len(answer["Messages"]))


def copy_of(item: dict, new_id: str) -> dict:
    """The item as its sender inserted it, under ``new_id``, saying where it comes from."""
    fresh = {k: v for k, v in item.items() if k not in WRITTEN_ATTRIBUTES and k != "resentAs"}
    return {**fresh, MAIL_SENDER.hash_key: new_id, "resentFrom": item[MAIL_SENDER.hash_key]}


def resend(dynamodb, table: str, item: dict) -> str:
    """Insert a copy of ``item`` under a new id, then note it on the original; the new id."""
    key = MAIL_SENDER.hash_key
    new_id = f"{item[key]}-resend-{uuid.uuid4().hex[:8]}"
    dynamodb.put_item(TableName=table, Item=dynamo.serialize(copy_of(item, new_id)),
                      ConditionExpression="attribute_not_exists(#k)", ExpressionAttributeNames={"#k": key})
    dynamodb.update_item(TableName=table, Key={key: {"S": item[key]}}, UpdateExpression="SET resentAs = :n",
                         ExpressionAttributeValues={":n": {"S": new_id}})
    return new_id


def action_for(item: dict | None) -> str:
    if item is None:
        return "gone"
    status = item.get("status")
    if item.get("resentAs"):
        return f"resent as {item['resentAs']}"
    if status in RESENDABLE:
        return RESEND
    return IN_FLIGHT if status == "sending" else "nothing"


def queue_of(target, name: str, what: str) -> str:
    url = target.queues.get(name)
    if not url:
        raise UsageError(f"stack {target.name!r} names no {what}")
    return url


def run(target, args) -> int:
    return (run_ingest if args.ingest else run_sender)(target, args)


def move_back(sqs, message: dict, queue_url: str) -> None:
    """Put a dead-letter queue's ``message`` back on ``queue_url`` as it was (body and attributes)."""
    sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"],
                     MessageAttributes=message.get("MessageAttributes") or {})


def run_ingest(target, args) -> int:
    dlq = queue_of(target, INGEST_DLQ, "ingest dead-letter queue (ingestDlqUrl: the stack runs ingest: direct?)")
    queue = queue_of(target, INGEST, "ingest queue (ingestQueueUrl)")
    sqs = target.client("sqs")
    messages = queued(sqs, dlq, args.out)
    posts = []
    for message in args.out.track(messages, "moving posts back" if args.resend else "reading posts", len(messages)):
        attributes = message.get("MessageAttributes") or {}
        received = (attributes.get(ingest.RECEIVED_AT) or {}).get("StringValue")
        try:
            events = len(json.loads(message["Body"]))
        except (ValueError, TypeError):
            events = None
        if args.resend:
            move_back(sqs, message, queue)
        posts.append({"receivedAt": periods.iso(int(received) / 1000) if received else None, "events": events,
                      "bytes": len(message["Body"].encode()), "signed": ingest.SIGNATURE in attributes,
                      "movedBack": bool(args.resend)})
    handles = [m["ReceiptHandle"] for m in messages]
    moved, kept = (handles, []) if args.resend else ([], handles)  # every post moved back, or none
    _finish(sqs, dlq, moved, kept)

    def render(console):
        console.print(table(f"{len(posts)} post(s) in the ingest dead-letter queue"
                            + (", moved back to the ingest queue" if args.resend else ""),
                            ("received", "events", "bytes", "signed"),
                            [(p["receivedAt"], p["events"], p["bytes"], p["signed"]) for p in posts]))

    args.out.result({"posts": posts, "movedBack": len(moved)}, render)
    return 0


def run_sender(target, args) -> int:
    queue_url = queue_of(target, SENDER_FAILURES, "on-failure queue (its dlqUrl output)")
    sqs, streams, dynamodb = target.client("sqs"), target.client("dynamodbstreams"), target.client("dynamodb")
    mail_table = target.table(MAIL_SENDER.name)
    messages = queued(sqs, queue_url, args.out)
    report, handled, kept = [], [], []
    for message in args.out.track(messages, "mapping batches to items", len(messages)):
        info = json.loads(message["Body"])
        batch = info.get("DDBStreamBatchInfo") or {}
        records = stream_inserts(streams, batch) if batch else None
        entry = {"condition": info.get("requestContext", {}).get("condition"),
                 "attempts": info.get("requestContext", {}).get("approximateInvokeCount"),
                 "firstArrival": batch.get("approximateArrivalOfFirstRecord"), "batchSize": batch.get("batchSize"),
                 "expired": records is None, "items": []}
        ids = [record["dynamodb"]["Keys"][MAIL_SENDER.hash_key]["S"] for record in records or []]
        items = dynamo.batch_get(mail_table, MAIL_SENDER.hash_key, ids, dynamodb=dynamodb)  # consistent reads
        for item_id in ids:
            item = items.get(item_id)
            action = action_for(item)
            if args.resend and action == RESEND:
                new_id = resend(dynamodb, mail_table, item)
                items[item_id] = {**item, "resentAs": new_id}  # the same id INSERTed again later: not resent twice
                action = f"resent as {new_id}"
            entry["items"].append({"id": item_id, "status": (item or {}).get("status"),
                                   "error": (item or {}).get("error"), "action": action})
        settled = not entry["expired"] and not any(i["action"] in (RESEND, IN_FLIGHT) for i in entry["items"])
        (handled if args.resend and settled else kept).append(message["ReceiptHandle"])
        entry["deleted"] = args.resend and settled
        report.append(entry)
    _finish(sqs, queue_url, handled, kept)

    def render(console):
        rows = [(e["firstArrival"], e["condition"], i["id"], i["status"], i["action"])
                for e in report for i in e["items"] or [{"id": "(expired from the stream)", "status": None,
                                                         "action": "look in the table by time"}]]
        console.print(table(f"{len(report)} failed batch(es) on the on-failure queue",
                            ("first record", "why", "item", "status", "action"), rows))

    args.out.result({"batches": report, "deleted": len(handled)}, render)
    return 0


def _finish(sqs, queue_url: str, handled: list[str], kept: list[str]) -> None:
    """Delete the messages handled; make the others visible again at once."""
    for start in range(0, len(handled), 10):
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handled[start:start + 10])])
    for start in range(0, len(kept), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(kept[start:start + 10])])
