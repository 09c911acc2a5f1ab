"""``story``, ``bounces``, ``suppressions export`` and ``report`` against the local stack.

A stack with the history and suppression plugins answers from the event
history (tests/test_cli_fallbacks.py: one without them). Mails go through
the whole pipeline (the stand-in decides each recipient's events by domain),
then each command runs in-process with ``--json``.
"""

import base64
import csv
import io
import json
import time
from html.parser import HTMLParser

import pytest

from cli.__main__ import main
from devstack import tools
from devstack.testing import running
from tests.cli_support import M1, run_json, send

FULL = "bounce,dropped,deferred,delivered,processed,spamreport,dynamodb,suppression,history"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    state = tmp_path_factory.mktemp("full") / "state.json"
    with running(FULL, state_path=state) as stack:
        send(stack)
        m1 = stack.item("m1")["messageId"]
        spam = {"event": "spamreport", "email": "ok@example.com", "timestamp": int(time.time()),
                "sg_event_id": "spam-1", "sg_message_id": f"{m1}.filter-1"}
        assert tools.post(stack.state, [spam])[0] == 200
        yield stack, state


def test_story_of_a_mail_id_from_the_history(full, capsys):
    stack, state = full
    story, _ = run_json(capsys, state, "story", "m1")
    assert story["as"] == "mailId" and story["source"] == "event_history"
    [mail] = story["messages"]
    assert mail["messageId"] == stack.item("m1")["messageId"] and mail["status"] == "sent"
    assert mail["subject"] == "About m1" and mail["from"] == "sender@example.com"
    timeline = mail["timeline"]
    assert timeline[0]["event"] == "sent" and timeline[0]["email"] == ", ".join(M1)
    by_recipient = {}
    for event in timeline[1:]:
        by_recipient.setdefault(event["email"], []).append(event["event"])
    assert by_recipient == {"ok@example.com": ["processed", "delivered", "spamreport"],
                            "b@bounce.test": ["processed", "bounce"], "x@blocked.test": ["processed", "bounce"],
                            "d@dropped.test": ["dropped"], "late@deferred.test": ["processed", "deferred"]}
    [bounce] = [e for e in timeline if e["email"] == "b@bounce.test" and e["event"] == "bounce"]
    assert bounce["detail"]["status"] == "5.1.1" and bounce["detail"]["bounceClassification"] == "Invalid Address"
    times = [e["time"] for e in timeline]
    assert times == sorted(times)


def test_story_by_message_id_and_sg_message_id_are_the_same_mail(full, capsys):
    stack, state = full
    message_id = stack.item("m2")["messageId"]
    by_id, _ = run_json(capsys, state, "story", message_id)
    by_sg, _ = run_json(capsys, state, "story", f"{message_id}.recvd-abc-0")
    assert by_id["as"] == "messageId" and by_sg["as"] == "sg_message_id"
    assert by_id["messages"] == by_sg["messages"]
    assert [e["event"] for e in by_id["messages"][0]["timeline"]] == ["sent", "processed", "bounce"]


def test_story_of_an_address_its_mails_and_why_it_is_suppressed(full, capsys):
    stack, state = full
    story, _ = run_json(capsys, state, "story", "B@Bounce.test")
    assert story["as"] == "address"
    assert {m["mailId"] for m in story["messages"]} == {"m1", "m2"}
    for mail in story["messages"]:  # only that recipient's events
        assert {e["email"].lower() for e in mail["timeline"][1:]} == {"b@bounce.test"}
    assert story["suppression"].startswith("hard bounce: 5.1.1 Invalid Address (")


def test_story_of_a_mail_never_sent_says_who_was_suppressed(full, capsys):
    _, state = full
    story, _ = run_json(capsys, state, "story", "m3")
    [mail] = story["messages"]
    assert mail["status"] == "rejected" and mail["messageId"] is None and mail["timeline"] == []
    assert mail["suppressed"]["b@bounce.test"].startswith("hard bounce: 5.1.1")


def test_story_of_nothing_is_a_clear_error(full, capsys):
    _, state = full
    assert main(["story", "no-such-mail", "--local", str(state)]) == 1
    assert capsys.readouterr().err == ("sendgrid-events: no mail found for 'no-such-mail' (looked it up as a message "
                                       "id, an sg_message_id or a mail id)\n")


def test_bounces_say_which_rows_suppress_and_why(full, capsys):
    _, state = full
    listed, _ = run_json(capsys, state, "bounces")
    kinds = sorted((b["address"], b["kind"], b["suppresses"] or "") for b in listed["bounces"])
    assert kinds == [("b@bounce.test", "bounce", "hard bounce: 5.1.1 Invalid Address")] * 2 + [
        ("d@dropped.test", "dropped", "dropped: Invalid"), ("ok@example.com", "spamreport", "spam report"),
        ("x@blocked.test", "blocked", "")]
    times = [b["time"] for b in listed["bounces"]]
    assert times == sorted(times, reverse=True)

    only, err = run_json(capsys, state, "bounces", "--address", "B@BOUNCE.TEST", "--type", "bounce")
    assert only["count"] == 2 and {b["mailId"] for b in only["bounces"]} == {"m1", "m2"} and err == ""
    blocked, _ = run_json(capsys, state, "bounces", "--type", "blocked", "--type", "dropped", "--since", "1h")
    assert sorted(b["kind"] for b in blocked["bounces"]) == ["blocked", "dropped"]
    future, _ = run_json(capsys, state, "bounces", "--since", "2999-01-01")
    assert future == {"count": 0, "bounces": []}


def test_suppressions_export_as_csv_and_json(full, capsys, tmp_path):
    _, state = full
    capsys.readouterr()
    assert main(["suppressions", "export", "--local", str(state)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["address"], r["reason"]) for r in rows] == [
        ("b@bounce.test", "hard bounce: 5.1.1 Invalid Address"), ("d@dropped.test", "dropped: Invalid"),
        ("ok@example.com", "spam report")]
    assert main(["suppressions", "export", "--format", "json", "--out", str(tmp_path / "s.json"),
                 "--local", str(state)]) == 0
    written = json.loads((tmp_path / "s.json").read_text())
    assert [s["address"] for s in written["suppressions"]] == [r["address"] for r in rows]
    assert capsys.readouterr().err == f"3 suppressed address(es) written to {tmp_path / 's.json'}\n"


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.cells = {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images[attrs["alt"]] = attrs["src"]

    def handle_data(self, data):
        self.cells.append(data.strip())


def test_report_numbers_match_the_mails_sent_and_the_page_holds_the_charts(full, capsys, tmp_path):
    _, state = full
    out = tmp_path / "report.html"
    report, _ = run_json(capsys, state, "report", "--since", "1d", "--out", str(out))
    totals = report["totals"]
    # m1's five recipients and m2's one (m3 was never sent: suppressed); b@bounce.test bounced twice
    assert {k: totals[k] for k in ("sent", "bounce", "blocked", "dropped", "deferred", "spamreport")} == \
        {"sent": 6, "bounce": 2, "blocked": 1, "dropped": 1, "deferred": 1, "spamreport": 1}
    assert totals["rates"]["bounce"] == round(2 / 6, 4)
    domains = {d["domain"]: d for d in report["domains"]}
    assert domains["bounce.test"]["sent"] == 2 and domains["bounce.test"]["rates"]["bounce"] == 1.0
    assert domains["example.com"]["rates"]["spamreport"] == 1.0 and domains["example.com"]["bounce"] == 0
    assert [d["sent"] for d in report["days"]] == [6]
    assert report["reasons"][0] == {"outcome": "bounce", "count": 2,
                                    "reason": "550 5.1.1 The email account that you tried to reach does not exist."}

    page = Page()
    page.feed(out.read_text())
    assert set(page.images) == {"Rates per day", "Rates per recipient domain", "Top reasons"}
    for src in page.images.values():
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG) and data[12:16] == b"IHDR"
    assert "bounce.test" in page.cells and "2 (100.0%)" in page.cells


def test_people_get_tables(full, capsys, tmp_path):
    _, state = full
    capsys.readouterr()
    assert main(["story", "b@bounce.test", "--local", str(state)]) == 0
    out = capsys.readouterr().out
    assert "mail m1" in out and "mail m2" in out and "status sent" in out and "time (UTC)" in out
    assert out.rstrip().rsplit("\n", 1)[-1].startswith("b@bounce.test: suppressed: hard bounce: 5.1.1 Invalid Address (")
    assert main(["bounces", "--type", "spamreport", "--local", str(state)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 bounce-table row(s)") and "ok@example.com" in out and "spam report" in out
    assert main(["report", "--since", "1d", "--out", str(tmp_path / "r.html"), "--local", str(state)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 recipient(s) sent since ") and "bounce.test" in out and "2 (100.0%)" in out
