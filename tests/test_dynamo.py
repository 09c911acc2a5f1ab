"""Batched DynamoDB I/O: chunking and the retry of unprocessed work (botocore Stubber:
moto never hands work back unprocessed)."""

import boto3
import pytest
from botocore.stub import ANY, Stubber

from handlers import dynamo


@pytest.fixture
def stubbed(monkeypatch):
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(dynamo, "backoff", lambda attempt: None)
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def keys(*ids):
    return {"t": {"Keys": [{"id": {"S": i}} for i in ids], "ConsistentRead": True}}


def test_batch_get_sends_unprocessed_keys_again(stubbed):
    client, stub = stubbed
    stub.add_response("batch_get_item", {"Responses": {"t": [{"id": {"S": "a"}, "n": {"N": "1"}}]},
                                         "UnprocessedKeys": keys("b")}, {"RequestItems": keys("a", "b")})
    stub.add_response("batch_get_item", {"Responses": {"t": [{"id": {"S": "b"}, "n": {"N": "2"}}]}},
                      {"RequestItems": keys("b")})
    assert dynamo.batch_get("t", "id", ["a", "b", "a", ""], dynamodb=client) == {
        "a": {"id": "a", "n": 1}, "b": {"id": "b", "n": 2}}


def test_batch_get_asks_100_keys_per_call(stubbed):
    client, stub = stubbed
    for _ in range(3):
        stub.add_response("batch_get_item", {"Responses": {"t": []}}, {"RequestItems": ANY})
    assert dynamo.batch_get("t", "id", [f"k{i}" for i in range(250)], dynamodb=client) == {}


def test_batch_put_writes_25_per_call_each_key_once_and_retries_unprocessed(stubbed):
    client, stub = stubbed
    items = [{"id": f"k{i}", "v": i} for i in range(30)] + [{"id": "k0", "v": "last"}]
    left = {"t": [{"PutRequest": {"Item": {"id": {"S": "k3"}, "v": {"N": "3"}}}}]}
    stub.add_response("batch_write_item", {"UnprocessedItems": left}, {"RequestItems": ANY})
    stub.add_response("batch_write_item", {}, {"RequestItems": left})
    stub.add_response("batch_write_item", {}, {"RequestItems": ANY})
    assert dynamo.batch_put("t", items, ("id",), dynamodb=client) == 30


def test_work_still_unprocessed_after_every_attempt_raises(stubbed):
    client, stub = stubbed
    left = {"t": [{"PutRequest": {"Item": {"id": {"S": "k"}}}}]}
    for _ in range(dynamo.ATTEMPTS):
        stub.add_response("batch_write_item", {"UnprocessedItems": left}, {"RequestItems": left})
    with pytest.raises(dynamo.IncompleteBatch, match="still unprocessed"):
        dynamo.batch_put("t", [{"id": "k"}], ("id",), dynamodb=client)


def test_batch_get_can_read_only_some_attributes(stubbed):
    client, stub = stubbed
    request = keys("a")
    request["t"].update(ProjectionExpression="#a0, #a1", ExpressionAttributeNames={"#a0": "id", "#a1": "timestamp"})
    stub.add_response("batch_get_item", {"Responses": {"t": [{"id": {"S": "a"}, "timestamp": {"N": "5"}}]}},
                      {"RequestItems": request})
    assert dynamo.batch_get("t", "id", ["a"], attributes=("timestamp",), dynamodb=client) == {
        "a": {"id": "a", "timestamp": 5}}
