"""The functions' metrics lines (``handlers.metrics``), from real handler runs, checked against the
Embedded Metric Format specification (``tests.emf``) and against what each run did."""

from __future__ import annotations

import json

import pytest

from devstack.sendgrid import Scripted
from handlers import metrics, sender, sendgrid_api
from tests import emf
from tests.sender_support import alice, items
from tests.support import inserted
from tests.test_inbound import handle as inbound, parsed_mail, request, s3  # noqa: F401  (s3: a fixture)
from tests.webhook_support import bounce, endpoint  # noqa: F401  (endpoint: a fixture)

STACK = "prod"


@pytest.fixture(autouse=True)
def stack_name(monkeypatch):
    monkeypatch.setenv("SENDGRID_EVENTS_STACK", STACK)
    monkeypatch.setattr(sendgrid_api, "BASE_DELAY", 0.01)


def emitted(capsys, recorder: metrics.Recorder) -> list[dict]:
    """The lines written since the last call: each a valid EMF document of ``recorder``'s metrics."""
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    documents = []
    for line in lines:
        assert emf.problems(line) == [], line
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.NAMESPACE
        assert directive["Dimensions"] == [[metrics.DIMENSION]] and document[metrics.DIMENSION] == STACK
        declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
        assert declared.items() <= {n: m.unit for n, m in recorder.metrics.items()}.items()
        assert {n for n, m in recorder.metrics.items() if m.unit == metrics.COUNT} <= set(declared)
        documents.append(document)
    return documents


def test_the_webhook_writes_one_line_per_post_with_its_counts_and_refusals(endpoint, capsys):  # noqa: F811
    hook = endpoint()
    batch = [bounce(1), bounce(2), {**bounce(3), "event": "open"}, {**bounce(4), "huge": 10 ** 40}]
    answers = [hook.post(batch), hook.post(batch), hook.post(batch, sign=False), hook.post(body=b"{}"),
               hook.post(body=b"[" + b" " * (1024 * 1024) + b"]")]
    assert [status for status, _ in answers] == [200, 200, 403, 400, 413]
    first, again, forbidden, bad, large = emitted(capsys, metrics.WEBHOOK)
    for (_, counts), line in ((answers[0], first), (answers[1], again)):
        assert {metrics.WEBHOOK_COUNTS[k]: v for k, v in counts.items()} == \
            {name: line[name] for name in metrics.WEBHOOK_COUNTS.values()}
    assert (first["EventsAccepted"], first["EventsIgnored"], first["EventsRejected"]) == (2, 1, 1)
    assert first["EventsOrphaned"] == 2  # no sent-log rows: not sent by this stack
    assert first["acceptedTypes"] == {"bounce": 2} and again["acceptedTypes"] == {}
    assert (again["EventsAccepted"], again["EventsDuplicate"]) == (0, 2)
    for line, status in ((forbidden, 403), (bad, 400), (large, 413)):
        assert line[metrics.webhook_refused(status)] == 1 and line["EventsReceived"] == 0
        assert sum(line[metrics.webhook_refused(s)] for s in metrics.REFUSED_STATUSES) == 1
    for line in (first, again, forbidden, bad, large):
        assert line["WebhookPosts"] == 1 and len(line["WebhookDuration"]) == 1
    assert sum(first[metrics.webhook_refused(s)] for s in metrics.REFUSED_STATUSES) == 0


def test_a_webhook_post_that_is_not_stored_is_counted_as_a_503(endpoint, capsys, monkeypatch):  # noqa: F811
    hook = endpoint()
    monkeypatch.setenv("TABLE_SENT_LOG", "no-such-table")
    assert hook.post([bounce(1)])[0] == 503
    [line] = emitted(capsys, metrics.WEBHOOK)
    assert line["WebhookRefused503"] == 1 and line["EventsAccepted"] == 0


def test_the_sender_writes_one_line_per_batch_with_each_outcome(stack, sendgrid, capsys):
    plugins = stack()
    sendgrid.script.append(Scripted(429, headers={"Retry-After": "0"}))
    first = sender.handle(inserted(alice("m1"), alice("m2", to="not json")), plugins)
    assert first == {"batchItemFailures": []}
    sendgrid.script.extend([Scripted(500)] * sendgrid_api.ATTEMPTS)
    failed = sender.handle(inserted(alice("m3")), plugins)
    assert len(failed["batchItemFailures"]) == 1
    assert {i: items()[i]["status"] for i in ("m1", "m2", "m3")} == {"m1": "sent", "m2": "rejected", "m3": "failed"}
    one, two = emitted(capsys, metrics.SENDER)
    assert (one["MailsSent"], one["MailsRejected"], one["MailsFailed"], one["SendGridThrottled"]) == (1, 1, 0, 1)
    assert (two["MailsSent"], two["MailsRejected"], two["MailsFailed"], two["SendGridThrottled"]) == (0, 0, 1, 0)
    assert len(one["SendDuration"]) == 2 and len(two["SendDuration"]) == 1
    assert one["RecipientsSuppressed"] == two["RecipientsSuppressed"] == 0
    assert "alice@example.com" not in json.dumps([one, two])


def test_the_inbound_function_counts_stored_and_refused_posts(s3, capsys):  # noqa: F811
    body, content_type = parsed_mail()
    assert inbound(request(body, content_type))["statusCode"] == 200
    assert inbound(request(body, content_type, signed=False))["statusCode"] == 403
    stored, refused = emitted(capsys, metrics.INBOUND)
    assert (stored["InboundStored"], stored["InboundRefused"], stored["InboundFailed"]) == (1, 0, 0)
    assert (refused["InboundStored"], refused["InboundRefused"], refused["InboundFailed"]) == (0, 1, 0)


def test_a_name_no_function_declares_cannot_be_recorded():
    with pytest.raises(KeyError, match="emits no Count metric 'MailsLost'"):
        metrics.SENDER.add("MailsLost")
    with pytest.raises(KeyError, match="emits no Milliseconds metric 'MailsSent'"):
        metrics.SENDER.observe("MailsSent", 1.0)


@pytest.mark.parametrize("line, problem", [
    ('x {"_aws": {}}', "not one JSON value"),
    ('{"a": 1}', "no _aws metadata"),
    ('{"_aws": {"Timestamp": "now", "CloudWatchMetrics": []}}', "Timestamp"),
    ('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [["Stack"]], '
     '"Metrics": [{"Name": "A", "Unit": "Count"}]}]}, "A": 1}', "dimension 'Stack'"),
    ('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], '
     '"Metrics": [{"Name": "A", "Unit": "Things"}]}]}, "A": 1}', "not a CloudWatch unit"),
    ('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n", "Dimensions": [], '
     '"Metrics": [{"Name": "A"}]}]}, "A": "1"}', "not a number"),
])
def test_the_checker_finds_what_breaks_the_specification(line, problem):
    assert any(problem in p for p in emf.problems(line)), emf.problems(line)
