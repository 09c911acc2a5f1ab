"""Issue 7's plugins end to end through the local stack (moto server, stand-in, webhook front, poller)."""

import json

from devstack import demo
from devstack.testing import local_stack  # noqa: F401  (the fixture)

PLUGINS = "bounce,dropped,delivered,deferred,dynamodb,history,sns,suppression"


def item(item_id, *emails):
    return demo.seed_item(item_id, [{"email": e, "name": e.split("@")[0]} for e in emails], "Test mail")


def inbox(stack):
    """An SQS queue subscribed to the local notification topic; returns a reader."""
    sqs = stack.aws.client("sqs")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.aws.client("sns").subscribe(TopicArn=stack.state["env"]["webhook"]["SNS_TOPIC_ARN"],
                                      Protocol="sqs", Endpoint=arn)

    def read():
        messages = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            messages += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        return messages
    return read


def test_a_bounced_address_is_stored_traced_notified_once_and_then_suppressed(local_stack):
    stack = local_stack(PLUGINS)
    notifications = inbox(stack)

    stack.insert(item("m1", "ok@example.com", "nobody@bounce.test"))
    [first] = stack.wait_settled("m1")
    assert first["status"] == "sent"

    [row] = stack.scan("bounce")
    assert (row["toEmail"], row["type"], row["bounceClassification"]) == (
        "nobody@bounce.test", "bounce", "Invalid Address")

    trail = sorted((r for r in stack.scan("event_history") if r["messageId"] == first["messageId"]),
                   key=lambda r: r["eventKey"])
    # "processed" is not an enabled type here: ignored, so not in the history
    assert [r["event"] for r in trail if r.get("email") in (None, "nobody@bounce.test")] == ["sent", "bounce"]
    assert [r["event"] for r in trail if r.get("email") == "ok@example.com"] == ["delivered"]
    assert trail[0]["to"] == ["ok@example.com", "nobody@bounce.test"]

    [message] = notifications()
    assert message["Subject"] == "SendGrid bounce: nobody@bounce.test - Invalid Address"
    assert json.loads(message["Message"])["messageId"] == first["messageId"]
    assert message["MessageAttributes"]["bounceClassification"]["Value"] == "Invalid Address"

    stack.insert(item("m2", "nobody@bounce.test", "again@example.com"))
    stack.insert(item("m3", "Nobody@Bounce.test"))
    second, third = stack.wait_settled("m2", "m3")
    assert second["status"] == "sent"
    assert list(second["suppressed"]) == ["nobody@bounce.test"]
    assert second["suppressed"]["nobody@bounce.test"].startswith("hard bounce: 5.1.1 Invalid Address")
    assert [a.payload["personalizations"][0]["to"] for a in stack.sendgrid.accepted][1] == [
        {"email": "again@example.com", "name": "again"}]
    assert (third["status"], list(third["suppressed"])) == ("rejected", ["nobody@bounce.test"])
    assert len(stack.sendgrid.accepted) == 2
    assert notifications() == []  # no new bounce, no new notification
