"""moto's TransactWriteItems as the tests and the local stack run it (``devstack.motoserver.patch_transactions``).

Its rollback keeps a copy of the table's item index instead of a deep copy of
the table per item: a cancelled transaction must still leave every item as it
was, with puts, deletes and condition checks, and with updates (deep copy kept).
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from handlers.tables import Table, create_tables

T = Table("moto_tx", hash_key="id")
R = Table("moto_tx_range", hash_key="id", range_key="n", attribute_types={"n": "N"})


def put(name: str, key: dict, value: str, condition: str | None = None) -> dict:
    action = {"TableName": name, "Item": {**key, "v": {"S": value}}}
    if condition:
        action["ConditionExpression"] = condition
    return {"Put": action}


@pytest.mark.parametrize("table", [T, R], ids=["hash key", "hash and range key"])
@pytest.mark.parametrize("with_update", [False, True], ids=["puts", "an update too"])
def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws, table, with_update):
    client = boto3.client("dynamodb")
    name = create_tables(client, [table])[table.env_var]

    def key(i):
        return {"id": {"S": f"k{i}"}, **({"n": {"N": "1"}} if table.range_key else {})}

    for i in range(50):
        client.put_item(TableName=name, Item={**key(i), "v": {"S": "before"}})
    actions = [put(name, key(1), "changed"), put(name, key(99), "new"),
               {"Delete": {"TableName": name, "Key": key(2)}},
               put(name, key(3), "refused", "attribute_not_exists(id)")]
    if with_update:
        actions.append({"Update": {"TableName": name, "Key": key(4), "UpdateExpression": "SET v = :v",
                                   "ExpressionAttributeValues": {":v": {"S": "updated"}}}})
    with pytest.raises(ClientError, match="TransactionCanceled"):
        client.transact_write_items(TransactItems=actions)
    items = client.scan(TableName=name)["Items"]
    assert len(items) == 50 and {i["v"]["S"] for i in items} == {"before"}

    client.transact_write_items(TransactItems=actions[:3])  # without the failing condition: all applied
    values = {i["id"]["S"]: i["v"]["S"] for i in client.scan(TableName=name)["Items"]}
    assert values["k1"] == "changed" and values["k99"] == "new" and "k2" not in values and len(values) == 50
