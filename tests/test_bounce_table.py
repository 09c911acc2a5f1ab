"""The ``dynamodb`` sink: one bounce row per recipient message, the newest event wins."""

from tests.support import scan
from tests.webhook_support import bounce, endpoint  # noqa: F401  (fixture)


def final(n=1, **extra):
    return bounce(n, message="msg", timestamp=1764400200, sg_event_id="final", **extra)


def earlier_blocked(n=1):
    return bounce(n, message="msg", timestamp=1764400100, sg_event_id="blocked", type="blocked",
                  status="4.7.1", reason="421 try again later")


def test_an_older_event_posted_later_does_not_replace_the_newer_row(endpoint):
    web = endpoint()
    assert web.post([final()])[0] == 200
    assert web.post([earlier_blocked()])[0] == 200   # SendGrid's re-post of an older batch
    [row] = scan("TABLE_BOUNCE")
    assert (row["type"], row["sgEventId"], row["timestamp"]) == ("bounce", "final", 1764400200)


def test_a_newer_event_replaces_the_older_row(endpoint):
    web = endpoint()
    web.post([earlier_blocked()])
    web.post([final()])
    [row] = scan("TABLE_BOUNCE")
    assert (row["type"], row["status"]) == ("bounce", "5.1.1")


def test_within_a_batch_the_newest_wins_whatever_the_order(endpoint):
    web = endpoint()
    web.post([final(), earlier_blocked()])
    [row] = scan("TABLE_BOUNCE")
    assert row["sgEventId"] == "final"


def test_rows_of_different_messages_are_all_written(endpoint):
    web = endpoint()
    status, counts = web.post([bounce(n, message=f"m{n}") for n in range(250)])
    assert status == 200 and counts["accepted"] == 250
    assert len(scan("TABLE_BOUNCE")) == 250
