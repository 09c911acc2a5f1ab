"""Batched DynamoDB reads and writes that finish, fail loudly, or say which items can never be stored.

BatchGetItem takes at most 100 keys and BatchWriteItem 25 items per call, and
either may hand back part of the work as ``UnprocessedKeys`` /
``UnprocessedItems``. These helpers chunk, retry what came back with
exponential backoff and jitter, and raise ``IncompleteBatch`` when work is
still left after the last attempt, so a caller never mistakes a partial
result for a whole one. Every wait is inside the caller's time budget
(``handlers.retry``): out of time, ``OutOfTime`` is raised instead.

An item DynamoDB can never take (a key over its size limit, an empty or
mistyped index key: ``Table.key_problem`` checks every key the declarations
name before the write; anything else DynamoDB refuses with a
ValidationException, isolated by splitting the batch) does not stop the
others: ``batch_put`` writes the rest, then raises ``Unstorable`` naming it.
Items are plain Python values (serialized by ``handlers.attribute_values``).
"""

from __future__ import annotations

import functools
import os
from typing import Iterable, NamedTuple

from handlers import aws, retry
from handlers.attribute_values import deserialize_item as deserialize, serialize_item as serialize
from handlers.tables import MAX_HASH_KEY_BYTES, Table, declared

GET_CHUNK = 100
WRITE_CHUNK = 25
ATTEMPTS = 8
BASE_DELAY = 0.05
MAX_DELAY = 2.0
MAX_POOL_CONNECTIONS = 32  # >= handlers.sendgrid_api.CONCURRENCY


class IncompleteBatch(RuntimeError):
    """DynamoDB left part of a batch unprocessed after every retry."""


class Refusal(NamedTuple):
    item: dict
    reason: str
    """Why, naming an attribute or an error code, never a value (it may be logged)."""
    detail: str = ""
    """DynamoDB's own message, if it answered (kept with the reject, not logged)."""


class Unstorable(Exception):
    """Items DynamoDB can never store; every other item of the call was written (``refused``)."""

    def __init__(self, refused: list[Refusal]):
        super().__init__(f"{len(refused)} item(s) DynamoDB cannot store")
        self.refused = refused


@functools.cache
def client():
    """The DynamoDB client, built once per process (endpoint from AWS_ENDPOINT_URL; ``handlers.aws`` settings).

    Its connection pool is as large as the sender's thread pool, which shares it. botocore does
    not check requests against the API model before sending them (DynamoDB does, answering
    ValidationException): the check walks every attribute of every item, about a tenth of a
    1000-event batch's time in the webhook (bench/README.md), for requests this module builds.
    """
    return aws.client("dynamodb", max_pool_connections=MAX_POOL_CONNECTIONS, parameter_validation=False)


def _chunks(seq: list, size: int):
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def backoff(attempt: int) -> None:
    """Sleep before retry number ``attempt``: exponential, capped, with full jitter; ``OutOfTime``
    instead when the budget leaves no room for the wait and one more call."""
    retry.pause(retry.full_jitter(attempt, BASE_DELAY, MAX_DELAY), then=aws.ATTEMPT_SECONDS)


def _can_be_key(value: str) -> bool:
    """Whether ``value`` can be a string key at all (longer ones match nothing; DynamoDB refuses to look)."""
    return len(value.encode("utf-8", "surrogatepass")) <= MAX_HASH_KEY_BYTES


def _until_processed(call, request: dict, leftover: str, what: str):
    """Yield each answer of ``call(RequestItems=request)``, sending again what came back in ``leftover``.

    Backs off between attempts; raises ``IncompleteBatch`` when work is left after the last one.
    """
    for attempt in range(ATTEMPTS):
        response = call(RequestItems=request)
        yield response
        request = response.get(leftover) or {}
        if not request:
            return
        if attempt < ATTEMPTS - 1:
            backoff(attempt)
    raise IncompleteBatch(f"{what} still unprocessed after {ATTEMPTS} attempts")


def batch_get(table: str, key_name: str, keys: Iterable[str], *, dynamodb=None) -> dict[str, dict]:
    """Items of ``table`` whose string key ``key_name`` is in ``keys``: key -> item."""
    dynamodb = dynamodb or client()
    wanted = list(dict.fromkeys(k for k in keys if k and _can_be_key(k)))
    found: dict[str, dict] = {}
    for chunk in _chunks(wanted, GET_CHUNK):
        request = {table: {"Keys": [{key_name: {"S": k}} for k in chunk], "ConsistentRead": True}}
        for response in _until_processed(dynamodb.batch_get_item, request, "UnprocessedKeys",
                                         f"BatchGetItem on {table}: keys"):
            for raw in response.get("Responses", {}).get(table, []):
                item = deserialize(raw)
                found[item[key_name]] = item
    return found


def batch_put(table: Table, items: Iterable[dict], *, dynamodb=None) -> int:
    """Put ``items`` into ``table`` (named by its ``TABLE_<NAME>``), 25 per call; returns how many were written.

    Items repeating a key within the call are written once (the last one wins),
    since BatchWriteItem refuses a request that names a key twice. Items that
    can never be stored are not written; once the others are, ``Unstorable``
    says which and why.
    """
    dynamodb = dynamodb or client()
    name = os.environ[table.env_var]
    refused, storable = _storable(table, items)

    def write(part):
        request = {name: [{"PutRequest": {"Item": serialized}} for _item, serialized in part]}
        for _response in _until_processed(dynamodb.batch_write_item, request, "UnprocessedItems",
                                          f"BatchWriteItem on {name}: items"):
            pass

    for chunk in _chunks(storable, WRITE_CHUNK):
        refused += _refused(aws.isolate(chunk, write))
    if refused:
        raise Unstorable(refused)
    return len(storable)


def put_newest(table: Table, items: Iterable[dict], attribute: str, *, dynamodb=None) -> None:
    """Put each item unless ``table`` holds a newer one under its key (a greater number ``attribute``).

    Newest wins in one step: each item is a put conditioned on the stored one
    being absent or not newer, 100 a TransactWriteItems call (no read first,
    and two writers of one key at the same moment cannot both win). An item
    whose stored one is newer is skipped. Items repeating a key are written
    once (the last one wins). Items that can never be stored (``batch_put``'s
    checks, no ``attribute``; DynamoDB's ValidationError for one put of a
    transaction, or a ValidationException for the call, isolated by splitting
    it) are not written; once the others are, ``Unstorable`` says which and why.
    """
    dynamodb = dynamodb or client()
    name = os.environ[table.env_var]
    refused, storable = _storable(table, items)
    refused += [Refusal(item, f"'{attribute}' is missing") for item, serialized in storable
                if attribute not in serialized]
    storable = [(item, serialized) for item, serialized in storable if attribute in serialized]
    condition = {"ConditionExpression": "attribute_not_exists(#key) OR #newer <= :newer",
                 "ExpressionAttributeNames": {"#key": table.key_names[0], "#newer": attribute}}

    def write(part):
        puts = [{"Put": {"TableName": name, "Item": serialized, **condition,
                         "ExpressionAttributeValues": {":newer": serialized[attribute]}}} for _item, serialized in part]
        set_aside = _transact(puts, {"ConditionalCheckFailed", "ValidationError"}, dynamodb, name)
        refused.extend(Refusal(part[i][0], "DynamoDB refused it (ValidationError)", str(reason.get("Message"))[:1000])
                       for i, reason in set_aside.items() if reason["Code"] == "ValidationError")

    for chunk in _chunks(storable, TRANSACT_CHUNK):
        refused += _refused(aws.isolate(chunk, write))
    if refused:
        raise Unstorable(refused)


def _storable(table: Table, items: Iterable[dict]) -> tuple[list[Refusal], list[tuple[dict, dict]]]:
    """Items (the last of each key) -> (refusals of those that can never be stored, (item, serialized) of the rest)."""
    checked = declared(table)
    unique = {tuple(item.get(k) for k in table.key_names): item for item in items}
    refused, storable = [], []
    for item in unique.values():
        reason = checked.key_problem(item)
        try:
            serialized = None if reason else serialize(item)
        except (TypeError, ValueError, ArithmeticError) as exc:
            reason = f"a value DynamoDB cannot store ({type(exc).__name__})"
        if reason:
            refused.append(Refusal(item, reason))
        else:
            storable.append((item, serialized))
    return refused, storable


def _refused(failed: list[tuple[tuple[dict, dict], BaseException]]) -> list[Refusal]:
    """``aws.isolate``'s items that failed on their own -> their refusals."""
    return [Refusal(item, f"DynamoDB refused it ({aws.error_code(exc)})", str(exc)[:1000])
            for (item, _serialized), exc in failed]


def batch_delete(table: Table, keys: Iterable[str], *, dynamodb=None) -> None:
    """Delete the items of ``table`` (named by its ``TABLE_<NAME>``) whose string hash key is in ``keys``."""
    dynamodb = dynamodb or client()
    name = os.environ[table.env_var]
    for chunk in _chunks(list(dict.fromkeys(keys)), WRITE_CHUNK):
        request = {name: [{"DeleteRequest": {"Key": {table.hash_key: {"S": key}}}} for key in chunk]}
        for _response in _until_processed(dynamodb.batch_write_item, request, "UnprocessedItems",
                                          f"BatchWriteItem on {name}: deletes"):
            pass


TRANSACT_CHUNK = 100


def put_all(table: str, items: Iterable[dict], key_name: str, *, dynamodb=None) -> None:
    """Put every item, 100 per TransactWriteItems call: a quarter of ``batch_put``'s round trips.

    For many small items that are always storable (``processed_events``
    marks). DynamoDB bills each as a transactional write: twice a plain put's
    write units. Keys must be distinct (one action per item in a transaction).
    """
    put_unless(table, items, key_name, None, dynamodb=dynamodb)


def put_unless(table: str, items: Iterable[dict], key_name: str, condition: str | None, *,
               names: dict | None = None, values: dict | None = None, dynamodb=None) -> set[str]:
    """Put each item whose ``condition`` holds (None: every item), 100 per TransactWriteItems call.

    Returns the keys (``key_name``) of the items whose condition failed; the
    others are written. A transaction is all or nothing, so when DynamoDB
    cancels one because some conditions failed (its cancellation reasons say
    which), those items are set aside and the rest sent again; a conflict with
    another transaction is retried with backoff. Work still left after the last
    attempt raises ``IncompleteBatch``.
    """
    dynamodb = dynamodb or client()
    extra = {"ExpressionAttributeNames": names} if names else {}
    if values:
        extra["ExpressionAttributeValues"] = serialize(values)
    if condition:
        extra["ConditionExpression"] = condition
    refused: set[str] = set()
    for chunk in _chunks(list(items), TRANSACT_CHUNK):
        puts = [{"Put": {"TableName": table, "Item": serialize(item), **extra}} for item in chunk]
        refused |= {chunk[i][key_name] for i in _transact(puts, {"ConditionalCheckFailed"}, dynamodb, table)}
    return refused


def _transact(puts: list[dict], set_aside: set[str], dynamodb, table: str) -> dict[int, dict]:
    """One TransactWriteItems of ``puts`` (at most 100), sent again without the puts it was cancelled for
    with a code in ``set_aside``; returns index -> cancellation reason (``Code``, ``Message``) of those.

    A transaction is all or nothing, so a cancellation for anything else (a
    conflict with another transaction) is retried with backoff; work still
    left after the last attempt raises ``IncompleteBatch``.
    """
    pending, left_out = list(range(len(puts))), {}
    for attempt in range(ATTEMPTS):
        try:
            dynamodb.transact_write_items(TransactItems=[puts[i] for i in pending])
            return left_out
        except dynamodb.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons") or []
            failed = {pending[j]: reason for j, reason in enumerate(reasons) if reason.get("Code") in set_aside}
            left_out.update(failed)
            pending = [i for i in pending if i not in failed]
            if not pending:
                return left_out
            if not failed and attempt < ATTEMPTS - 1:
                backoff(attempt)
    raise IncompleteBatch(f"TransactWriteItems on {table}: items still unwritten after {ATTEMPTS} attempts")


def query_each(table: str, index: str, key_name: str, values: Iterable[str], *, dynamodb=None) -> dict[str, list[dict]]:
    """Items of ``table`` whose string ``key_name`` equals each value, through ``index``.

    One Query per distinct value (DynamoDB has no batched Query): callers bound
    how many values they pass. A value too long to be a key finds nothing.
    """
    dynamodb = dynamodb or client()
    found: dict[str, list[dict]] = {}
    for value in dict.fromkeys(v for v in values if v and _can_be_key(v)):
        response = dynamodb.query(
            TableName=table, IndexName=index, KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": key_name}, ExpressionAttributeValues={":v": {"S": value}},
        )
        found[value] = [deserialize(i) for i in response.get("Items", [])]
    return found
