"""Batched DynamoDB I/O: chunking, the retry of unprocessed work, items DynamoDB never takes
(botocore Stubber: moto never hands work back unprocessed)."""

import boto3
import pytest
from botocore.stub import ANY, Stubber

from handlers import dynamo
from handlers.tables import Index, Table

T = Table("t", hash_key="id")


@pytest.fixture
def stubbed(monkeypatch):
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(dynamo, "backoff", lambda attempt: None)
    monkeypatch.setenv(T.env_var, "t")
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
    assert dynamo.batch_put(T, items, dynamodb=client) == 30


def test_work_still_unprocessed_after_every_attempt_raises(stubbed):
    client, stub = stubbed
    left = {"t": [{"PutRequest": {"Item": {"id": {"S": "k"}}}}]}
    for _ in range(dynamo.ATTEMPTS):
        stub.add_response("batch_write_item", {"UnprocessedItems": left}, {"RequestItems": left})
    with pytest.raises(dynamo.IncompleteBatch, match="still unprocessed"):
        dynamo.batch_put(T, [{"id": "k"}], dynamodb=client)


def puts(*ids):
    return {"t": [{"PutRequest": {"Item": {"id": {"S": i}}}} for i in ids]}


def test_an_item_dynamodb_refuses_is_isolated_and_the_others_are_written(stubbed):
    client, stub = stubbed
    refuse = {"service_error_code": "ValidationException",
              "service_message": "One or more parameter values were invalid: Item size has exceeded the maximum"}
    stub.add_client_error("batch_write_item", expected_params={"RequestItems": puts("a", "b", "bad", "c")}, **refuse)
    stub.add_response("batch_write_item", {}, {"RequestItems": puts("a", "b")})
    stub.add_client_error("batch_write_item", expected_params={"RequestItems": puts("bad", "c")}, **refuse)
    stub.add_client_error("batch_write_item", expected_params={"RequestItems": puts("bad")}, **refuse)
    stub.add_response("batch_write_item", {}, {"RequestItems": puts("c")})
    with pytest.raises(dynamo.Unstorable) as info:
        dynamo.batch_put(T, [{"id": i} for i in ("a", "b", "bad", "c")], dynamodb=client)
    [refusal] = info.value.refused
    assert refusal.item == {"id": "bad"} and refusal.reason == "DynamoDB refused it (ValidationException)"
    assert "Item size has exceeded" in refusal.detail


def test_a_transient_error_is_not_taken_for_a_bad_item(stubbed):
    client, stub = stubbed
    stub.add_client_error("batch_write_item", "ProvisionedThroughputExceededException",
                          expected_params={"RequestItems": puts("a", "b")})
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        dynamo.batch_put(T, [{"id": "a"}, {"id": "b"}], dynamodb=client)


def test_keys_over_their_limits_are_refused_before_any_call_naming_no_value(stubbed):
    client, stub = stubbed
    table = Table("t", hash_key="id", range_key="at", indexes=(Index("byAddress", "address"),))
    long_address = "x" * 2049 + "@example.com"
    items = [{"id": "ok", "at": "1", "address": "a@example.com"},
             {"id": "long", "at": "1", "address": long_address},
             {"id": "sort", "at": "é" * 513},           # 1026 bytes > 1024
             {"id": "empty", "at": "1", "address": ""},
             {"id": "typed", "at": "1", "address": 5},
             {"id": "no-sort"},
             {"id": "unindexed", "at": "2"}]            # no address: not in the index, fine
    stub.add_response("batch_write_item", {}, {"RequestItems": ANY})
    with pytest.raises(dynamo.Unstorable) as info:
        dynamo.batch_put(table, items, dynamodb=client)
    reasons = {r.item["id"]: r.reason for r in info.value.refused}
    assert reasons == {
        "long": f"'address' (partition key of index byAddress) is {len(long_address)} bytes, over DynamoDB's 2048",
        "sort": "'at' (sort key) is 1026 bytes, over DynamoDB's 1024",
        "empty": "'address' (partition key of index byAddress) is empty",
        "typed": "'address' (partition key of index byAddress) is not of type S",
        "no-sort": "'at' (sort key) is missing"}
    assert not any("x" * 10 in r for r in reasons.values())


def test_indexes_another_plugin_declares_are_checked_too(stubbed, monkeypatch):
    from handlers import tables

    client, stub = stubbed
    monkeypatch.setitem(tables._declared, "t", Table("t", hash_key="id", indexes=(Index("byAddress", "address"),)))
    with pytest.raises(dynamo.Unstorable):
        dynamo.batch_put(T, [{"id": "a", "address": "y" * 3000}], dynamodb=client)


def test_keys_too_long_to_exist_are_not_looked_up(stubbed):
    client, stub = stubbed
    stub.add_response("batch_get_item", {"Responses": {"t": []}}, {"RequestItems": keys("a")})
    assert dynamo.batch_get("t", "id", ["a", "z" * 2049], dynamodb=client) == {}
    assert dynamo.query_each("t", "byMail", "mailId", ["z" * 2049], dynamodb=client) == {}


def test_put_all_writes_100_unconditional_puts_per_transaction_and_retries_a_conflict(stubbed):
    client, stub = stubbed
    items = [{"id": f"k{i}", "v": i} for i in range(150)]

    def puts(chunk):
        return {"TransactItems": [{"Put": {"TableName": "t", "Item": dynamo.serialize(item)}} for item in chunk]}

    stub.add_response("transact_write_items", {}, puts(items[:100]))
    stub.add_client_error("transact_write_items", "TransactionCanceledException",
                          response_meta={}, expected_params=puts(items[100:]),
                          modeled_fields={"CancellationReasons": [{"Code": "TransactionConflict"}] * 50})
    stub.add_response("transact_write_items", {}, puts(items[100:]))
    dynamo.put_all("t", items, "id", dynamodb=client)


def newer_puts(*items):
    """TransactWriteItems of put_newest: each item put unless the stored one has a greater ``at``."""
    return {"TransactItems": [{"Put": {
        "TableName": "t", "Item": dynamo.serialize(item),
        "ConditionExpression": "attribute_not_exists(#key) OR #newer <= :newer",
        "ExpressionAttributeNames": {"#key": "id", "#newer": "at"},
        "ExpressionAttributeValues": {":newer": {"N": str(item["at"])}}}} for item in items]}


def test_put_newest_skips_items_a_newer_one_holds_and_sets_aside_what_dynamodb_refuses(stubbed):
    client, stub = stubbed
    a, old, bad, b = ({"id": i, "at": n} for i, n in (("a", 5), ("old", 1), ("bad", 7), ("b", 9)))
    stub.add_client_error("transact_write_items", "TransactionCanceledException", response_meta={},
                          expected_params=newer_puts(a, old, bad, b), modeled_fields={"CancellationReasons": [
                              {"Code": "None"}, {"Code": "ConditionalCheckFailed"},
                              {"Code": "ValidationError", "Message": "Item size has exceeded the maximum"},
                              {"Code": "None"}]})
    stub.add_response("transact_write_items", {}, newer_puts(a, b))  # the rest, sent again
    with pytest.raises(dynamo.Unstorable) as info:
        dynamo.put_newest(T, [a, old, {"id": "timeless"}, bad, b], "at", dynamodb=client)
    timeless, refusal = info.value.refused  # "old": a newer one is stored, nothing to do
    assert timeless.item == {"id": "timeless"} and timeless.reason == "'at' is missing"
    assert refusal.item == bad and refusal.reason == "DynamoDB refused it (ValidationError)"
    assert "Item size has exceeded" in refusal.detail


def test_put_newest_writes_100_a_call_and_isolates_an_item_a_whole_call_is_refused_for(stubbed):
    client, stub = stubbed
    items = [{"id": f"k{i}", "at": i} for i in range(103)]
    refuse = {"service_error_code": "ValidationException",
              "service_message": "One or more parameter values were invalid"}
    stub.add_response("transact_write_items", {}, newer_puts(*items[:100]))
    stub.add_client_error("transact_write_items", expected_params=newer_puts(*items[100:]), **refuse)
    stub.add_response("transact_write_items", {}, newer_puts(items[100]))
    stub.add_client_error("transact_write_items", expected_params=newer_puts(*items[101:]), **refuse)
    stub.add_client_error("transact_write_items", expected_params=newer_puts(items[101]), **refuse)
    stub.add_response("transact_write_items", {}, newer_puts(items[102]))
    with pytest.raises(dynamo.Unstorable) as info:
        dynamo.put_newest(T, items, "at", dynamodb=client)
    assert [r.item["id"] for r in info.value.refused] == ["k101"]
