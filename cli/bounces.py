"""``bounces`` and ``suppressions export``: who to stop mailing, and why, from the bounce table.

``bounces`` lists the bounce table's rows (the ``dynamodb`` sink's: the newest
bounce or drop of each recipient message, spam reports with the
``suppression`` plugin, rows ``backfill`` added), newest first; with
``--address`` through the suppression plugin's ``byAddress`` index (a scan
with a filter when the stack has no such index, which it says). Each row says
whether it suppresses its address, and why (``plugins.suppression.why``: the
sender's own rule).

``suppressions export`` is the list to stop mailing: each address whose latest
suppressing row says so, with the reason, as CSV (or JSON).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cli import periods
from cli.output import table
from cli.read import Reader
from plugins import suppression
from plugins.dynamodb import BOUNCE
from plugins.suppression import ADDRESS_INDEX

KINDS = ("bounce", "blocked", "dropped", "spamreport")
EXPORT_COLUMNS = ("address", "reason", "since", "event", "messageId", "backfilled")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bounces", help="bounce-table rows: who bounced, was dropped, reported spam",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("--address", help="only this recipient (any case)")
    parser.add_argument("--since", type=periods.argument, metavar="AGE|DATE", help="only rows since (7d, 2026-11-01)")
    parser.add_argument("--type", action="append", choices=KINDS, dest="kinds",
                        help="only this kind (repeatable): bounce (hard), blocked, dropped, spamreport")
    parser.set_defaults(func=run_bounces)

    group = subparsers.add_parser("suppressions", help="the addresses to stop mailing")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="every suppressed address with its reason (CSV by default)",
                                description=__doc__.split("\n\n")[2])
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--out", metavar="FILE", dest="out_path", help="write there instead of stdout")
    export.set_defaults(func=run_export)


def address_of(row: dict) -> str:
    """A bounce-table row's recipient, lower case (``address``; ``toEmail`` in rows put there by hand)."""
    return str(row.get("address") or row.get("toEmail") or "").lower()


def kind_of(row: dict) -> str:
    """bounce (hard), blocked, dropped or spamreport."""
    if row.get("event") == "bounce":
        return "blocked" if row.get("type") == "blocked" else "bounce"
    return str(row.get("event"))


def rows_of_address(reader: Reader, address: str) -> list[dict]:
    """The bounce-table rows of ``address``: through the ``byAddress`` index, else a scan (said on stderr)."""
    if reader.has_index(BOUNCE, ADDRESS_INDEX.name):
        return suppression.rows_for(address, table=reader.name(BOUNCE), dynamodb=reader.dynamodb)
    reader.out.note(f"the bounce table has no {ADDRESS_INDEX.name} index (the suppression plugin is not enabled): "
                    "scanning it")
    return list(reader.scan(BOUNCE, FilterExpression="#a = :a", ExpressionAttributeNames={"#a": ADDRESS_INDEX.hash_key},
                            ExpressionAttributeValues={":a": {"S": address.lower()}}))


def entry(row: dict) -> dict:
    """A row as the operator reads it."""
    return {
        "address": address_of(row), "time": periods.iso(row.get("timestamp")), "kind": kind_of(row),
        "status": row.get("status"), "reason": row.get("reason"),
        "classification": row.get("bounceClassification"), "messageId": row.get("messageId"),
        "mailId": row.get("mailId"), "suppresses": suppression.why(row), "backfilled": row.get("backfilled"),
    }


def run_bounces(target, args) -> int:
    reader = Reader(target, args.out)
    if args.address:
        rows = rows_of_address(reader, args.address)
    elif args.since is not None:
        rows = list(reader.scan(BOUNCE, FilterExpression="#t >= :t", ExpressionAttributeNames={"#t": "timestamp"},
                                ExpressionAttributeValues={":t": {"N": str(args.since)}}))
    else:
        rows = list(reader.scan(BOUNCE))
    rows = [r for r in rows if (args.since is None or (r.get("timestamp") or 0) >= args.since)
            and (not args.kinds or kind_of(r) in args.kinds)]
    rows.sort(key=lambda r: r.get("timestamp") or 0, reverse=True)
    entries = [entry(r) for r in rows]

    def render(console):
        console.print(table(f"{len(entries)} bounce-table row(s)",
                            ("time (UTC)", "address", "kind", "status", "reason", "suppresses"),
                            [(periods.shown(e["time"]), e["address"], e["kind"] + (" (backfilled)" if e["backfilled"] else ""),
                              e["status"], e["reason"], e["suppresses"] or "no") for e in entries]))

    args.out.result({"count": len(entries), "bounces": entries}, render)
    return 0


def suppressed(rows) -> list[dict]:
    """Each address whose latest suppressing row says so: address, reason, since, event, messageId, backfilled."""
    by_address: dict[str, list[dict]] = {}
    for row in rows:
        by_address.setdefault(address_of(row), []).append(row)
    found = []
    for address, own in sorted(by_address.items()):
        row = suppression.latest_suppressing(own)
        if row is not None and address:
            found.append({"address": address, "reason": suppression.why(row), "since": periods.iso(row.get("timestamp")),
                          "event": row.get("event"), "messageId": row.get("messageId"),
                          "backfilled": row.get("backfilled")})
    return found


def run_export(target, args) -> int:
    found = suppressed(Reader(target, args.out).scan(BOUNCE))
    if args.json or args.format == "json":
        document = {"count": len(found), "suppressions": found}
        if not args.out_path:
            args.out.result(document)
            return 0
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**f, "backfilled": f["backfilled"] or ""} for f in found)
        text = buffer.getvalue()
    if args.out_path:
        Path(args.out_path).write_text(text)
        args.out.note(f"{len(found)} suppressed address(es) written to {args.out_path}")
    else:
        args.out.out.write(text)
    return 0
