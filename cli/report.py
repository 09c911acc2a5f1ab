"""``report [--since 30d] [--out report.html]``: bounce, block, drop, deferral and spam-report rates.

Per day (UTC) and per recipient domain, with the top reasons, as one
self-contained HTML file (matplotlib charts as PNG data URIs) and, with
``--json``, the numbers. A rate is recipients with that outcome over
recipients sent: each recipient of a mail counts once per outcome, however
many times SendGrid reported it (a deferral is retried, and reported, many
times). From the event-history table when the stack has the ``history``
plugin (its ``sent`` rows give the recipients sent; every event kept); else
from the sent log and the bounce table, which keeps each recipient's newest
bounce or drop only, and no deferrals (said on stderr and in the report).
Events are counted by their own day, recipients sent by the day they were sent.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections import Counter, defaultdict
from pathlib import Path

from cli import periods
from cli.bounces import kind_of
from cli.read import Reader
from handlers import sent_log
from handlers.tables import SENT_LOG
from plugins.dynamodb import BOUNCE
from plugins.history import HISTORY

OUTCOMES = ("bounce", "blocked", "dropped", "deferred", "spamreport")
LABELS = {"bounce": "hard bounce", "blocked": "blocked", "dropped": "dropped", "deferred": "deferred",
          "spamreport": "spam report"}
EVENT_ATTRIBUTES = ("messageId", "fullMessageId", "event", "type", "timestamp", "email", "toEmail", "reason", "response",
                    "status", "to")
TOP_REASONS = 10
TOP_DOMAINS = 15


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="bounce, drop, deferral and spam-report rates, with charts (HTML)",
                                   description=__doc__.split("\n\n")[1])
    parser.add_argument("--since", type=periods.argument, default="30d", metavar="AGE|DATE",
                        help="from (default 30d)")
    parser.add_argument("--out", dest="out_path", default="report.html", metavar="FILE",
                        help="the HTML file (default %(default)s)")
    parser.set_defaults(func=run)


def run(target, args) -> int:
    reader = Reader(target, args.out)
    since = args.since
    if reader.has(HISTORY):
        source = HISTORY.name
        rows = list(reader.scan(HISTORY, attributes=EVENT_ATTRIBUTES, FilterExpression="#t >= :t",
                                ExpressionAttributeNames={"#t": "timestamp"},
                                ExpressionAttributeValues={":t": {"N": str(since)}}))
        sent = [(row["timestamp"], row.get("to") or []) for row in rows if row.get("event") == "sent"]
        events = [row for row in rows if row.get("event") != "sent"]
    else:
        source = "sent_log+bounce"
        args.out.note(f"no {HISTORY.name} table (the history plugin is not enabled): rates from the sent log and the "
                      "bounce table (each recipient's newest bounce or drop; no deferrals)")
        sent = [(periods.epoch(row.get("sentAt")), [a.get("email") for a in sent_log.recipients(row)])
                for row in reader.scan(SENT_LOG, attributes=("sentAt", *sent_log.RECIPIENT_FIELDS))]
        sent = [(at, to) for at, to in sent if at >= since]
        events = [row for row in reader.scan(BOUNCE) if (row.get("timestamp") or 0) >= since] \
            if reader.has(BOUNCE) else []
    document = {"source": source, "since": periods.iso(since), "until": periods.iso(time.time()),
                **tally(sent, events)}
    if source != HISTORY.name:
        document["note"] = "no event history: each recipient's newest bounce or drop only, no deferrals"
    path = Path(args.out_path)
    path.write_text(page(document, charts(document)))
    document["out"] = str(path)

    def render(console):
        from cli.output import table

        console.print(f"{document['totals']['sent']} recipient(s) sent since {document['since']} "
                      f"(from the {source}); report: {path}")
        console.print(table("rates", ("", "sent", *map(LABELS.get, OUTCOMES)),
                            [("all", document["totals"]["sent"], *(_percent(document["totals"], k) for k in OUTCOMES))]
                            + [(d["domain"], d["sent"], *(_percent(d, k) for k in OUTCOMES))
                               for d in document["domains"][:TOP_DOMAINS]]))

    args.out.result(document, render)
    return 0


def domain_of(email) -> str:
    return str(email or "").rsplit("@", 1)[-1].lower() or "?"


def outcome_of(row: dict) -> str | None:
    """bounce, blocked, dropped, deferred, spamreport, or None (processed, delivered, opens, ...)."""
    if row.get("event") == "deferred":
        return "deferred"
    kind = kind_of(row)
    return kind if kind in OUTCOMES else None


def tally(sent: list[tuple[float, list[str]]], events: list[dict]) -> dict:
    """Totals, days and domains (recipients sent, recipients of each outcome, rates) and the top reasons."""
    empty = lambda: {"sent": 0, **{k: 0 for k in OUTCOMES}}  # noqa: E731
    totals, days, domains = empty(), defaultdict(empty), defaultdict(empty)
    for at, recipients in sent:
        for email in recipients:
            for counts in (totals, days[periods.day(at)], domains[domain_of(email)]):
                counts["sent"] += 1
    seen, reasons = set(), Counter()
    for row in sorted(events, key=lambda r: r.get("timestamp") or 0):
        outcome = outcome_of(row)
        email = row.get("email") or row.get("toEmail")
        key = (row.get("messageId") or row.get("fullMessageId"), str(email).lower(), outcome)
        if outcome is None or key in seen:
            continue
        seen.add(key)
        for counts in (totals, days[periods.day(row["timestamp"])], domains[domain_of(email)]):
            counts[outcome] += 1
        reasons[(outcome, str(row.get("reason") or row.get("response") or row.get("status") or "(none given)"))] += 1
    with_rates = lambda counts: {**counts, "rates": {k: _rate(counts, k) for k in OUTCOMES}}  # noqa: E731
    return {
        "totals": with_rates(totals),
        "days": [{"day": day, **with_rates(days[day])} for day in sorted(days)],
        "domains": sorted(({"domain": d, **with_rates(c)} for d, c in domains.items()),
                          key=lambda d: (-d["sent"], d["domain"])),
        "reasons": [{"outcome": o, "reason": r, "count": n} for (o, r), n in reasons.most_common(TOP_REASONS)],
    }


def _rate(counts: dict, outcome: str) -> float | None:
    return round(counts[outcome] / counts["sent"], 4) if counts["sent"] else None


def _percent(counts: dict, outcome: str) -> str:
    rate = counts["rates"][outcome]
    return f"{counts[outcome]} ({rate:.1%})" if rate is not None else str(counts[outcome])


def charts(document: dict) -> dict[str, bytes]:
    """PNG charts: rates per day, rates per domain, top reasons (title -> PNG bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    made = {}

    def png(figure) -> bytes:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()

    days = document["days"]
    figure = Figure(figsize=(8, 3.5))
    axes = figure.subplots()
    for outcome in OUTCOMES:
        axes.plot([d["day"] for d in days], [100 * (d["rates"][outcome] or 0) for d in days], marker="o",
                  label=LABELS[outcome])
    axes.set_ylabel("% of recipients sent")
    axes.set_title("Rates per day (UTC)")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    made["Rates per day"] = png(figure)

    domains = document["domains"][:TOP_DOMAINS]
    figure = Figure(figsize=(8, 0.8 + 0.35 * max(1, len(domains))))
    axes = figure.subplots()
    left = [0.0] * len(domains)
    for outcome in OUTCOMES:
        values = [100 * (d["rates"][outcome] or 0) for d in domains]
        axes.barh([d["domain"] for d in domains], values, left=left, label=LABELS[outcome])
        left = [a + b for a, b in zip(left, values)]
    axes.invert_yaxis()
    axes.set_xlabel("% of recipients sent")
    axes.set_title(f"Rates per recipient domain (the {TOP_DOMAINS} largest)")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    made["Rates per recipient domain"] = png(figure)

    reasons = document["reasons"]
    figure = Figure(figsize=(8, 0.8 + 0.35 * max(1, len(reasons))))
    axes = figure.subplots()
    axes.barh([f"{LABELS[r['outcome']]}: {r['reason'][:60]}" for r in reasons], [r["count"] for r in reasons])
    axes.invert_yaxis()
    axes.set_xlabel("recipients")
    axes.set_title("Top reasons")
    made["Top reasons"] = png(figure)
    return made


def page(document: dict, images: dict[str, bytes]) -> str:
    """One self-contained HTML page: the charts inline, then the numbers."""
    e = html.escape

    def rows(items, key):
        return "".join(f"<tr><td>{e(str(i[key]))}</td><td>{i['sent']}</td>"
                       + "".join(f"<td>{e(_percent(i, k))}</td>" for k in OUTCOMES) + "</tr>" for i in items)

    head = "<tr><th></th><th>sent</th>" + "".join(f"<th>{e(LABELS[k])}</th>" for k in OUTCOMES) + "</tr>"
    figures = "".join(f'<figure><img alt="{e(title)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
                      f"<figcaption>{e(title)}</figcaption></figure>" for title, data in images.items())
    reasons = "".join(f"<tr><td>{e(LABELS[r['outcome']])}</td><td>{e(r['reason'])}</td><td>{r['count']}</td></tr>"
                      for r in document["reasons"])
    note = f"<p><em>{e(document['note'])}</em></p>" if document.get("note") else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sendgrid-events report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>Bounces, drops, deferrals and spam reports</h1>
<p>{document['totals']['sent']} recipient(s) sent from {e(document['since'])} to {e(document['until'])},
from the {e(document['source'])}. A rate is recipients with that outcome over recipients sent.</p>{note}
{figures}
<h2>All</h2><table>{head}{rows([{"name": "all", **document["totals"]}], "name")}</table>
<h2>Per day (UTC)</h2><table>{head}{rows(document["days"], "day")}</table>
<h2>Per recipient domain</h2><table>{head}{rows(document["domains"], "domain")}</table>
<h2>Top reasons</h2><table><tr><th>outcome</th><th>reason</th><th>recipients</th></tr>{reasons}</table>
</body></html>
"""
