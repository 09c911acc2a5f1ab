"""What SNS published locally: one queue subscribed to every topic the program made.

In AWS a topic's notifications go to e-mail addresses or endpoints; locally
nobody would see them. So the local stack (not the program: nothing of this
is deployed) subscribes one SQS queue of its own, ``<stack prefix>devstack-messages``,
to each SNS topic the program registered (the ``sns`` plugin's, the alarms'),
and ``python -m devstack messages`` prints what arrived, oldest first, and
removes it from the queue (``--follow`` keeps waiting). The state file names
the queue (``queues.messages``) and the topics (``topics``: name -> ARN).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

QUEUE_SUFFIX = "devstack-messages"
WAIT_SECONDS = 1  # a long poll: an empty queue answers after this, a message at once


def subscribe(sqs, sns, prefix: str, topic_arns: list[str]) -> str:
    """The messages queue (made here), subscribed to each topic; its URL."""
    url = sqs.create_queue(QueueName=f"{prefix}{QUEUE_SUFFIX}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for topic in topic_arns:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def notification(body: str) -> dict:
    """One SNS notification, as SQS holds it (SNS's JSON envelope), in plain terms."""
    envelope = json.loads(body)
    message = envelope.get("Message", "")
    try:
        message = json.loads(message)
    except json.JSONDecodeError:
        pass  # a text message (an alarm's is JSON, a plugin's may be anything)
    return {
        "topic": envelope.get("TopicArn", "").rsplit(":", 1)[-1],
        "subject": envelope.get("Subject"),
        "timestamp": envelope.get("Timestamp"),
        "attributes": {k: v.get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()},
        "message": message,
    }


def take(sqs, queue_url: str, wait: int = 0) -> list[dict]:
    """Every notification waiting in the queue (deleted once read), oldest first."""
    found = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        messages = answer.get("Messages", [])
        if not messages:
            break
        found += [notification(m["Body"]) for m in messages]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        wait = 0  # drain what is there without waiting again
    return sorted(found, key=lambda n: n["timestamp"] or "")


def show(found: dict) -> str:
    """A notification for a person: when, topic, subject, then the message (JSON indented)."""
    when = found["timestamp"] or datetime.now(timezone.utc).isoformat()
    head = f"{when}  {found['topic']}" + (f"  {found['subject']}" if found["subject"] else "")
    attributes = "".join(f"\n  {k}: {v}" for k, v in sorted(found["attributes"].items()))
    message = found["message"]
    text = message if isinstance(message, str) else json.dumps(message, indent=2, sort_keys=True)
    return head + attributes + "\n" + "\n".join("  " + line for line in text.splitlines())
