"""``story``, ``bounces`` and ``report`` on a stack without the history and suppression plugins: from the
sent log and the bounce table, scanned where there is no index, each saying so."""

import json
import subprocess

import pytest

from devstack.testing import running
from tests.cli_support import console_script, run_json, send

PLAIN = "bounce,dropped,dynamodb"


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    state = tmp_path_factory.mktemp("plain") / "state.json"
    with running(PLAIN, state_path=state) as stack:
        send(stack)
        yield stack, state



def test_report_without_history_reads_the_sent_log_and_the_bounce_table(plain, capsys, tmp_path):
    _, state = plain
    report, err = run_json(capsys, state, "report", "--out", str(tmp_path / "r.html"))
    assert report["source"] == "sent_log+bounce" and "no event_history table" in err
    totals = report["totals"]
    assert {k: totals[k] for k in ("sent", "bounce", "blocked", "dropped", "deferred")} == \
        {"sent": 7, "bounce": 3, "blocked": 1, "dropped": 1, "deferred": 0}  # m3 is sent: no suppression


def test_story_without_history_from_the_sent_log_and_the_bounce_table(plain, capsys):
    _, state = plain
    story, err = run_json(capsys, state, "story", "m1")
    assert story["source"] == "sent_log+bounce" and "no event_history table" in err
    [mail] = story["messages"]
    assert mail["timeline"][0]["event"] == "sent"
    assert sorted((e["email"], e["event"]) for e in mail["timeline"][1:]) == [
        ("b@bounce.test", "bounce"), ("d@dropped.test", "dropped"), ("x@blocked.test", "bounce")]
    by_address, _ = run_json(capsys, state, "story", "b@bounce.test")
    assert {m["mailId"] for m in by_address["messages"]} == {"m1", "m2", "m3"}


def test_bounces_of_an_address_without_the_index_scan_and_say_so(plain, capsys):
    _, state = plain
    listed, err = run_json(capsys, state, "bounces", "--address", "b@bounce.test")
    assert listed["count"] == 3 and "no byAddress index" in err and "scanning it" in err


def test_the_console_script_in_its_own_process(plain, tmp_path):
    _, state = plain
    script = console_script(tmp_path / "venv")
    done = subprocess.run([str(script), "bounces", "--json", "--local", str(state)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["count"] == 5
