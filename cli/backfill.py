"""``backfill --since 3d``: what SendGrid suppressed while the webhook could not be reached, into the bounce table.

SendGrid retries a webhook post for 24 hours, then drops it; its suppression
lists keep the outcome. This reads them (``GET /v3/suppression/bounces``,
``/blocks``, ``/invalid_emails``, ``/spam_reports``: ``start_time`` /
``end_time``, pages of 500) and writes a bounce-table row per address and
list, marked ``backfilled`` (the list's name), so ``bounces``, ``story``,
the report and the ``suppression`` plugin see them like the webhook's rows.

A backfilled row has no message id (the lists do not say which mail): its key
is ``backfill:<list>:<address>``, which no webhook row can have (theirs is
SendGrid's ``sg_message_id``). So backfill never overwrites a webhook row,
and running it again rewrites its own rows only when the list has a newer
entry (a conditional put on the entry's time): idempotent. An address whose
newest webhook row is at least as new as the list's entry is left alone: the
webhook heard of it. The rows get no TTL unless ``--ttl-days`` says (the
webhook's rows follow the stack's ``bounceTtlDays``).
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from cli import periods
from cli.bounces import address_of
from cli.errors import CliError, Transient, UsageError
from cli.output import table
from cli.read import Reader
from handlers import dynamo
from handlers.sendgrid_api import backoff, told_wait
from handlers.tables import Table
from plugins import dynamodb
from plugins.dynamodb import BOUNCE
from plugins.suppression import ADDRESS_INDEX

PATH = "/v3/suppression/"
PAGE = 500                  # SendGrid's largest page
ATTEMPTS = 6                # calls per page, the first included (429s and 5xx)
TIMEOUT = (3.05, 30.0)      # connect, read (seconds)
KEY_PREFIX = "backfill:"
# list -> (event, type, reason) of the row it makes: what the webhook would have stored for that outcome
LISTS = {
    "bounces": ("bounce", "bounce", None),
    "blocks": ("bounce", "blocked", None),
    "invalid_emails": ("dropped", "dropped", "Invalid"),
    "spam_reports": ("spamreport", None, None),
}
# Rows the suppression plugin's index must be able to hold too (an address too long for its key is refused).
CHECKED = BOUNCE.merged(Table(name=BOUNCE.name, indexes=(ADDRESS_INDEX,)))


def register(subparsers) -> None:
    parser = subparsers.add_parser("backfill", help="SendGrid's suppression lists into the bounce table (idempotent)",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("--since", type=periods.argument, required=True, metavar="AGE|DATE",
                        help="from (e.g. 3d: the days the webhook could not be reached, and one more)")
    parser.add_argument("--until", type=periods.argument, metavar="AGE|DATE", help="to (default: now)")
    parser.add_argument("--list", action="append", choices=tuple(LISTS), dest="lists",
                        help="only this list (repeatable; default: all four)")
    parser.add_argument("--ttl-days", type=int, default=0, metavar="N",
                        help="backfilled rows expire after N days (default 0: kept)")
    parser.add_argument("--dry-run", action="store_true", help="read and compare, write nothing")
    parser.set_defaults(func=run)


def key_of(list_name: str, email: str) -> str:
    return f"{KEY_PREFIX}{list_name}:{email.lower()}"


def row_of(list_name: str, entry: dict, now: float, ttl_days: int) -> dict:
    """The bounce-table row of a suppression-list entry (the dynamodb sink's columns, plus ``backfilled``)."""
    event, kind, reason = LISTS[list_name]
    email = str(entry["email"])
    record = {"fullMessageId": key_of(list_name, email), "email": email, "toEmail": email, "event": event,
              "type": kind, "reason": reason or entry.get("reason"), "status": entry.get("status"),
              "timestamp": int(entry["created"]), "matched": False}
    row = dynamodb.row(record, now)
    row.pop("expiresAt", None)
    if ttl_days > 0:
        row["expiresAt"] = int(now) + ttl_days * 86400
    row["backfilled"] = list_name
    if reason and entry.get("reason"):
        row["listReason"] = entry["reason"]  # SendGrid's words on the list; ``reason`` is what the drop says
    return row


class SendGrid:
    """The suppressions API: pages read with retries of 429s (waiting as told) and 5xx."""

    sleep = staticmethod(time.sleep)

    def __init__(self, base_url: str, api_key: str):
        import urllib3

        self.base_url, self._key = base_url, api_key
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1]))

    def entries(self, list_name: str, start: int, end: int, advance=lambda n=1: None):
        """Every entry of ``list_name`` created from ``start`` to ``end``, page by page."""
        offset = 0
        while True:
            page = self.page(list_name, {"start_time": start, "end_time": end, "limit": PAGE, "offset": offset})
            advance(1)
            yield from page
            if len(page) < PAGE:
                return
            offset += PAGE

    def page(self, list_name: str, query: dict) -> list[dict]:
        url = f"{self.base_url}{PATH}{list_name}?{urlencode(query)}"
        for attempt in range(ATTEMPTS):
            response = self.http.request("GET", url, headers={"Authorization": f"Bearer {self._key}",
                                                              "Accept": "application/json"})
            if response.status == 200:
                try:
                    entries = json.loads(response.data)
                except ValueError:
                    raise CliError(f"SendGrid {PATH}{list_name}: the answer is not JSON") from None
                if not isinstance(entries, list):
                    raise CliError(f"SendGrid {PATH}{list_name}: the answer is not a list")
                return entries
            if response.status in (401, 403):
                raise UsageError(f"SendGrid refused the API key ({response.status}) for {PATH}{list_name}: it needs "
                                 "the suppressions read scope (suppression.read)")
            if response.status != 429 and response.status < 500:
                raise CliError(f"SendGrid {PATH}{list_name}: {response.status} {_errors(response.data, self._key)}")
            if attempt + 1 < ATTEMPTS:
                told = told_wait(response.headers) if response.status == 429 else None
                self.sleep(told if told is not None else backoff(attempt))
        raise Transient(f"SendGrid {PATH}{list_name}: still {response.status} after {ATTEMPTS} attempts; try again later")


def _errors(data: bytes, api_key: str) -> str:
    """SendGrid's ``errors`` messages, else the answer (clipped); never the API key (an answer may quote the
    request's headers)."""
    try:
        text = "; ".join(str(e.get("message")) for e in json.loads(data)["errors"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return data.decode("utf-8", "replace").replace(api_key, "[API key]")[:200]
    return text.replace(api_key, "[API key]")


def run(target, args) -> int:
    base_url, api_key = target.sendgrid()
    until = args.until if args.until is not None else int(time.time())
    if args.since > until:
        raise UsageError("--since is after --until")
    reader = Reader(target, args.out)
    newest = newest_webhook_rows(reader)
    sendgrid = SendGrid(base_url, api_key)
    now = time.time()
    summary, written = {}, []
    for list_name in args.lists or LISTS:
        counts = summary[list_name] = {"listed": 0, "written": 0, "unchanged": 0, "webhook_newer": 0, "refused": 0}
        with args.out.progress(f"SendGrid {list_name}") as advance:
            entries = list(sendgrid.entries(list_name, args.since, until, advance))
        for entry in entries:
            counts["listed"] += 1
            row = row_of(list_name, entry, now, args.ttl_days)
            problem = CHECKED.key_problem(row)
            if problem:
                counts["refused"] += 1
                args.out.note(f"{list_name}: an entry cannot be stored: {problem}")
                continue
            if newest.get(row[ADDRESS_INDEX.hash_key], -1) >= row["timestamp"]:
                counts["webhook_newer"] += 1
                continue
            if args.dry_run or put_if_newer(reader, row):
                counts["written"] += 1
                written.append({"address": row[ADDRESS_INDEX.hash_key], "list": list_name,
                                "created": periods.iso(row["timestamp"]), "key": row[BOUNCE.hash_key]})
            else:
                counts["unchanged"] += 1
    document = {"since": periods.iso(args.since), "until": periods.iso(until), "dry_run": args.dry_run,
                "lists": summary, "written": written}

    def render(console):
        verb = "would write" if args.dry_run else "written"
        console.print(table(f"SendGrid's suppressions from {document['since']} to {document['until']}",
                            ("list", "listed", verb, "already there", "webhook has newer", "refused"),
                            [(name, c["listed"], c["written"], c["unchanged"], c["webhook_newer"], c["refused"])
                             for name, c in summary.items()]))

    args.out.result(document, render)
    return 0


def newest_webhook_rows(reader: Reader) -> dict[str, int]:
    """Address -> the time of its newest bounce-table row the webhook wrote (backfilled rows left out)."""
    newest: dict[str, int] = {}
    for row in reader.scan(BOUNCE, attributes=(ADDRESS_INDEX.hash_key, "toEmail", "timestamp", "backfilled")):
        if not row.get("backfilled"):
            address = address_of(row)
            newest[address] = max(newest.get(address, -1), int(row.get("timestamp") or 0))
    return newest


def put_if_newer(reader: Reader, row: dict) -> bool:
    """Put ``row`` unless its key holds a row at least as new; whether it was written."""
    try:
        reader.dynamodb.put_item(
            TableName=reader.name(BOUNCE), Item=dynamo.serialize(row),
            ConditionExpression="attribute_not_exists(#k) OR #t < :t",
            ExpressionAttributeNames={"#k": BOUNCE.hash_key, "#t": "timestamp"},
            ExpressionAttributeValues={":t": {"N": str(row["timestamp"])}})
    except reader.dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True
