"""Table definitions: one description of each DynamoDB table, used everywhere.

The Pulumi program (``infra/``), the local stack (``devstack/``) and the tests
all build tables from these ``Table`` values, so their key schemas cannot
drift. Plugins add theirs through the ``register_tables`` hook.
"""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

from handlers import functions

# The functions a table's access names (handlers.functions describes each).
SENDER = functions.SENDER.name
WEBHOOK = functions.WEBHOOK.name

# DynamoDB's limits on a key value, in bytes (UTF-8 for strings): a partition (hash) key, a sort (range) key.
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
_PYTHON_TYPES = {"S": (str,), "N": (int, float, Decimal), "B": (bytes, bytearray)}
_EMPTY: Mapping = MappingProxyType({})  # a default mapping nothing can change


class Index(NamedTuple):  # not a dataclass: see handlers/env.py's Var
    """A global secondary index."""

    name: str
    hash_key: str
    range_key: str | None = None


class Table(NamedTuple):
    """A DynamoDB table: logical name, keys and who may do what on it.

    ``name`` is logical ("sent_log"); the deployed table name is the stack's
    business, handed to the functions as ``TABLE_<NAME>`` (``env_var``).
    ``attribute_types`` gives the type of key attributes that are not strings.
    ``access`` maps a function (``SENDER``, ``WEBHOOK``) to the DynamoDB
    actions it may call on the table (and its indexes).
    """

    name: str
    hash_key: str | None = None
    range_key: str | None = None
    attribute_types: Mapping[str, str] = _EMPTY
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    stream_view_type: str | None = None
    access: Mapping[str, tuple[str, ...]] = _EMPTY

    @property
    def env_var(self) -> str:
        return f"TABLE_{self.name.upper()}"

    @property
    def key_attributes(self) -> list[str]:
        names = [self.hash_key, self.range_key]
        for index in self.indexes:
            names += [index.hash_key, index.range_key]
        return list(dict.fromkeys(n for n in names if n))

    def attribute_type(self, name: str) -> str:
        return self.attribute_types.get(name, "S")

    @property
    def key_names(self) -> tuple[str, ...]:
        """The primary key's attributes (hash, then range)."""
        return tuple(n for n in (self.hash_key, self.range_key) if n)

    def key_problem(self, item: Mapping) -> str | None:
        """Why DynamoDB would refuse ``item`` for one of this table's keys or index keys, or None.

        Checks every key attribute the declaration names (its own and every
        index's): present (an index key may be absent: the item is then not
        in that index), of the declared type, not empty, and within
        DynamoDB's size limit. The text names the attribute and its size,
        never its value.
        """
        keys = [(self.hash_key, "partition key", MAX_HASH_KEY_BYTES, True),
                (self.range_key, "sort key", MAX_RANGE_KEY_BYTES, True)]
        for index in self.indexes:
            keys += [(index.hash_key, f"partition key of index {index.name}", MAX_HASH_KEY_BYTES, False),
                     (index.range_key, f"sort key of index {index.name}", MAX_RANGE_KEY_BYTES, False)]
        for name, role, limit, required in keys:
            if not name:
                continue
            value = item.get(name)
            if value is None:
                if required:
                    return f"'{name}' ({role}) is missing"
                continue
            kind = self.attribute_type(name)
            if isinstance(value, bool) or not isinstance(value, _PYTHON_TYPES[kind]):
                return f"'{name}' ({role}) is not of type {kind}"
            if kind == "N":
                continue  # numbers: DynamoDB's 38 digits are checked when the item is serialized
            size = len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else len(value)
            if not size:
                return f"'{name}' ({role}) is empty"
            if size > limit:
                return f"'{name}' ({role}) is {size} bytes, over DynamoDB's {limit}"
        return None

    def merged(self, other: "Table") -> "Table":
        """This table with the indexes and access ``other`` adds to it."""
        if other.hash_key and (other.hash_key, other.range_key) != (self.hash_key, self.range_key):
            raise ValueError(f"table {self.name!r} is declared twice with different keys")
        access = {fn: tuple(dict.fromkeys(self.access.get(fn, ()) + other.access.get(fn, ())))
                  for fn in {*self.access, *other.access}}
        return self._replace(
            attribute_types={**self.attribute_types, **other.attribute_types},
            indexes=self.indexes + tuple(i for i in other.indexes if i not in self.indexes),
            access=access,
        )


# The core's own tables (seed names and keys, see docs/architecture.md "Data model").
MAIL_SENDER = Table(
    name="mail_sender",
    hash_key="id",
    stream_view_type="NEW_IMAGE",
    access={SENDER: ("dynamodb:UpdateItem",)},
)

SENT_LOG = Table(
    name="sent_log",
    hash_key="messageId",
    ttl_attribute="expiresAt",
    # mailId (the item id, also sent as a custom arg): the fallback when an
    # event's sg_message_id is missing or finds nothing.
    indexes=(Index("mailId", "mailId"),),
    access={SENDER: ("dynamodb:PutItem",), WEBHOOK: ("dynamodb:BatchGetItem", "dynamodb:Query")},
)

# What the webhook has done with each event, so a re-posted event changes nothing:
# ``event:<eventId>`` once every sink has it, ``sink:<sink>:<eventId>`` for the claim a
# non-idempotent sink's delivery holds (see ``handlers.delivery``). Kept 7 days (TTL).
PROCESSED_EVENTS = Table(
    name="processed_events",
    hash_key="id",
    ttl_attribute="expiresAt",
    access={WEBHOOK: ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem")},
)

# Events the webhook could not process, with their raw JSON and the reason (key: a hash of the raw JSON).
REJECTS = Table(
    name="rejects",
    hash_key="eventId",
    # BatchGetItem: the rows a replay names (``handlers.replay``); BatchWriteItem: new rows, and deletes.
    access={WEBHOOK: ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")},
)

CORE_TABLES = (MAIL_SENDER, SENT_LOG, PROCESSED_EVENTS, REJECTS)


def combine(tables: Iterable[Table]) -> dict[str, Table]:
    """Merge table declarations by name (another may add indexes/access), whatever their order."""
    result: dict[str, Table] = {}
    for table in sorted(tables, key=lambda t: t.hash_key is None):  # declarations, then extensions
        if table.name in result:
            result[table.name] = result[table.name].merged(table)
        elif table.hash_key is None:
            raise ValueError(f"table {table.name!r} is extended but no enabled plugin declares it")
        else:
            result[table.name] = table
    return result


# The declarations in force in this process (a Lambda runs one plugin set): table name -> every
# index declared for it, whichever plugin declared it (``declare`` is called as plugins are loaded).
_declared: dict[str, Table] = {}


def declare(tables: Iterable[Table]) -> None:
    """Remember ``tables`` (merged declarations) so writes are checked against every declared index."""
    for table in tables:
        known = _declared.get(table.name)
        try:
            _declared[table.name] = known.merged(table) if known else table
        except ValueError:  # declared again with other keys: the newer declaration wins
            _declared[table.name] = table


def declared(table: Table) -> Table:
    """``table`` with the indexes other declarations in this process add to it (``declare``)."""
    known = _declared.get(table.name)
    if known is None or known is table:
        return table
    try:
        return table.merged(known)
    except ValueError:
        return table


def create_table_request(table: Table, physical_name: str) -> dict:
    """The boto3 ``create_table`` arguments for ``table`` (local stack, tests)."""
    def key_schema(hash_key, range_key):
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return schema

    request = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema(table.hash_key, table.range_key),
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": table.attribute_type(n)}
            for n in table.key_attributes
        ],
    }
    if table.indexes:
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": i.name, "KeySchema": key_schema(i.hash_key, i.range_key),
             "Projection": {"ProjectionType": "ALL"}}
            for i in table.indexes
        ]
    if table.stream_view_type:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream_view_type}
    return request


def create_tables(client, tables: Iterable[Table], name_of=lambda t: t.name) -> dict[str, str]:
    """Create ``tables`` with a boto3 DynamoDB client; returns env var -> table name."""
    env = {}
    for table in tables:
        physical = name_of(table)
        client.create_table(**create_table_request(table, physical))
        if table.ttl_attribute:
            client.update_time_to_live(
                TableName=physical,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        env[table.env_var] = physical
    return env
