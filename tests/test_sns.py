"""The ``sns`` sink: one notification per accepted event of the configured types."""

import json

import pytest
from botocore.exceptions import ClientError

from handlers import webhook
from handlers.delivery import Rejected
from plugins import sns
from tests.plugin_infra import KMS_KEY_ARN, run_infrastructure
from tests.support import sample, scan
from tests.webhook_support import Faults, Poison, Recorder, endpoint, notifications, notified  # noqa: F401


def post(plugins, events):
    return webhook.receive(json.dumps(events).encode(), plugins)


def bounce(i=0, **extra):
    return {**sample("bounce.json"), "sg_event_id": f"bounce-{i}", "email": f"nobody{i}@bounce.test", **extra}


def test_one_readable_notification_per_bounce_and_dropped_by_default(stack, notifications):
    plugins = stack("bounce,dropped,delivered,sns")
    post(plugins, [sample("delivered.json"), sample("bounce.json"), sample("dropped.json")])

    bounced, dropped = notifications()
    assert bounced["Subject"] == "SendGrid bounce: nobody@bounce.test - Invalid Address"
    assert dropped["Subject"] == f"SendGrid dropped: {sample('dropped.json')['email']} - Bounced Address"
    body = json.loads(bounced["Message"])
    assert (body["event"], body["status"], body["reason"]) == ("bounce", "5.0.0", "500 unknown recipient")
    assert body["time"] == "2025-11-29T07:06:40+00:00" and body["sgEvent"] == sample("bounce.json")
    assert bounced["MessageAttributes"] == {
        "event": {"Type": "String", "Value": "bounce"}, "type": {"Type": "String", "Value": "bounce"},
        "bounceClassification": {"Type": "String", "Value": "Invalid Address"}}
    assert dropped["MessageAttributes"]["event"]["Value"] == "dropped"


def test_sns_events_chooses_the_types(stack, notifications, monkeypatch):
    monkeypatch.setenv("SNS_EVENTS", "delivered, bounce")
    plugins = stack("bounce,dropped,delivered,sns")
    post(plugins, [sample("delivered.json"), bounce(type="blocked", bounce_classification=None,
                                                     reason="421 try later"), sample("dropped.json")])
    assert [m["Subject"] for m in notifications()] == [
        "SendGrid delivered: example@test.com",
        "SendGrid bounce (blocked): nobody0@bounce.test - 421 try later"]


def test_a_large_batch_is_published_ten_per_call(stack, notifications, monkeypatch):
    plugins = stack("bounce,sns")
    calls = []
    real = sns.client().publish_batch
    monkeypatch.setattr(sns.client(), "publish_batch",
                        lambda **kw: calls.append(len(kw["PublishBatchRequestEntries"])) or real(**kw))
    post(plugins, [bounce(i) for i in range(23)])
    assert calls == [10, 10, 3]
    assert sorted(json.loads(m["Message"])["email"] for m in notifications()) == sorted(
        f"nobody{i}@bounce.test" for i in range(23))


def test_subject_is_ascii_one_line_and_under_100_characters():
    record = {"event": "bounce", "type": "bounce", "email": "usér@例え.jp",
              "reason": "550 " + "x" * 200 + "\r\nsecond line"}
    text = sns.subject(record)
    assert text.startswith("SendGrid bounce: us?r@??.jp - 550 xxx") and text.endswith("...")
    assert len(text) < 100 and text.isascii() and "\n" not in text and "\r" not in text


class FlakySNS:
    """Fails the given entry ids once (SNS-side or sender fault), then accepts."""

    def __init__(self, fail_ids, sender_fault=False):
        self.fail_ids, self.sender_fault, self.calls = set(fail_ids), sender_fault, []

    def publish_batch(self, TopicArn, PublishBatchRequestEntries):
        ids = [e["Id"] for e in PublishBatchRequestEntries]
        self.calls.append(ids)
        failed = [{"Id": i, "Code": "InternalError", "SenderFault": self.sender_fault}
                  for i in ids if i in self.fail_ids]
        self.fail_ids -= set(ids)
        return {"Successful": [{"Id": i} for i in ids if i not in {f["Id"] for f in failed}], "Failed": failed}


def test_entries_sns_failed_on_its_side_are_retried_alone(monkeypatch):
    monkeypatch.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:notify")
    flaky = FlakySNS({"1"})
    monkeypatch.setattr(sns, "client", lambda: flaky)
    records = [{"eventId": f"e{i}", "event": "bounce", "email": f"a{i}@x.test", "timestamp": 1764400000}
               for i in range(3)]
    sns.write(records)
    assert flaky.calls == [["0", "1", "2"], ["1"]]


class DownAfter:
    """PublishBatch that works for ``calls`` calls, then raises (an outage mid-batch)."""

    def __init__(self, calls: int):
        self.left, self.published = calls, []

    def publish_batch(self, TopicArn, PublishBatchRequestEntries):
        if not self.left:
            raise RuntimeError("SNS is down")
        self.left -= 1
        self.published += [e["Id"] for e in PublishBatchRequestEntries]
        return {"Successful": [{"Id": e["Id"]} for e in PublishBatchRequestEntries], "Failed": []}


def test_a_failure_mid_batch_says_which_records_were_published(monkeypatch):
    from handlers.delivery import PartiallyWritten

    monkeypatch.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:notify")
    down = DownAfter(calls=1)
    monkeypatch.setattr(sns, "client", lambda: down)
    records = [{"eventId": f"e{i}", "event": "delivered" if i == 3 else "bounce", "email": f"a{i}@x.test",
                "timestamp": 1764400000} for i in range(15)]
    with pytest.raises(PartiallyWritten) as info:
        sns.write(records)
    # the first ten notified records went out; the delivered one needs no notification
    expected = {f"e{i}" for i in range(11)}
    assert info.value.written == expected


def test_a_failure_on_the_first_call_is_a_plain_failure(monkeypatch):
    monkeypatch.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:notify")
    down = DownAfter(calls=0)
    monkeypatch.setattr(sns, "client", lambda: down)
    with pytest.raises(RuntimeError, match="SNS is down"):
        sns.write([{"eventId": "e0", "event": "bounce", "email": "a@x.test", "timestamp": 1764400000}])


def test_an_outage_mid_batch_then_a_retry_notifies_each_event_once(endpoint, notifications, monkeypatch):
    webhook_ = endpoint("bounce,dropped,dynamodb,sns")
    events = [bounce(i) for i in range(25)]
    client = sns.client()
    real, calls = client.publish_batch, []

    def publish_batch(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("SNS is down")
        return real(**kwargs)

    monkeypatch.setattr(client, "publish_batch", publish_batch)
    assert [webhook_.post(events)[0] for _ in range(2)] == [503, 200]
    notified = [json.loads(m["Message"])["email"] for m in notifications()]
    assert sorted(notified) == sorted(e["email"] for e in events)


def test_an_entry_sns_refuses_raises(monkeypatch):
    monkeypatch.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:notify")
    monkeypatch.setattr(sns, "client", lambda: FlakySNS({"0"}, sender_fault=True))
    with pytest.raises(sns.NotPublished, match="refused"):
        sns.write([{"event": "bounce", "email": "a@x.test", "timestamp": 1764400000}])


def test_registered_as_not_idempotent():
    from handlers import manager
    [sink] = manager.build("sns").sinks
    assert (sink.name, sink.idempotent) == ("sns", False)


def test_the_same_batch_posted_twice_notifies_once(endpoint, notifications):
    """SendGrid re-posts batches; the webhook's dedup keeps the sns sink from seeing a record twice."""
    webhook_ = endpoint("bounce,dropped,dynamodb,sns")
    events = [sample("bounce.json"), sample("dropped.json")]
    assert [webhook_.post(events)[0] for _ in range(2)] == [200, 200]
    assert len(notifications()) == 2


def test_a_batch_retried_after_another_sink_failed_notifies_once(endpoint, notifications):
    failing = Recorder(name="flaky", idempotent=True, fail=1)
    webhook_ = endpoint("bounce,dropped,dynamodb,sns", failing.sink)
    events = [sample("bounce.json"), sample("dropped.json")]
    assert [webhook_.post(events)[0] for _ in range(2)] == [503, 200]
    assert len(failing.seen) == 2
    assert sorted(json.loads(m["Message"])["event"] for m in notifications()) == ["bounce", "dropped"]


def test_infrastructure_makes_an_encrypted_topic_its_subscriptions_env_and_iam():
    made = run_infrastructure("sns", {"snsEmails": ["ops@example.com", "dev@example.com"],
                                      "snsEvents": ["bounce"]})
    [topic] = made.of_type("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == KMS_KEY_ARN
    assert topic.inputs["name"] == "sendgrid-events-test-notify"
    subs = made.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted((s.inputs["protocol"], s.inputs["endpoint"]) for s in subs) == [
        ("email", "dev@example.com"), ("email", "ops@example.com")]
    topic_arn = "arn:aws:sns:us-east-1:123456789012:topic/sns-notify"
    assert all(s.inputs["topic"] == topic_arn for s in subs)
    assert made.env["webhook"] == {"SNS_TOPIC_ARN": topic_arn, "SNS_EVENTS": "bounce"}
    assert made.statements["webhook"] == [
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": [topic_arn]},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KMS_KEY_ARN]}]
    assert made.env["sender"] == {} and made.statements["sender"] == []
    assert made.outputs == {"snsTopicArn": topic_arn}


def test_infrastructure_without_a_cmk_uses_the_aws_managed_key_and_defaults():
    made = run_infrastructure("sns", kms_key_arn=None)
    [topic] = made.of_type("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == "alias/aws/sns"
    assert made.of_type("aws:sns/topicSubscription:TopicSubscription") == []
    assert made.env["webhook"]["SNS_EVENTS"] == "bounce,dropped"
    assert [s["Action"] for s in made.statements["webhook"]] == [["sns:Publish"]]


def test_not_enabled_means_no_topic():
    made = run_infrastructure("bounce,dropped,dynamodb", {"snsEmails": ["ops@example.com"]})
    assert made.resources == [] and made.outputs == {}
    assert not {"SNS_TOPIC_ARN", "SNS_EVENTS"} & set(made.env["webhook"]) and made.statements["webhook"] == []


def big_bounce(i: int, elements: int) -> dict:
    """A bounce whose ``reason`` is a list: about 3 bytes per element as sent, far more indented."""
    return bounce(i, reason=[0] * elements)


def test_publish_batch_is_split_by_total_size_as_well_as_count(stack, notifications, monkeypatch):
    plugins = stack("bounce,sns")
    sizes = []
    real = sns.client().publish_batch
    monkeypatch.setattr(sns.client(), "publish_batch", lambda **kw: sizes.append(
        [sns.size(e) for e in kw["PublishBatchRequestEntries"]]) or real(**kw))
    post(plugins, [big_bounce(i, 6000) for i in range(5)])  # each notification about 100 KB indented
    assert [len(s) for s in sizes] == [2, 2, 1]
    assert all(sum(s) <= sns.MAX_BYTES for s in sizes) and min(sum(s) for s in sizes[:2]) > sns.MAX_BYTES / 2
    assert len(notifications()) == 5


def test_a_notification_too_long_indented_is_sent_compact(endpoint, notifications):
    """The review's case: a 57 KB bounce (inside the webhook's 64 KB) whose indented notification is over
    256 KB, which SNS refused ("Message too long") on every retry."""
    web = endpoint("bounce,dropped,dynamodb,sns")
    event = big_bounce(1, 19_000)
    assert 50_000 < len(json.dumps(event)) < 64 * 1024
    assert len(json.dumps({**event, "sgEvent": event}, indent=2)) > sns.MAX_BYTES
    assert web.post([event, bounce(2)])[0] == 200
    messages = notifications()
    assert len(messages) == 2 and all(len(m["Message"].encode()) <= sns.MAX_BYTES for m in messages)


def test_a_notification_sns_can_never_take_is_rejected_and_the_rest_published(monkeypatch):
    monkeypatch.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:notify")
    flaky = FlakySNS(set())
    monkeypatch.setattr(sns, "client", lambda: flaky)
    records = [{"eventId": f"e{i}", "event": "bounce", "email": f"a{i}@x.test", "timestamp": 1764400000}
               for i in range(3)]
    records[1]["reason"] = "x" * (sns.MAX_BYTES + 1)  # no plugin makes such a record; any may
    with pytest.raises(Rejected) as info:
        sns.write(records)
    assert info.value.reasons == {"e1": f"notification is {sns.size(sns.entry('1', records[1]))} bytes, "
                                        f"over SNS's {sns.MAX_BYTES}"}
    assert flaky.calls == [["0", "2"]]


def test_an_entry_sns_refuses_as_invalid_is_rejected_and_the_others_published(endpoint, notifications):
    web = endpoint("bounce,dropped,dynamodb,sns")
    Poison(tables=(), sns_client=sns.client())  # only SNS refuses it
    batch = [bounce(i) for i in range(5)]
    batch[2]["reason"] = "550 POISON"
    status, counts = web.post(batch)
    assert status == 200 and (counts["accepted"], counts["rejected"]) == (4, 1)
    assert notified(notifications()) == {f"bounce-{i}": 1 for i in (0, 1, 3, 4)}
    [row] = scan("TABLE_REJECTS")
    assert (row["sink"], row["reason"]) == ("sns", "sns: SNS refused the notification (InvalidParameter)")
    assert web.post(batch)[1]["duplicates"] == 5


class TooLong:
    """PublishBatch refusing a whole request of more than two entries, and entry "3" even alone."""

    def __init__(self):
        self.calls = []

    def publish_batch(self, TopicArn, PublishBatchRequestEntries):
        ids = [e["Id"] for e in PublishBatchRequestEntries]
        self.calls.append(ids)
        if len(ids) > 2 or "3" in ids:
            raise ClientError({"Error": {"Code": "BatchRequestTooLong", "Message": "too long"}}, "PublishBatch")
        return {"Successful": [{"Id": i} for i in ids], "Failed": []}


def test_a_request_refused_whole_is_split_until_only_the_bad_entry_is_left(monkeypatch):
    monkeypatch.setenv("SNS_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:notify")
    too_long = TooLong()
    monkeypatch.setattr(sns, "client", lambda: too_long)
    records = [{"eventId": f"e{i}", "event": "bounce", "email": f"a{i}@x.test", "timestamp": 1764400000}
               for i in range(5)]
    with pytest.raises(Rejected) as info:
        sns.write(records)
    assert list(info.value.reasons) == ["e3"] and "BatchRequestTooLong" in info.value.reasons["e3"]
    published = [i for call in too_long.calls if len(call) <= 2 and "3" not in call for i in call]
    assert sorted(published) == ["0", "1", "2", "4"]


def test_a_lost_publish_answer_means_those_notifications_may_come_twice(endpoint, notifications):
    """Documented (README, Webhook "Operating"): SNS published, the answer was lost, the entries count
    as not published and SendGrid's retry publishes them again. Nothing is lost."""
    web = endpoint("bounce,dropped,dynamodb,sns")
    faults = Faults(0.0, client=sns.client(), lost=1.0)
    batch = [bounce(i) for i in range(25)]
    assert web.post(batch)[0] == 503
    faults.on = False
    assert web.post(batch)[0] == 200
    counts = notified(notifications())
    assert counts == {**{f"bounce-{i}": 1 for i in range(25)}, **{f"bounce-{i}": 2 for i in range(10)}}
