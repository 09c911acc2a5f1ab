"""The mailId fallback: events SendGrid sent without a usable sg_message_id
are matched through the sender's ``mailId`` custom arg (a sent-log index)."""

from handlers import sender
from tests.support import inserted, scan, seed_item
from tests.webhook_support import Calls, bounce, endpoint  # noqa: F401  (fixture)


def sent_mail(stack_plugins, sendgrid, item_id, to):
    sender.handle(inserted(seed_item(item_id, to, subject=f"About {item_id}")), stack_plugins)
    return sendgrid.accepted[-1]


def test_event_without_sg_message_id_is_matched_by_mail_id(endpoint, sendgrid):
    hook = endpoint()
    accepted = sent_mail(hook.plugins, sendgrid, "m-1", [("a@example.com", "A"), ("gone@bounce.test", "Gone")])
    event = bounce(1, email="gone@bounce.test", mailId="m-1")
    del event["sg_message_id"]

    status, answer = hook.post([event])

    assert status == 200 and answer["orphans"] == 0
    [row] = scan("TABLE_BOUNCE")
    assert row["matched"] is True and row["messageId"] == accepted.message_id
    assert (row["toName"], row["subject"], row["mailId"]) == ("Gone", "About m-1", "m-1")


def test_unknown_sg_message_id_falls_back_to_mail_id(endpoint, sendgrid):
    hook = endpoint()
    sent_mail(hook.plugins, sendgrid, "m-2", [("gone@bounce.test", "Gone")])
    status, answer = hook.post([bounce(2, message="not-in-the-log", email="gone@bounce.test", mailId="m-2")])
    assert status == 200 and answer["orphans"] == 0
    assert scan("TABLE_BOUNCE")[0]["subject"] == "About m-2"


def test_unknown_mail_id_stays_an_orphan(endpoint):
    hook = endpoint()
    status, answer = hook.post([bounce(3, mailId="never-sent")])
    assert status == 200 and answer["orphans"] == 1
    assert scan("TABLE_BOUNCE")[0]["matched"] is False


def test_fallback_queries_are_bounded_per_batch(endpoint):
    from handlers.reconcile import MAX_MAIL_ID_LOOKUPS

    hook = endpoint()
    calls = Calls()
    events = [bounce(n, message=f"gone-{n}", mailId=f"mail-{n}") for n in range(MAX_MAIL_ID_LOOKUPS + 40)]
    status, answer = hook.post(events)
    assert status == 200 and answer["orphans"] == len(events)
    assert calls.made["Query"] == MAX_MAIL_ID_LOOKUPS


def test_matched_events_cost_no_query(endpoint, sendgrid):
    hook = endpoint()
    accepted = sent_mail(hook.plugins, sendgrid, "m-4", [("gone@bounce.test", "Gone")])
    calls = Calls()
    hook.post([bounce(4, message=accepted.message_id, email="gone@bounce.test", mailId="m-4")])
    assert calls.made["Query"] == 0
