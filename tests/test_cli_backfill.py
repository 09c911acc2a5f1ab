"""``backfill``: SendGrid's suppression lists into the bounce table, against the local stack and its stand-in."""

import json
import time
import urllib.error
import urllib.request

import pytest

from cli import backfill
from cli.__main__ import main
from cli.errors import CliError
from devstack.sendgrid import API_KEY, Scripted, SendGridStandIn
from devstack.testing import local_stack  # noqa: F401 (a fixture)
from tests.cli_support import item, run_json

PLUGINS = "bounce,dropped,spamreport,dynamodb,suppression"
HEARD = ("ok@example.com", "b@bounce.test", "x@blocked.test", "d@dropped.test", "s@spam.test")


def get(standin, path, key=API_KEY):
    request = urllib.request.Request(standin.url + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_stand_in_lists_what_its_mails_did_newest_first_filtered_and_paginated():
    with SendGridStandIn() as standin:
        lists = standin.suppressions
        for i in range(5):
            lists.add("bounces", f"u{i}@bounce.test", 1000 + i, reason="550 no such user", status="5.1.1")
        assert get(standin, "/v3/suppression/bounces?limit=2&offset=1") == (200, [
            {"created": 1003, "email": "u3@bounce.test", "reason": "550 no such user", "status": "5.1.1"},
            {"created": 1002, "email": "u2@bounce.test", "reason": "550 no such user", "status": "5.1.1"}])
        status, found = get(standin, "/v3/suppression/bounces?start_time=1001&end_time=1003")
        assert [e["created"] for e in found] == [1003, 1002, 1001]
        assert get(standin, "/v3/suppression/bounces?limit=501")[0] == 400
        assert get(standin, "/v3/suppression/nothing")[0] == 404
        assert get(standin, "/v3/suppression/bounces", key="SG.wrong")[0] == 401

        # a mail the stand-in accepts puts its recipients on the lists its events say
        body = json.dumps({"personalizations": [{"to": [{"email": e} for e in HEARD]}], "subject": "s",
                           "from": {"email": "me@example.com"}, "content": [{"type": "text/plain", "value": "x"}]})
        request = urllib.request.Request(standin.url + "/v3/mail/send", data=body.encode(), method="POST",
                                         headers={"Authorization": f"Bearer {API_KEY}",
                                                  "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).close()
        listed = {name: sorted(lists.lists[name]) for name in lists.lists}
        assert listed == {"bounces": ["b@bounce.test"] + [f"u{i}@bounce.test" for i in range(5)],
                          "blocks": ["x@blocked.test"], "invalid_emails": ["d@dropped.test"],
                          "spam_reports": ["s@spam.test"]}
        assert set(lists.lists["spam_reports"]["s@spam.test"]) == {"created", "email", "ip"}


def bounce_rows(stack) -> dict[str, dict]:
    return {row["fullMessageId"]: row for row in stack.scan("bounce")}


def test_backfill_writes_what_the_webhook_missed_once_and_never_over_a_newer_webhook_row(local_stack, tmp_path,
                                                                                        capsys):
    state = tmp_path / "state.json"
    stack = local_stack(PLUGINS, state_path=state)
    stack.insert(item("m1", *HEARD))
    stack.wait_settled("m1")
    heard = bounce_rows(stack)
    assert len(heard) == 4  # bounce, blocked, dropped, spam report: the webhook heard each

    # what the webhook heard is on SendGrid's lists too: nothing to backfill
    done, _ = run_json(capsys, state, "backfill", "--since", "1d")
    assert {name: c["webhook_newer"] for name, c in done["lists"].items()} == \
        {"bounces": 1, "blocks": 1, "invalid_emails": 1, "spam_reports": 1}
    assert done["written"] == [] and bounce_rows(stack) == heard

    # two days SendGrid could not reach the webhook: the outcomes are on the lists only
    now = int(time.time())
    lists = stack.sendgrid.suppressions
    lists.add("bounces", "Lost@Bounce.test", now - 2 * 86400, reason="550 5.1.1 no such user", status="5.1.1")
    lists.add("blocks", "lost@blocked.test", now - 2 * 86400, reason="421 rate limited", status="4.7.1")
    lists.add("invalid_emails", "lost@dropped.test", now - 86400, reason="Mail domain mentioned is unknown")
    lists.add("spam_reports", "lost@spam.test", now - 3600, ip="10.0.0.1")
    lists.add("bounces", "old@bounce.test", now - 10 * 86400, reason="550", status="5.1.1")  # before --since
    x_row = heard[next(k for k, r in heard.items() if r["address"] == "x@blocked.test")]
    lists.add("bounces", "x@blocked.test", x_row["timestamp"] + 5, reason="550 5.1.1 gone now", status="5.1.1")

    done, _ = run_json(capsys, state, "backfill", "--since", "3d", "--until", "2999-01-01")
    assert sorted((w["list"], w["address"]) for w in done["written"]) == [
        ("blocks", "lost@blocked.test"), ("bounces", "lost@bounce.test"), ("bounces", "x@blocked.test"),
        ("invalid_emails", "lost@dropped.test"), ("spam_reports", "lost@spam.test")]
    rows = bounce_rows(stack)
    assert {k: rows[k] for k in heard} == heard  # every webhook row as it was
    lost = rows["backfill:bounces:lost@bounce.test"]
    assert lost["backfilled"] == "bounces" and lost["event"] == "bounce" and lost["type"] == "bounce"
    assert lost["timestamp"] == now - 2 * 86400 and lost["toEmail"] == "Lost@Bounce.test" and "expiresAt" not in lost
    assert rows["backfill:invalid_emails:lost@dropped.test"]["reason"] == "Invalid"

    # idempotent: the same rows, nothing written again
    again, _ = run_json(capsys, state, "backfill", "--since", "3d", "--until", "2999-01-01")
    assert again["written"] == [] and sum(c["unchanged"] for c in again["lists"].values()) == 5
    assert bounce_rows(stack) == rows

    # what the operator asks next sees them; the sender now suppresses them
    export, _ = run_json(capsys, state, "suppressions", "export")
    reasons = {s["address"]: (s["reason"], s["backfilled"]) for s in export["suppressions"]}
    assert reasons["lost@bounce.test"] == ("hard bounce: 5.1.1", "bounces")
    assert reasons["lost@dropped.test"] == ("dropped: Invalid", "invalid_emails")
    assert reasons["lost@spam.test"] == ("spam report", "spam_reports")
    assert "lost@blocked.test" not in reasons  # a block does not suppress (the sender's rule)
    story, _ = run_json(capsys, state, "story", "lost@bounce.test")  # no mail of ours went there: only why
    assert story["messages"] == [] and story["suppression"].startswith("hard bounce: 5.1.1 (")
    stack.insert(item("m2", "lost@bounce.test"))
    [m2] = stack.wait_settled("m2")
    assert m2["status"] == "rejected" and m2["suppressed"]["lost@bounce.test"].startswith("hard bounce: 5.1.1")

    # SendGrid lists the address again, later: its backfilled row follows, nothing else changes
    lists.add("bounces", "lost@bounce.test", now - 60, reason="550 5.1.1 still no such user", status="5.1.1")
    later, _ = run_json(capsys, state, "backfill", "--since", "3d", "--list", "bounces")
    assert [(w["address"], w["list"]) for w in later["written"]] == [("lost@bounce.test", "bounces")]
    assert list(later["lists"]) == ["bounces"]
    after = bounce_rows(stack)
    assert after["backfill:bounces:lost@bounce.test"]["timestamp"] == now - 60
    assert {k: v for k, v in after.items() if k != "backfill:bounces:lost@bounce.test"} == \
        {k: v for k, v in rows.items() if k != "backfill:bounces:lost@bounce.test"}


def test_backfill_reads_every_page_waits_out_a_429_and_names_a_refused_key(local_stack, tmp_path, capsys,
                                                                         monkeypatch):
    state = tmp_path / "state.json"
    stack = local_stack("bounce,dropped,dynamodb", state_path=state)
    now = int(time.time())
    for i in range(5):
        stack.sendgrid.suppressions.add("bounces", f"p{i}@bounce.test", now - 100 - i, reason="550", status="5.1.1")
    monkeypatch.setattr(backfill, "PAGE", 2)
    waits = []
    monkeypatch.setattr(backfill.SendGrid, "sleep", staticmethod(waits.append))
    stack.sendgrid.script.append(Scripted(status=429, headers={"Retry-After": "7"}))
    before = stack.sendgrid.requests

    done, _ = run_json(capsys, state, "backfill", "--since", "1h", "--list", "bounces")
    assert sorted(w["address"] for w in done["written"]) == [f"p{i}@bounce.test" for i in range(5)]
    assert stack.sendgrid.requests - before == 4  # the 429, then pages of 2, 2 and 1
    assert waits == [7.0]
    assert len(stack.scan("bounce")) == 5

    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "sendgrid_api_key": "SG.revoked"}))
    assert main(["backfill", "--since", "1h", "--local", str(state)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sendgrid-events: SendGrid refused the API key (401)") and "SG.revoked" not in err


@pytest.mark.parametrize("body", [b'{"errors": [{"message": "bad header Authorization: Bearer SG.secret"}]}',
                                  b"400 Bad Request\r\nAuthorization: Bearer SG.secret\r\n"])
def test_a_refused_page_quotes_sendgrid_without_the_api_key(body):
    class Answer:  # an answer that echoes the request's headers, as a proxy or a wrong host may
        status, data, headers = 400, body, {}

    client = backfill.SendGrid("http://sendgrid.test", "SG.secret")
    client.http = type("Http", (), {"request": lambda self, *args, **kwargs: Answer()})()
    with pytest.raises(CliError, match=r"(?s)^SendGrid /v3/suppression/bounces: 400 .*Bearer \[API key\]") as refused:
        client.page("bounces", {})
    assert "SG.secret" not in str(refused.value)


def state_without_aws(tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"tables": {}, "aws_env": {}, "sendgrid_api_host": "http://127.0.0.1:9",
                                 "sendgrid_api_key": "SG.x"}))
    return state


def test_a_window_that_ends_before_it_starts_is_a_usage_error(tmp_path, capsys):
    assert main(["backfill", "--since", "1d", "--until", "2d", "--local", str(state_without_aws(tmp_path))]) == 2
    assert capsys.readouterr().err == "sendgrid-events: --since is after --until\n"


def test_a_since_that_is_no_time_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["backfill", "--since", "yesterday", "--local", str(state_without_aws(tmp_path))])
    assert exited.value.code == 2
    assert "argument --since: 'yesterday' is not an age (7d, 24h, 90m, 2w) nor a date" in capsys.readouterr().err
