"""handlers.replay: events set aside in the rejects table, run again through the current plugins,
exactly once (the delivery's marks apply), each row ending stored, duplicate or rejected again."""

import json
import threading

import pytest

from handlers import dynamo, replay
from handlers.delivery import Busy, Rejected
from handlers.manager import EventType
from handlers.tables import REJECTS
from tests.support import scan
from tests.webhook_support import Recorder, bounce, endpoint  # noqa: F401 (fixture)


def rows() -> dict[str, dict]:
    return {r["eventId"]: r for r in scan("TABLE_REJECTS")}


class Refusing(Recorder):
    """A non-idempotent sink that refuses for good the records whose reason says so, until fixed."""

    fixed = False

    def write(self, records):
        refused = [r["eventId"] for r in records if not self.fixed and r.get("reason") == "REFUSE"]
        super().write([r for r in records if r["eventId"] not in refused])
        if refused:
            raise Rejected(refused, "not today")


def test_what_a_sink_refused_goes_to_that_sink_once_after_the_fix(endpoint):
    notify = Refusing("notify")
    web = endpoint("bounce,dropped,dynamodb", notify.sink)
    batch = [bounce(1), bounce(2, reason="REFUSE")]
    assert web.post(batch)[1]["rejected"] == 1
    [row_id] = rows()
    assert row_id.startswith("notify:sha256:") and rows()[row_id]["timestamp"] == bounce(2)["timestamp"]
    assert web.post(batch)[1]["duplicates"] == 2  # a re-post changes nothing: the event is done

    first = rows()[row_id]
    request = {"replay": {"rejects": [row_id]}}
    assert replay.replay(request, web.plugins)["outcomes"] == {row_id: "rejected"}  # not fixed yet
    kept = rows()[row_id]  # rewritten: a new version, so the next replay is a new attempt
    assert "version" not in first and len(kept["version"]) == 32 and kept["replayedAt"] > 0
    assert replay.replay(request, web.plugins)["outcomes"] == {row_id: "rejected"}
    assert rows()[row_id]["version"] != kept["version"]
    kept = rows()[row_id]

    notify.fixed, notify.block = True, threading.Event()
    notify.entered.clear()  # set by the posts above: wait for the replay's own entry
    first_replay = {}
    thread = threading.Thread(target=lambda: first_replay.update(replay.replay(request, web.plugins)))
    thread.start()
    assert notify.entered.wait(10)  # one operator's replay holds the claim ...
    with pytest.raises(Busy):  # ... so another's, at the same time, is told to come back
        replay.replay(request, web.plugins)
    notify.block.set()
    thread.join(10)
    assert first_replay["outcomes"] == {row_id: "stored"}
    assert notify.counts()[bounce(2)["sg_event_id"]] == 1
    assert rows() == {}
    assert len(scan("TABLE_BOUNCE")) == 2  # the other sinks were never handed it again

    # A deletion that was lost (the row replayed is back): replaying it finds it done, and deletes it.
    dynamo.batch_put(REJECTS, [kept])
    assert replay.replay(request, web.plugins)["outcomes"] == {row_id: "duplicate"}
    assert notify.counts()[bounce(2)["sg_event_id"]] == 1 and rows() == {}
    assert replay.replay(request, web.plugins) == {"outcomes": {row_id: "missing"}, "counts": {"missing": 1}}


def test_an_event_a_broken_plugin_could_not_read_is_stored_once_the_plugin_is_fixed(endpoint):
    web = endpoint("bounce,dropped,dynamodb")
    fixed = web.plugins.event_types["dropped"]

    def broken(event):
        raise ValueError("cannot read it")
    web.plugins.event_types["dropped"] = EventType("dropped", broken, "tests")
    dropped = {**bounce(3), "event": "dropped", "reason": "Invalid"}
    assert web.post([bounce(1), dropped])[1]["rejected"] == 1
    [row_id] = rows()
    assert not row_id.startswith("dynamodb:")  # the core's reject: it never became a record

    web.plugins.event_types["dropped"] = fixed
    answer = replay.replay({"replay": {"rejects": [row_id, "sha256:nothing"]}}, web.plugins)
    assert answer["outcomes"] == {row_id: "stored", "sha256:nothing": "missing"}
    assert answer["counts"] == {"stored": 1, "missing": 1}
    assert sorted(r["event"] for r in scan("TABLE_BOUNCE")) == ["bounce", "dropped"]
    assert rows() == {}
    assert web.post([dropped])[1]["duplicates"] == 1  # SendGrid's own retry of it changes nothing now


def test_a_core_reject_a_sink_now_refuses_moves_to_that_sinks_row(endpoint):
    notify = Refusing("notify")
    web = endpoint("bounce,dropped,dynamodb", notify.sink)
    fixed = web.plugins.event_types["bounce"]
    web.plugins.event_types["bounce"] = EventType("bounce", lambda e: 1 / 0, "tests")
    web.post([bounce(1, reason="REFUSE")])
    [core_row] = rows()
    web.plugins.event_types["bounce"] = fixed
    assert replay.replay({"replay": {"rejects": [core_row]}}, web.plugins)["outcomes"] == {core_row: "rejected"}
    [sink_row] = rows()
    assert sink_row == f"notify:{core_row}" and rows()[sink_row]["reason"] == "notify: not today"


def test_what_cannot_be_replayed_stays_and_says_why(endpoint):
    web = endpoint("bounce,dropped,dynamodb")
    cut = {"eventId": "sha256:cut", "raw": "[1", "rawLength": 40000, "sink": None, "reason": "too big"}
    gone = {"eventId": "history:sha256:x", "raw": json.dumps(bounce(5)), "rawLength": 0, "sink": "history",
            "reason": "history: refused"}
    ignored = {**bounce(6), "event": "open"}
    typed = {"eventId": "sha256:open", "raw": json.dumps(ignored), "rawLength": 0, "sink": None, "reason": "old"}
    dynamo.batch_put(REJECTS, [cut, gone, typed])
    answer = replay.replay({"replay": {"rejects": ["sha256:cut", "history:sha256:x", "sha256:open"]}}, web.plugins)
    assert answer["outcomes"] == {"sha256:cut": "cut", "history:sha256:x": "sink not enabled",
                                  "sha256:open": "ignored"}
    assert set(rows()) == {"sha256:cut", "history:sha256:x", "sha256:open"}


@pytest.mark.parametrize("ids", [None, "sha256:x", [""], ["x"] * (replay.MAX_ROWS + 1), [3]])
def test_a_malformed_request_is_refused_before_anything_is_read(endpoint, ids):
    web = endpoint("bounce,dropped,dynamodb")
    with pytest.raises(ValueError, match="list of at most 100 reject ids"):
        replay.replay({"replay": {"rejects": ids}}, web.plugins)
