"""Reading a stack's tables for a command: scans with a progress bar, queries, gets, indexes.

Key and index names come from the declarations (``handlers.tables``, the
plugins' ``Table`` values), never spelled here. Items come back as plain
Python (``handlers.dynamo.deserialize``).
"""

from __future__ import annotations

from typing import Iterable, Iterator

from cli.output import Output
from cli.target import Target
from handlers import attribute_values, dynamo
from handlers.tables import Table


class Reader:
    """The tables of ``target``, read with one DynamoDB client; progress shown through ``out``."""

    def __init__(self, target: Target, out: Output):
        self.target, self.out = target, out
        self.dynamodb = target.client("dynamodb")

    def has(self, table: Table) -> bool:
        return self.target.has_table(table.name)

    def name(self, table: Table) -> str:
        return self.target.table(table.name)

    def scan(self, table: Table, *, attributes: Iterable[str] = (), **request) -> Iterator[dict]:
        """Every item of ``table`` (``attributes``: only those), one page at a time, with a progress bar."""
        names = list(attributes)
        if names:
            request["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(names)))
            request.setdefault("ExpressionAttributeNames", {}).update({f"#p{i}": n for i, n in enumerate(names)})
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.name(table), **request)
        for page in self.out.track(pages, f"reading {table.name}"):
            yield from (dynamo.deserialize(i) for i in page["Items"])

    def query(self, table: Table, value, *, index: str | None = None, key: str | None = None) -> list[dict]:
        """The items whose hash key (of the table, or of ``index`` then ``key`` names it) is ``value``, in
        key order."""
        key = key or table.hash_key
        request = {"TableName": self.name(table), "KeyConditionExpression": "#k = :v",
                   "ExpressionAttributeNames": {"#k": key},
                   "ExpressionAttributeValues": {":v": attribute_values.serialize(value)}}
        if index:
            request["IndexName"] = index
        items = []
        for page in self.dynamodb.get_paginator("query").paginate(**request):
            items += [dynamo.deserialize(i) for i in page["Items"]]
        return items

    def get(self, table: Table, value) -> dict | None:
        """The item whose (hash-only) key is ``value``, or None."""
        answer = self.dynamodb.get_item(TableName=self.name(table),
                                        Key={table.hash_key: attribute_values.serialize(value)})
        return dynamo.deserialize(answer["Item"]) if "Item" in answer else None

    def has_index(self, table: Table, index: str) -> bool:
        """Whether the deployed ``table`` has the index (a plugin's, e.g. suppression's ``byAddress``)."""
        described = self.dynamodb.describe_table(TableName=self.name(table))["Table"]
        return any(i["IndexName"] == index for i in described.get("GlobalSecondaryIndexes", []))
