"""The local stack's parts, one at a time: signing, the API Gateway front, the stream poller, the env."""

import base64
import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from devstack.eventwebhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, EventPoster, WebhookKey, batch_body
from devstack.front import http_answer, proxy_event
from devstack.lambdas import Function, merged_env, process_env
from devstack.poller import StreamPoller
from devstack.stack import wait_for
from handlers import webhook


def verify(public_key_b64: str, headers: dict, body: bytes) -> None:
    """What a receiver does with SendGrid's headers (raises InvalidSignature)."""
    key = load_der_public_key(base64.b64decode(public_key_b64))
    assert isinstance(key.curve, ec.SECP256R1)
    key.verify(base64.b64decode(headers[SIGNATURE_HEADER]),
               headers[TIMESTAMP_HEADER].encode() + body, ec.ECDSA(hashes.SHA256()))


def test_batches_are_signed_over_timestamp_and_exact_body_with_a_fresh_p256_key():
    key = WebhookKey()
    body = batch_body([{"event": "delivered", "email": "ä@example.com"}])
    assert body.endswith(b"]\r\n")
    headers = key.headers(body, timestamp=1700000000)
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    verify(key.public_key_b64, headers, body)
    with pytest.raises(InvalidSignature):
        verify(key.public_key_b64, headers, body.rstrip())  # the CRLF is part of what is signed
    with pytest.raises(InvalidSignature):
        verify(WebhookKey().public_key_b64, headers, body)
    assert WebhookKey().public_key_b64 != key.public_key_b64


def test_the_poster_sends_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        EventPoster(WebhookKey(), url="http://192.0.2.1/v1/hook").start()


@pytest.mark.parametrize("body", [b'[{"event":"bounce"}]\r\n', b"\xff\xfe not utf-8"])
def test_the_front_hands_the_webhook_the_exact_bytes(body):
    headers = [("Content-Type", "application/json"), ("X-Dup", "a"), ("X-Dup", "b")]
    event = proxy_event("POST", "/v1/secret", headers, body, "127.0.0.1")
    assert webhook.raw_body(event) == body
    assert event["isBase64Encoded"] is (body[:1] == b"\xff")
    assert event["headers"]["X-Dup"] == "b" and event["multiValueHeaders"]["X-Dup"] == ["a", "b"]
    assert (event["path"], event["requestContext"]["stage"]) == ("/secret", "v1")


def test_lambda_proxy_answers_become_http_and_malformed_ones_are_refused():
    assert http_answer({"statusCode": 403, "headers": {"A": 1}, "body": "no"}) == (403, {"A": "1"}, b"no")
    assert http_answer({"statusCode": 200, "body": base64.b64encode(b"\x00").decode(),
                        "isBase64Encoded": True})[2] == b"\x00"
    for bad in (None, {"body": "x"}, {"statusCode": "200"}, {"statusCode": 200, "body": {"a": 1}}):
        with pytest.raises(ValueError):
            http_answer(bad)


class FakeStream:
    """A DynamoDB Streams client with one shard holding ``records``, read once."""

    def __init__(self, records):
        self.records = records

    def describe_stream(self, StreamArn):
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **kwargs):
        return {"ShardIterator": "start"}

    def get_records(self, ShardIterator, Limit):
        return {"Records": self.records if ShardIterator == "start" else [], "NextShardIterator": "next"}


def stream_records(names):
    return [{"eventID": str(i), "eventName": name, "eventSource": "aws:dynamodb",
             "dynamodb": {"SequenceNumber": str(100 + i), "Keys": {"id": {"S": f"m{i}"}}}}
            for i, name in enumerate(names)]


def poll(records, handler, **options):
    failures = []
    poller = StreamPoller(FakeStream(records), "arn:stream", Function("sender", handler), region="eu-west-1",
                          on_failure=failures.append, interval=0.01, retry_delay=0.01, **options)
    poller.start()
    try:
        wait_for(lambda: poller.delivered + sum(f["DDBStreamBatchInfo"]["batchSize"] for f in failures)
                 >= poller_total(records), "the poller to finish the records", timeout=10)
    finally:
        poller.stop()
    return poller, failures


def poller_total(records):
    return sum(1 for r in records if r["eventName"] == "INSERT")


def test_poller_delivers_inserts_only_in_batches_of_100_in_lambdas_shape():
    batches = []
    records = stream_records(["INSERT"] * 230 + ["MODIFY", "REMOVE"])
    poller, failures = poll(records, lambda event, context: batches.append(event["Records"]) or {})
    assert [len(b) for b in batches] == [100, 100, 30]
    assert {r["eventName"] for b in batches for r in b} == {"INSERT"}
    first = batches[0][0]
    assert (first["eventSourceARN"], first["awsRegion"], first["eventVersion"]) == ("arn:stream", "eu-west-1", "1.1")
    assert poller.filtered == 2 and failures == []


def test_poller_retries_from_the_first_reported_failure_then_gives_up_to_the_destination():
    calls = []

    def handler(event, context):
        ids = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        calls.append(ids)
        if len(calls) == 1:  # the 2nd and 3rd records fail once
            return {"batchItemFailures": [{"itemIdentifier": ids[2]}, {"itemIdentifier": ids[1]}]}
        if "103" in ids:  # the 4th record always fails
            return {"batchItemFailures": [{"itemIdentifier": "103"}]}
        return {"batchItemFailures": []}

    poller, failures = poll(stream_records(["INSERT"] * 5), handler, max_retries=2)
    assert calls[:2] == [["100", "101", "102", "103", "104"], ["101", "102", "103", "104"]]
    # Checkpoint at 103 after the 2nd call's failure; 2 retries from there, then the destination.
    assert calls[2:] == [["103", "104"]] * 2 and poller.delivered == 3
    [info] = failures
    batch = info["DDBStreamBatchInfo"]
    assert (batch["startSequenceNumber"], batch["endSequenceNumber"], batch["batchSize"]) == ("103", "104", 2)
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_function_envs_share_the_process_only_when_they_agree(monkeypatch):
    assert merged_env([{"A": "1", "B": "2"}, {"A": "1", "C": "3"}]) == {"A": "1", "B": "2", "C": "3"}
    with pytest.raises(ValueError, match="ENABLED_PLUGINS"):
        merged_env([{"ENABLED_PLUGINS": "bounce"}, {"ENABLED_PLUGINS": "dropped"}])

    monkeypatch.setenv("AWS_PROFILE", "someones-real-account")
    monkeypatch.setenv("DEVSTACK_TEST_A", "before")
    monkeypatch.delenv("DEVSTACK_TEST_B", raising=False)
    restore = process_env([Function("sender", "x.y", {"DEVSTACK_TEST_A": "a"}),
                           Function("webhook", "x.y", {"DEVSTACK_TEST_B": "b"})])
    assert (os.environ["DEVSTACK_TEST_A"], os.environ["DEVSTACK_TEST_B"]) == ("a", "b")
    assert "AWS_PROFILE" not in os.environ
    restore()
    assert os.environ["DEVSTACK_TEST_A"] == "before" and "DEVSTACK_TEST_B" not in os.environ
    assert os.environ["AWS_PROFILE"] == "someones-real-account"
