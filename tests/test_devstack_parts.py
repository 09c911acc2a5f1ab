"""The local stack's parts, one at a time: signing, the API Gateway front, the stream poller, a function."""

import base64
import json
import os
import textwrap
from dataclasses import replace

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from devstack.eventwebhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, EventPoster, WebhookKey, batch_body
from devstack.front import http_answer, proxy_event
from devstack.applied import StreamMapping, widened
from devstack.lambdas import Function, FunctionError, FunctionTimeout
from devstack.poller import StreamPoller, matches
from devstack.stack import wait_for
from handlers import apigw, manager


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
    assert apigw.raw_body(event, 1024) == body
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


class InProcess:
    """A function run in this process (the poller only needs ``name`` and ``invoke``)."""

    name = "sender"

    def __init__(self, handler):
        self.handler = handler

    def invoke(self, event):
        return self.handler(event, None)


MAPPING = StreamMapping(function="sender", stream_arn="arn:stream", starting_position="TRIM_HORIZON",
                        batch_size=100, filters=({"eventName": ["INSERT"]},), bisect=False, report_failures=True,
                        max_retries=3, max_record_age=-1, on_failure="arn:queue")


def poll(records, handler, **mapping):
    failures = []
    poller = StreamPoller(FakeStream(records), replace(MAPPING, **mapping), InProcess(handler), region="eu-west-1",
                          on_failure=failures.append, interval=0.01, retry_delay=0.01)
    poller.start()
    try:
        wait_for(lambda: poller.delivered + poller.filtered + sum(f["DDBStreamBatchInfo"]["batchSize"]
                                                                  for f in failures) >= len(records),
                 "the poller to finish the records", timeout=10)
    finally:
        poller.stop()
    return poller, failures


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


def test_the_mapping_decides_what_is_delivered_and_how_failures_are_retried():
    # Another filter: MODIFY and REMOVE are delivered too.
    batches = []
    records = stream_records(["INSERT", "MODIFY", "REMOVE"])
    poller, _ = poll(records, lambda e, c: batches.append(e["Records"]) or {},
                     filters=({"eventName": ["INSERT", "MODIFY", "REMOVE"]},))
    assert [r["eventName"] for b in batches for r in b] == ["INSERT", "MODIFY", "REMOVE"] and poller.filtered == 0
    # Without ReportBatchItemFailures a returned list is not read: the batch succeeded.
    poller, failures = poll(stream_records(["INSERT"] * 3), lambda e, c: {"batchItemFailures": [
        {"itemIdentifier": "100"}]}, report_failures=False)
    assert poller.delivered == 3 and poller.invocations == 1 and failures == []


def test_bisect_splits_a_failing_batch_down_to_the_poison_record():
    calls = []

    def handler(event, context):
        ids = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        calls.append(ids)
        if "105" in ids:
            raise RuntimeError("poison")
        return {}

    poller, failures = poll(stream_records(["INSERT"] * 8), handler, bisect=True, max_retries=1)
    ids = [str(100 + i) for i in range(8)]
    assert calls[:5] == [ids, ids[:4], ids[4:], ids[4:6], ids[4:5]]  # halves, down to one record
    assert calls[5:7] == [["105"], ["105"]]  # the poison: tried, retried once, then the destination
    assert [f["DDBStreamBatchInfo"]["startSequenceNumber"] for f in failures] == ["105"]  # only the poison
    assert poller.delivered == 7


def test_records_older_than_the_mapping_allows_go_to_the_destination():
    old = stream_records(["INSERT"] * 2)
    for record in old:
        record["dynamodb"]["ApproximateCreationDateTime"] = 1_000_000_000  # 2001
    delivered = []
    poller, failures = poll(old, lambda e, c: delivered.append(e) or {}, max_record_age=60)
    assert delivered == [] and failures[0]["requestContext"]["condition"] == "RecordAgeExceeded"


@pytest.mark.parametrize("pattern, record, expected", [
    ({"eventName": ["INSERT"]}, {"eventName": "INSERT"}, True),
    ({"eventName": ["INSERT"]}, {"eventName": "MODIFY"}, False),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"exists": False}]}}}}, {"dynamodb": {"NewImage": {}}}, True),
    ({"dynamodb": {"NewImage": {"status": {"S": [{"exists": False}]}}}},
     {"dynamodb": {"NewImage": {"status": {"S": "sent"}}}}, False),
    ({"eventName": [{"prefix": "INS"}]}, {"eventName": "INSERT"}, True),
    ({"eventName": [{"anything-but": ["REMOVE"]}]}, {"eventName": "MODIFY"}, True),
    ({"eventName": [{"anything-but": ["REMOVE"]}]}, {"eventName": "REMOVE"}, False),
])
def test_filter_patterns_match_as_lambda_filters_do(pattern, record, expected):
    assert matches(pattern, record) is expected


def test_an_unsupported_filter_rule_is_an_error_not_a_match():
    with pytest.raises(ValueError, match="numeric"):
        matches({"n": [{"numeric": [">", 1]}]}, {"n": 2})


def test_role_statements_are_widened_to_what_moto_checks():
    statements = [{"Effect": "Allow", "Action": ["dynamodb:GetRecords", "sqs:SendMessage"], "Resource": ["arn:t"]},
                  {"Effect": "Allow", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::b/*"]}]
    assert widened([{"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": ["arn:t"]}]) == [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem", "dynamodb:TransactWriteItems"], "Resource": "*"}]
    assert widened(statements) == [
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:SendMessageBatch"], "Resource": ["arn:t"]},
        {"Effect": "Allow", "Action": ["dynamodb:GetRecords"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"]}]


@pytest.fixture
def package(tmp_path):
    """A function package (what the code archive unpacks to) with a few handlers."""
    (tmp_path / "fn.py").write_text(textwrap.dedent("""
        import os, sys, time

        def env(event, context):
            return {"env": dict(os.environ), "remaining": context.get_remaining_time_in_millis()}

        def deploy_side(event, context):
            import pulumi  # noqa: F401  (not in Lambda)

        def fails(event, context):
            print("about to fail")
            raise ValueError("no good")

        def sleeps(event, context):
            time.sleep(event["seconds"])
            return "woke"
    """))
    return tmp_path


def test_a_function_runs_in_its_own_process_with_exactly_its_environment(package, monkeypatch):
    monkeypatch.setenv("DEVSTACK_CALLER_SECRET", "not for the function")
    function = Function("fn", "fn.env", {"ONLY_MINE": "1"}, package, timeout=5).start()
    try:
        answer = function.invoke({})
        assert answer["env"]["ONLY_MINE"] == "1" and "DEVSTACK_CALLER_SECRET" not in answer["env"]
        assert 0 < answer["remaining"] <= 5000
        assert int(answer["env"].get("PPID", os.getpid())) and answer["env"]["_HANDLER"] == "fn.env"
    finally:
        function.stop()


def test_a_function_cannot_import_the_deploy_side_and_its_errors_and_timeouts_come_back(package):
    function = Function("fn", "fn.deploy_side", {}, package, timeout=5).start()
    try:
        with pytest.raises(FunctionError, match="the deploy side is not shipped"):
            function.invoke({})
    finally:
        function.stop()
    function = Function("fn", "fn.fails", {}, package, timeout=5).start()
    try:
        with pytest.raises(FunctionError, match="ValueError: no good"):
            function.invoke({})
        wait_for(lambda: "about to fail" in function.logs, "what it printed, in its log", timeout=5)
    finally:
        function.stop()
    function = Function("fn", "fn.sleeps", {}, package, timeout=1).start()
    try:
        with pytest.raises(FunctionTimeout, match="timed out after 1 seconds"):
            function.invoke({"seconds": 30})
        assert function.invoke({"seconds": 0}) == "woke"  # a new instance takes over
    finally:
        function.stop()


def test_the_plugins_command_lists_every_plugin_with_its_kind_and_keys(capsys):
    from devstack.__main__ import main

    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) >= set(manager.BUILTIN_PLUGINS)
    assert rows["bounce"]["kinds"] == ["event type"] and rows["bounce"]["config"] == []
    assert {"sink", "infrastructure"} <= set(rows["sns"]["kinds"]) and rows["sns"]["config"] == ["snsEmails",
                                                                                                   "snsEvents"]
    assert "offers inbound_mail" in rows["inbound"]["kinds"] and rows["inbound"]["description"].startswith(
        "Plugin ``inbound``")
