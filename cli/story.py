"""``story <messageId | mailId | address>``: what happened to a mail, in order.

A message id (SendGrid's X-Message-Id, or an ``sg_message_id``), a mail id
(the mail sender item's ``id``) or a recipient's address (its mails, newest
first). Each mail's story: the mail sender item's outcome (status, error, who
was suppressed and why), what was sent to whom, then every event. From the
``history`` plugin's event-history table when the stack has it; without it
from the sent log and the bounce table, which keep only each recipient's
newest bounce or drop (said on stderr). For an address, also whether it is
suppressed now, and why.
"""

from __future__ import annotations

from cli import periods
from cli.bounces import rows_of_address
from cli.errors import CliError
from cli.output import table
from cli.read import Reader
from handlers import sent_log
from handlers.tables import MAIL_SENDER, SENT_LOG
from plugins import suppression
from plugins.dynamodb import BOUNCE
from plugins.history import HISTORY

DETAILS = ("type", "status", "reason", "bounceClassification", "attempt", "response", "url")
SENT = "sent"


def register(subparsers) -> None:
    parser = subparsers.add_parser("story", help="what happened to a mail: sent, every event, suppressions",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("query", metavar="MESSAGE_ID|MAIL_ID|ADDRESS")
    parser.add_argument("--limit", type=int, default=20, help="for an address: its newest mails, at most this many "
                                                              "(default %(default)s)")
    parser.set_defaults(func=run)


def run(target, args) -> int:
    reader = Reader(target, args.out)
    history = reader.has(HISTORY)
    if not history:
        args.out.note(f"no {HISTORY.name} table (the history plugin is not enabled): the story comes from the sent "
                      "log and the bounce table, which keep each recipient's newest bounce or drop only")
    story = Story(reader, history)
    query = args.query.strip()
    if "@" in query:
        found_as, message_ids = "address", story.of_address(query, args.limit)
    else:
        found_as, message_ids = story.of_id(query)
    reason = None
    if found_as == "address":  # suppressed without a mail found: a backfilled row, or one older than the logs
        reason = suppression.latest_reason(story.bounce_rows)
    if not message_ids and not reason:
        looked = "a recipient address" if "@" in query else "a message id, an sg_message_id or a mail id"
        raise CliError(f"no mail found for {query!r} (looked it up as {looked})")
    document = {"query": query, "as": found_as, "source": HISTORY.name if history else "sent_log+bounce",
                "messages": [story.message(m, query if found_as == "address" else None) for m in message_ids]}
    if found_as == "address":
        document["suppression"] = reason
    args.out.result(document, lambda console: render(console, document))
    return 0


class Story:
    """Finds a query's mails and tells each one's story from the stack's tables."""

    def __init__(self, reader: Reader, history: bool):
        self.reader, self.history = reader, history
        self.items: dict[str, dict] = {}      # mail id -> mail sender item, for mails not sent (no message id)
        # the bounce rows read: an address's (why it is suppressed; without history also its mails' events),
        # else, without history, those of the mails found
        self.bounce_rows: list[dict] | None = None

    def of_address(self, address: str, limit: int) -> list[str]:
        """The message ids of mails to ``address``, newest first; its bounce rows kept in ``bounce_rows``."""
        wanted = address.lower()
        times: dict[str, float] = {}
        if self.history:
            for row in self.reader.scan(HISTORY, attributes=(HISTORY.hash_key, "email", "to", "timestamp")):
                recipients = [row.get("email")] + list(row.get("to") or [])
                if wanted in (str(r).lower() for r in recipients if r):
                    at = row.get("timestamp") or 0
                    times[row[HISTORY.hash_key]] = max(times.get(row[HISTORY.hash_key], 0), at)
        else:
            for row in self.reader.scan(SENT_LOG, attributes=(SENT_LOG.hash_key, *sent_log.RECIPIENT_FIELDS, "sentAt")):
                if sent_log.recipient(row, wanted):
                    times[row[SENT_LOG.hash_key]] = periods.epoch(row.get("sentAt"))
        self.bounce_rows = rows_of_address(self.reader, wanted) if self.reader.has(BOUNCE) else []
        if not self.history:
            for row in self.bounce_rows:
                if row.get("messageId"):  # not a backfilled row (the lists name no mail)
                    times[row["messageId"]] = max(times.get(row["messageId"], 0), row.get("timestamp") or 0)
        return sorted(times, key=times.get, reverse=True)[:limit]

    def of_id(self, query: str) -> tuple[str, list[str]]:
        """(what ``query`` was found as, its message ids)."""
        if self._is_message(query):
            return "messageId", self._with_bounces([query])
        [mail_id_index] = SENT_LOG.indexes
        rows = self.reader.query(SENT_LOG, query, index=mail_id_index.name, key=mail_id_index.hash_key)
        item = self.reader.get(MAIL_SENDER, query)
        ids = [r[SENT_LOG.hash_key] for r in rows]
        if item and item.get("messageId") and item["messageId"] not in ids:
            ids.append(item["messageId"])
        if item and not ids:  # never sent (rejected, failed, not yet): its item is the whole story
            self.items[query] = item
            return "mailId", [query]
        if ids:
            return "mailId", self._with_bounces(ids)
        prefix = query.split(".", 1)[0]  # an sg_message_id: the X-Message-Id is the part before the first dot
        if prefix != query and self._is_message(prefix):
            return "sg_message_id", self._with_bounces([prefix])
        return "messageId", []

    def _is_message(self, message_id: str) -> bool:
        if self.history and self.reader.query(HISTORY, message_id):
            return True
        return self.reader.get(SENT_LOG, message_id) is not None

    def _with_bounces(self, message_ids: list[str]) -> list[str]:
        """Without history, the bounce rows of ``message_ids`` (one scan: the table has no message-id index)."""
        if not self.history and self.reader.has(BOUNCE):
            values = {f":m{i}": {"S": m} for i, m in enumerate(message_ids)}
            self.bounce_rows = list(self.reader.scan(
                BOUNCE, FilterExpression=f"messageId IN ({', '.join(values)})", ExpressionAttributeValues=values))
        return message_ids

    def message(self, message_id: str, address: str | None = None) -> dict:
        """One mail's story: its outcome, what was sent to whom, every event in order (only ``address``'s
        events, when given)."""
        if message_id in self.items:
            return _outcome(self.items[message_id], {"messageId": None, "mailId": message_id, "timeline": []})
        row = self.reader.get(SENT_LOG, message_id) or {}
        sender = sent_log.address(row.get("from"))
        told = {"messageId": message_id, "mailId": row.get("mailId"), "from": sender.get("email"),
                "subject": row.get("subject"), "sentAt": row.get("sentAt")}
        if self.history:
            events = self.reader.query(HISTORY, message_id)
            sent = next((e for e in events if e.get("event") == SENT), None)
            events = [e for e in events if e.get("event") != SENT]
            told["mailId"] = told["mailId"] or (sent or {}).get("mailId") or next(
                (e.get("mailId") for e in events if e.get("mailId")), None)
        else:
            events = sorted((r for r in self.bounce_rows or () if (r.get("messageId") or r[BOUNCE.hash_key]) == message_id),
                            key=lambda r: r.get("timestamp") or 0)
            sent = None
        timeline = []
        if sent or row:
            recipients = (sent or {}).get("to") or [a.get("email") for a in sent_log.recipients(row)]
            timeline.append({"time": periods.iso(sent["timestamp"]) if sent else row.get("sentAt"), "event": SENT,
                             "email": ", ".join(r for r in recipients if r), "detail": {}})
        for event in events:
            if address and str(event.get("email") or event.get("toEmail") or "").lower() != address.lower():
                continue
            timeline.append({"time": periods.iso(event.get("timestamp")), "event": event.get("event"),
                             "email": event.get("email") or event.get("toEmail"),
                             "detail": {k: event[k] for k in DETAILS if event.get(k) not in (None, event.get("event"))},
                             **({"backfilled": event["backfilled"]} if event.get("backfilled") else {})})
        told["timeline"] = timeline
        item = self.reader.get(MAIL_SENDER, told["mailId"]) if told["mailId"] else None
        told = _outcome(item or {}, told)
        if sent and sent.get("suppressed") and not told.get("suppressed"):
            told["suppressed"] = sent["suppressed"]
        return told


def _outcome(item: dict, told: dict) -> dict:
    """``told`` with the mail sender item's outcome: status, error, suppressed recipients and why."""
    return {**told, "status": item.get("status"), "error": item.get("error"), "suppressed": item.get("suppressed")}


def render(console, document: dict) -> None:
    console.print(f"{document['query']} ({document['as']}), from the {document['source']}")
    for m in document["messages"]:
        console.print()
        console.print(f"[bold]mail {m['mailId'] or '?'}[/bold]  message {m['messageId'] or '-'}  "
                      f"status {m['status'] or '?'}" + (f"  error: {m['error']}" if m.get("error") else ""))
        if m.get("from") or m.get("subject"):
            console.print(f"from {m.get('from') or '?'}, subject {m.get('subject')!r}")
        for address, why in (m.get("suppressed") or {}).items():
            console.print(f"suppressed {address}: {why}")
        console.print(table(None, ("time (UTC)", "event", "recipient", "detail"),
                            [(periods.shown(e["time"]), e["event"] + (" (backfilled)" if e.get("backfilled") else ""), e["email"],
                              "; ".join(f"{k} {v}" for k, v in e["detail"].items())) for e in m["timeline"]]))
    if document["as"] == "address":
        console.print(f"\n{document['query']}: " + (f"suppressed: {document['suppression']}"
                                                     if document.get("suppression") else "not suppressed"))
