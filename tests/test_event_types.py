"""The event-type plugins for the rest of SendGrid's Event Webhook."""

import copy

import pytest

from handlers import manager
from handlers.reconcile import reconcile
from tests.support import sample

EVENT_TYPES = ("processed", "deferred", "delivered", "open", "click", "spamreport", "unsubscribe",
               "group_unsubscribe", "group_resubscribe")
UA = "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)"

# event type -> the fields its plugin adds to the record (from tests/events/every_type.json)
EXPECTED = {
    "processed": {},
    "deferred": {"attempt": "5", "response": "400 try again later"},
    "delivered": {"response": "250 OK"},
    "open": {"userAgent": UA, "ip": "255.255.255.255", "machineOpen": False},
    "click": {"url": "http://www.sendgrid.com/", "urlOffset": {"index": 0, "type": "html"},
              "userAgent": UA, "ip": "255.255.255.255"},
    "spamreport": {},
    "unsubscribe": {},
    "group_unsubscribe": {"asmGroupId": 10},
    "group_resubscribe": {"asmGroupId": 10},
}
CORE_KEYS = {"eventId", "sgEventId", "fullMessageId", "messageId", "event", "email", "timestamp", "matched",
             "fromEmail", "fromName", "toEmail", "toName", "subject", "mailId", "sgEvent"}


def run(names, events):
    plugins = manager.build(names)
    return reconcile(events, plugins.event_types, lambda ids: {})


def test_each_plugin_registers_exactly_its_own_type():
    for name in EVENT_TYPES:
        assert set(manager.build(name).event_types) == {name}


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_record_gets_the_type_specific_fields(name):
    event = next(e for e in sample("every_type.json") if e["event"] == name)
    [record] = run(name, [event]).records
    assert {k: v for k, v in record.items() if k not in CORE_KEYS} == EXPECTED[name]
    assert record["sgEvent"] == event


def test_all_types_together_accept_a_batch_of_every_type_in_order():
    events = sample("every_type.json") + [sample("bounce.json"), sample("dropped.json")]
    outcome = run(EVENT_TYPES + ("bounce", "dropped"), events)
    assert [r["event"] for r in outcome.records] == [e["event"] for e in events]
    assert outcome.rejects == [] and not outcome.ignored


@pytest.mark.parametrize("name", [n for n in EVENT_TYPES if EXPECTED[n]])
def test_missing_optional_fields_become_none_not_a_reject(name):
    bare = {"event": name, "email": "a@example.com", "timestamp": 1764400000, "sg_event_id": "x"}
    outcome = run(name, [bare])
    assert outcome.rejects == []
    [record] = outcome.records
    assert all(record[key] is None for key in EXPECTED[name])


def test_unknown_extra_fields_are_kept_in_the_record():
    event = copy.deepcopy(sample("every_type.json")[2])  # delivered
    event.update({"tls": 1, "marketing_campaign_id": 12345, "newFieldFromSendGrid": {"a": [1, 2]}})
    [record] = run("delivered", [event]).records
    assert record["sgEvent"]["newFieldFromSendGrid"] == {"a": [1, 2]}
    assert record["sgEvent"]["tls"] == 1 and record["response"] == "250 OK"


def test_unknown_and_not_enabled_types_are_ignored_and_counted_never_an_error():
    events = sample("every_type.json") + [
        {"event": "account_status_change", "email": "a@example.com", "timestamp": 1764400000},
        {"event": "some_future_event", "email": "a@example.com", "timestamp": 1764400000},
    ]
    outcome = run("delivered,open", events)
    assert [r["event"] for r in outcome.records] == ["delivered", "open"]
    assert outcome.rejects == []
    assert outcome.ignored == {"processed": 1, "deferred": 1, "click": 1, "spamreport": 1, "unsubscribe": 1,
                               "group_unsubscribe": 1, "group_resubscribe": 1,
                               "account_status_change": 1, "some_future_event": 1}
