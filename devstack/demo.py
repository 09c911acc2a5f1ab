"""The article's test run ("テスト実行") on the local stack, with its results as tables.

Scenario 1: a mail to an existing address is sent, logged, and leaves no
bounce row. Scenario 2: the same plus a non-existent address
(``nobody@bounce.test``, which the SendGrid stand-in bounces with 5.1.1)
leaves exactly one bounce row, for that address. ``run`` returns True only
when every check holds.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable

from devstack import metrics
from devstack.stack import Options, Stack, wait_for

SENDER = {"email": "sender@example.com", "name": "Sender"}
EXISTING = {"email": "alice@example.com", "name": "Alice"}
NON_EXISTENT = {"email": "nobody@bounce.test", "name": "Nobody"}


def seed_item(item_id: str, to: list[dict], subject: str) -> dict:
    """A mail sender item as the article's program writes it (from / to as JSON strings)."""
    return {"id": item_id, "from": json.dumps(SENDER), "to": json.dumps(to), "subject": subject,
            "content": "This is a test mail from sendgrid-events."}


def render(rows: list[dict], columns: dict[str, Callable[[dict], object]], width: int = 44) -> str:
    """``rows`` as a plain-text table; ``columns`` maps a heading to how to get its cell."""
    def cell(value) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= width else text[:width - 1] + "~"

    cells = [[cell(get(row)) for get in columns.values()] for row in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    out = [line(columns), line("-" * w for w in widths), *(line(c) for c in cells)]
    if not rows:
        out.append("(no rows)")
    return "\n".join(out)


def emails(value) -> str:
    value = json.loads(value) if isinstance(value, str) else value
    return ", ".join(a.get("email", "?") for a in value or [])


ITEM_COLUMNS = {"id": lambda r: r["id"], "status": lambda r: r.get("status"),
                "messageId": lambda r: r.get("messageId"), "to": lambda r: emails(r.get("to")),
                "error": lambda r: r.get("error")}
SENT_LOG_COLUMNS = {"messageId": lambda r: r["messageId"], "mailId": lambda r: r.get("mailId"),
                    "to": lambda r: emails(r.get("to")), "subject": lambda r: r.get("subject"),
                    "sentAt": lambda r: r.get("sentAt")}
BOUNCE_COLUMNS = {"toEmail": lambda r: r.get("toEmail"), "subject": lambda r: r.get("subject"),
                  "event": lambda r: r.get("event"), "type": lambda r: r.get("type"),
                  "status": lambda r: r.get("status"), "reason": lambda r: r.get("reason"),
                  "fullMessageId": lambda r: r["fullMessageId"]}


class Checks:
    """Prints each check as it is made and remembers whether all held."""

    def __init__(self, out: Callable[[str], None]):
        self.out = out
        self.ok = True

    def __call__(self, what: str, holds: bool) -> None:
        self.ok &= bool(holds)
        self.out(f"  [{'ok' if holds else 'FAIL'}] {what}")


def scenario(stack: Stack, check: Checks, item: dict, bounced: Iterable[str]) -> None:
    stack.insert(item)
    [settled] = stack.wait_settled(item["id"])
    check(f"item {item['id']} is sent (status {settled.get('status')!r})", settled.get("status") == "sent")
    message_id = settled.get("messageId")
    logged = [r for r in stack.scan("sent_log") if r["messageId"] == message_id]
    check(f"the sent log has it under X-Message-Id {message_id}", len(logged) == 1)
    rows = [r for r in stack.scan("bounce") if r.get("messageId") == message_id]
    expected = sorted(bounced)
    check(f"bounce rows for it: {expected or 'none'}", sorted(r["toEmail"] for r in rows) == expected)
    for row in rows:
        check(f"{row['toEmail']}: bounce 5.1.1 with the subject and sender from the sent log",
              (row.get("event"), row.get("type"), row.get("status"), row.get("subject"), row.get("fromEmail"))
              == ("bounce", "bounce", "5.1.1", item["subject"], SENDER["email"]))


def emitted(stack: Stack, check: Checks, out: Callable[[str], None]) -> None:
    """The metrics the run emitted, read back from the functions' EMF log lines (``devstack.metrics``):
    what CloudWatch would graph for it."""
    webhook = stack.functions["webhook"].logs
    wait_for(lambda: len(metrics.documents(webhook)) >= len(stack.poster.posts), "the webhook's metrics lines",
             timeout=5.0)
    logs = {name: list(function.logs) for name, function in stack.functions.items()}
    out("\nMetrics the functions emitted (their Embedded Metric Format log lines, as CloudWatch reads them)")
    for line in metrics.report(logs):
        out("  " + line)
    found = {(key[2]): total.sum for key, total in metrics.totals(logs["sender"]).items()}
    check(f"the sender counted {found.get('MailsSent', 0):g} mails sent, as SendGrid accepted",
          found.get("MailsSent") == len(stack.sendgrid.accepted))


def run(options: Options | None = None, out: Callable[[str], None] = print) -> bool:
    """Start the stack, run both scenarios, print the tables; True when everything held."""
    check = Checks(out)
    out("Starting the local stack: the Pulumi program applied to moto (IAM enforced), the SendGrid "
        "stand-in, the API front, the stream poller ...")
    with Stack(options or Options(state_path=None)) as stack:
        out(f"  {sum(r.custom for r in stack.program.resources)} resources applied; plugins: {', '.join(stack.plugins.names)}; "
            f"webhook: {stack.state['webhook_url']}\n")
        out("Scenario 1: a mail to an existing address")
        scenario(stack, check, seed_item("test-0001", [EXISTING], "Test mail 1"), bounced=[])
        out("\nScenario 2: the same plus a non-existent address")
        scenario(stack, check, seed_item("test-0002", [EXISTING, NON_EXISTENT], "Test mail 2"),
                 bounced=[NON_EXISTENT["email"]])
        posted, webhook_id = stack.poster.posts, stack.state["outputs"].get("webhookId")
        where = f"webhook {webhook_id}, which the program created" if webhook_id else "the webhook set up by hand"
        out(f"\nSendGrid stand-in: {len(stack.sendgrid.accepted)} mails accepted; "
            f"{sum(p.events for p in posted)} events posted to {where}, in {len(posted)} signed batches "
            f"(answers: {', '.join(str(p.status) for p in posted)})")
        for title, logical, columns, key in (
                ("Mail sender table (item statuses)", "mail_sender", ITEM_COLUMNS, "id"),
                ("Sent log", "sent_log", SENT_LOG_COLUMNS, "sentAt"),
                ("Bounce table", "bounce", BOUNCE_COLUMNS, "toEmail")):
            out(f"\n{title}\n" + render(sorted(stack.scan(logical), key=lambda r: str(r.get(key))), columns))
        emitted(stack, check, out)
    out("\nResult: " + ("the pipeline behaves as the article describes." if check.ok else "FAILED (see above)."))
    return check.ok
