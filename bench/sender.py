"""Figure: one stream batch of 100 INSERT records, sent through a SendGrid stand-in that takes 100 ms per call.

Project: ``handlers.sender.handle`` (claim, validate, send on a bounded
thread pool of ``sendgrid_api.CONCURRENCY`` workers, sent-log row, outcome
on the item), default plugins.

Baseline (``sample_sender``): hmatsu47/sendgrid-test's ``testMailSender``:
per record, build the mail with the ``sendgrid`` package, send it, PutItem
into the sent log; one after another. Generous to it: its boto3 resource is
built once outside the timed part, and it skips the claim and the outcome
writes the project makes (3 DynamoDB requests per mail instead of 1).

Both against the same stand-in (``devstack/sendgrid.py``, 127.0.0.1, a fixed
``latency`` per answer) and the same moto server; runs alternate; medians.
"""

from __future__ import annotations

import itertools
import json
import os

import boto3
from boto3.dynamodb.types import TypeDeserializer

from bench.common import Row, alternate, local_aws, median, ms, reset_api_key
from devstack.sendgrid import SendGridStandIn
from handlers import dynamo, sender, sendgrid_api
from handlers.tables import MAIL_SENDER, SENT_LOG

LATENCY = 0.1
RECORDS = 100
REPS = 3
WHAT_IF_WORKERS = 10  # also measured: the sender with this many workers (the setting before 20)
_sequence = itertools.count(1)


def seed_item(item_id: str) -> dict:
    """A mail sender item in the seed's format (from / to as JSON strings)."""
    return {"id": item_id, "from": json.dumps({"email": "news@example.com", "name": "News"}),
            "to": json.dumps([{"email": f"{item_id}@example.com", "name": "Reader"}]),
            "subject": "Benchmark mail", "content": "Hello from the benchmark."}


def stream_record(item: dict) -> dict:
    """The INSERT record DynamoDB Streams hands Lambda for ``item`` (NEW_IMAGE)."""
    n = next(_sequence)
    return {"eventID": f"bench-{n}", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
            "dynamodb": {"Keys": {"id": {"S": item["id"]}}, "NewImage": dynamo.serialize(item),
                         "SequenceNumber": str(n).rjust(21, "0"), "SizeBytes": 300,
                         "StreamViewType": "NEW_IMAGE"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/mail-sender/stream/bench"}


def inserted(tag: str, count: int) -> list[dict]:
    """``count`` items put into the mail sender table; their stream records."""
    items = [seed_item(f"{tag}-{i:04d}") for i in range(count)]
    dynamo.batch_put(MAIL_SENDER, items)
    return [stream_record(item) for item in items]


# --- the baseline: the sample's way -------------------------------------------------------------

_deserializer = TypeDeserializer()


def sample_sender(records: list[dict], sent_log, api_key: str, host: str) -> int:
    """hmatsu47/sendgrid-test ``testMailSender``: send each record's mail, then PutItem; one after another."""
    import sendgrid
    from sendgrid.helpers.mail import Content, Email, Mail, To

    sent = 0
    for record in records:
        if record["eventName"] not in ("INSERT", "MODIFY"):
            continue
        item = {k: _deserializer.deserialize(v) for k, v in record["dynamodb"]["NewImage"].items()}
        sender_address, recipients = json.loads(item["from"]), json.loads(item["to"])
        sg = sendgrid.SendGridAPIClient(api_key=api_key, host=host)
        mail = Mail(Email(sender_address.get("email"), sender_address.get("name")),
                    [To(t.get("email"), t.get("name")) for t in recipients], item["subject"],
                    Content("text/plain", item["content"]))
        response = sg.client.mail.send.post(request_body=mail.get())
        if response.status_code > 299:
            raise RuntimeError("SendGrid API Error.")
        message_id = response.headers["X-Message-Id"].split(".")[0]
        sent_log.put_item(Item={"messageId": message_id, "from": json.dumps(sender_address),
                                "subject": item["subject"], "to": json.dumps(recipients)})
        sent += 1
    return sent


# --- the measurement ------------------------------------------------------------------------------

def run(quick: bool = False) -> list[Row]:
    count, latency, reps = (5, 0.02, 1) if quick else (RECORDS, LATENCY, REPS)
    with local_aws() as (aws, plugins), SendGridStandIn() as standin:
        standin.latency = latency
        os.environ.update({"SENDGRID_API_HOST": standin.url, "SENDGRID_API_KEY": standin.api_key,
                           "SENDGRID_EVENTS_STACK": "bench"})
        reset_api_key()
        batches = [(inserted(f"p{rep}", count), inserted(f"b{rep}", count), inserted(f"w{rep}", count))
                   for rep in range(reps + 1)]
        sent_log = boto3.resource("dynamodb").Table(os.environ[SENT_LOG.env_var])

        def with_workers(workers: int, records: list[dict]) -> None:
            saved = sendgrid_api.CONCURRENCY
            sendgrid_api.CONCURRENCY = workers  # the thread pool and the connection pool
            sendgrid_api.http.cache_clear()
            try:
                answer = sender.handle(records, plugins)
            finally:
                sendgrid_api.CONCURRENCY = saved
                sendgrid_api.http.cache_clear()
            if answer["batchItemFailures"]:
                raise RuntimeError(f"sender reported failures: {answer}")

        def project(rep):
            with_workers(sendgrid_api.CONCURRENCY, batches[rep][0])

        def what_if(rep):
            with_workers(WHAT_IF_WORKERS, batches[rep][2])

        def baseline(rep):
            if sample_sender(batches[rep][1], sent_log, standin.api_key, standin.url) != count:
                raise RuntimeError("the baseline did not send every mail")

        times = alternate({"project": project, "baseline": baseline, "what_if": what_if}, reps)
        accepted = len(standin.accepted)
    reset_api_key()
    if accepted != 3 * count * (reps + 1):
        raise RuntimeError(f"the stand-in accepted {accepted} mails, expected {3 * count * (reps + 1)}")
    p, b, w = median(times["project"]), median(times["baseline"]), median(times["what_if"])

    def floor(workers):
        return -(-count // min(workers, count)) * latency

    case = f"{count} INSERTs, SendGrid {latency * 1000:.0f} ms"
    workers = min(sendgrid_api.CONCURRENCY, count)
    return [Row("sender", case, b / p, f"{ms(p)} ({workers} workers)", f"{ms(b)} (one after another)",
                f"floor with {workers} workers: {ms(floor(workers))} (at most {count * latency / floor(workers):.0f}x); "
                f"median of {reps}"),
            Row("sender", f"{case}, what if CONCURRENCY={WHAT_IF_WORKERS}", b / w,
                f"{ms(w)} ({min(WHAT_IF_WORKERS, count)} workers)", f"{ms(b)} (same runs)",
                f"not the shipped setting; floor {ms(floor(WHAT_IF_WORKERS))}; median of {reps}")]


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
