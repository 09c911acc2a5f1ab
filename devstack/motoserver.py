"""``python -m devstack.motoserver``: moto in server mode on 127.0.0.1, enforcing IAM, in its own process.

Started by ``devstack.aws`` with ``INITIAL_NO_AUTH_ACTION_COUNT`` in its
environment (moto reads it when imported): after each reset, the first
requests go unchecked, just enough to create an administrator and its access
key; every later request must be signed by a user whose policies allow the
action. It imports the services the program uses before it says it is ready
(moto would import each on its first request), prints one JSON line with its
endpoint, and serves until its standard input closes (its parent stopped or
died) or it gets SIGTERM.

Four adjustments to moto, each about what moto does that AWS does not:

- moto calls a function itself when a stream it is mapped to gets records
  (in Docker), then forgets the records; and receives a mapped queue's
  message as it is sent, for the same call. Here Lambda's pollers are
  ``devstack.poller`` and ``devstack.queue_poller``, which read the stream and
  the queue: moto must leave both alone.
- With IAM enforced, moto checks a bodiless request's signature (every GET of
  the REST APIs: API Gateway, Lambda) against a hash of its parameters instead
  of the empty payload, and refuses them all; here it hashes the empty body.
- Policy conditions: moto ignores the ``Bool`` operator (so a condition on it
  always holds) and treats a statement whose condition does not hold as a
  denial; in AWS such a statement does not apply. Together they made the
  inbound bucket's "deny unless TLS" statement refuse every upload. Here
  ``Bool`` is evaluated, a statement applies only when its condition holds,
  and requests count as TLS (``aws:SecureTransport``): the local endpoint is
  plain HTTP, where in AWS the SDK always uses TLS.
- moto's TransactWriteItems is not thread-safe; its calls run one at a time
  here (memory stays flat under concurrent posts). For its rollback it
  deep-copies the whole table once per item of the call (a 100-item
  transaction on a table of 10,000 items: seconds, where DynamoDB takes
  milliseconds). Here a transaction of puts, deletes and condition checks on
  a table without a stream keeps a copy of the table's item index instead
  (those replace or remove items, never change one in place); one with an
  update, or on a table with a stream, keeps moto's deep copy.
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import logging
import signal
import sys
import threading

# The requests that create the administrator after a reset: CreateUser, PutUserPolicy, CreateAccessKey.
SETUP_REQUESTS = 3
REGION = "us-east-1"
SERVICES = ("dynamodb", "dynamodbstreams", "awslambda", "apigateway", "iam", "sqs", "sns", "ssm", "kms",
            "logs", "s3", "sts")


def _patch_moto() -> None:
    from moto.awslambda.models import LambdaBackend
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicyStatement, IAMRequestBase, PermissionResult

    LambdaBackend.send_dynamodb_items = lambda self, *args, **kwargs: None  # the poller delivers
    from moto.sqs.models import Queue  # a queue's mappings: moto would receive each message as it is sent

    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)

    aws_request = IAMRequestBase._create_aws_request

    @functools.wraps(aws_request)
    def signed_as_sent(self):
        request = aws_request(self)
        if self._method in ("GET", "HEAD", "DELETE") and not self._body:
            request.data = b""
        return request

    IAMRequestBase._create_aws_request = signed_as_sent

    statement_permits = IAMPolicyStatement.is_action_permitted

    @functools.wraps(statement_permits)
    def applies_if_its_condition_holds(self, action, resource="*", principal=None, incoming_condition_values=None):
        if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
            return PermissionResult.NEUTRAL
        return statement_permits(self, action, resource, principal, incoming_condition_values)

    IAMPolicyStatement.is_action_permitted = applies_if_its_condition_holds
    policy_conditions.CONDITION_OPERATIONS["Bool"] = lambda expected, actual: str(actual).lower() in (
        [str(e).lower() for e in expected] if isinstance(expected, list) else [str(expected).lower()])
    check_conditions = IAMPolicyStatement._check_conditions

    @functools.wraps(check_conditions)
    def over_tls(self, incoming_condition_values=None):
        return check_conditions(self, {"aws:SecureTransport": "true", **(incoming_condition_values or {})})

    IAMPolicyStatement._check_conditions = over_tls

    patch_transactions()


def patch_transactions() -> None:
    """moto's TransactWriteItems one at a time, and its rollback copy made cheap (see the module docstring).

    Also for moto in the tests' own process (``tests/conftest.py``). Idempotent.
    """
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend

    if isinstance(dynamodb_models.copy, _TableRollback):
        return
    one_at_a_time = threading.Lock()
    transact = DynamoDBBackend.transact_write_items
    rollback = _TableRollback()
    dynamodb_models.copy = rollback  # the module's ``copy``: its deepcopy of a table goes through ``rollback``

    @functools.wraps(transact)
    def serialized(self, transact_items, *args, **kwargs):
        with one_at_a_time:
            rollback.shallow = not any("Update" in op for op in transact_items)
            try:
                return transact(self, transact_items, *args, **kwargs)
            finally:
                rollback.shallow, rollback.taken = False, {}

    DynamoDBBackend.transact_write_items = serialized


class _TableRollback:
    """Stands in for the ``copy`` module in ``moto.dynamodb.models`` (see the module docstring)."""

    def __init__(self):
        self.shallow = False
        self.taken: dict[int, object] = {}  # moto asks once per item, before changing anything: one copy a table
        self.copy = copy.copy

    def deepcopy(self, value, memo=None):
        from moto.dynamodb.models.table import Table

        if not (self.shallow and isinstance(value, Table) and value.stream_shard is None):
            return copy.deepcopy(value, memo)
        if id(value) not in self.taken:
            snapshot = copy.copy(value)
            snapshot.items = collections.defaultdict(
                dict, {key: dict(items) if value.has_range_key else items for key, items in value.items.items()})
            self.taken[id(value)] = snapshot
        return self.taken[id(value)]


def main() -> int:
    from moto import backends, settings
    from moto.server import ThreadedMotoServer

    if settings.INITIAL_NO_AUTH_ACTION_COUNT != SETUP_REQUESTS:
        print(f"devstack.motoserver: start it with INITIAL_NO_AUTH_ACTION_COUNT={SETUP_REQUESTS}", file=sys.stderr)
        return 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    _patch_moto()
    for service in SERVICES:
        backends.get_backend(service)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(json.dumps({"endpoint": f"http://{host}:{port}", "region": REGION}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.wait(0.2):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
