"""A mail sender item -> Mail -> Mail Send payload: the checks and the richer format."""

import json

import pytest

from devstack.sendgrid import problems
from handlers.mail import MAX_DEPTH, MAX_RECIPIENTS, InvalidMail, parse
from tests.support import seed_item


def rich_item(**changes):
    item = {
        "id": "r1",
        "from": {"email": "news@example.com", "name": "News"},
        "to": [{"email": "alice@example.com", "name": "Alice"}],
        "cc": json.dumps([{"email": "carol@example.com"}]),
        "bcc": [{"email": "bob@example.com", "name": "Bob"}],
        "replyTo": {"email": "help@example.com"},
        "subject": "Rich",
        "content": "plain body",
        "html": "<p>html body</p>",
        "categories": ["news", "weekly"],
        "customArgs": {"campaign": "c-7"},
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def test_seed_item_makes_the_seed_payload_with_the_item_id_in_custom_args():
    payload = parse(seed_item("m1", [("alice@example.com", "Alice")])).payload("dev")
    assert payload == {
        "personalizations": [{"to": [{"email": "alice@example.com", "name": "Alice"}]}],
        "from": {"email": "sender@example.com", "name": "Sender"},
        "subject": "Test mail",
        "content": [{"type": "text/plain", "value": "Hello from sendgrid-events."}],
        "custom_args": {"mailId": "m1", "stack": "dev"},
    }
    assert problems(payload) == []


def test_rich_item_carries_every_optional_field_and_passes_sendgrids_checks():
    payload = parse(rich_item()).payload()
    assert payload["personalizations"] == [{
        "to": [{"email": "alice@example.com", "name": "Alice"}],
        "cc": [{"email": "carol@example.com"}],
        "bcc": [{"email": "bob@example.com", "name": "Bob"}],
    }]
    assert payload["reply_to"] == {"email": "help@example.com"}
    assert payload["content"] == [{"type": "text/plain", "value": "plain body"},
                                  {"type": "text/html", "value": "<p>html body</p>"}]
    assert payload["categories"] == ["news", "weekly"]
    assert payload["custom_args"] == {"campaign": "c-7", "mailId": "r1"}
    assert problems(payload) == []


def test_template_mail_needs_no_subject_or_content():
    item = rich_item(subject=None, content=None, html=None, templateId="d-123",
                     templateData=json.dumps({"name": "Alice", "items": [1, 2]}))
    payload = parse(item).payload()
    assert payload["template_id"] == "d-123"
    assert payload["personalizations"][0]["dynamic_template_data"] == {"name": "Alice", "items": [1, 2]}
    assert "subject" not in payload and "content" not in payload
    assert problems(payload) == []


def test_drops_apply_to_to_cc_and_bcc_and_a_veto_or_an_empty_to_refuses():
    mail = parse(rich_item(to=[{"email": "alice@example.com"}, {"email": "dave@example.com"}]))
    mail.drop("CAROL@example.com", "bounced")
    mail.drop("bob@example.com", "unsubscribed")
    mail.drop("dave@example.com", "spam report")
    personalization = mail.payload()["personalizations"][0]
    assert personalization == {"to": [{"email": "alice@example.com"}]}
    assert [a.email for a in mail.recipients] == ["alice@example.com"]
    assert mail.refusal() is None

    mail.drop("alice@example.com", "bounced")
    assert mail.refusal() == "every recipient was dropped"

    only_cc_left = parse(rich_item())
    only_cc_left.drop("alice@example.com", "bounced")
    assert only_cc_left.refusal() == "no 'to' recipient left after drops"

    vetoed = parse(rich_item())
    vetoed.veto("sender is on hold")
    assert vetoed.refusal() == "vetoed: sender is on hold"


@pytest.mark.parametrize("changes, field", [
    ({"from": None}, "'from' is missing"),
    ({"from": "{not json"}, "'from' is not valid JSON"),
    ({"from": {"name": "No address"}}, "'from.email'"),
    ({"to": None}, "'to' must be a non-empty list"),
    ({"to": []}, "'to' must be a non-empty list"),
    ({"to": "[{\"email\": \"a@example.com\"},"}, "'to' is not valid JSON"),
    ({"to": [{"email": "a@example.com"}, {"email": "not an address"}]}, "'to[1].email'"),
    ({"to": [{"email": "a@example.com", "name": 7}]}, "'to[0].name'"),
    ({"cc": {"email": "c@example.com"}}, "'cc' must be a list"),
    ({"bcc": [{"email": "alice@EXAMPLE.com"}]}, "'bcc[0].email' repeats"),
    ({"replyTo": ["help@example.com"]}, "'replyTo' must be an object"),
    ({"subject": None}, "'subject' is missing"),
    ({"subject": ""}, "'subject' is missing"),
    ({"content": None, "html": None}, "'content' (or 'html') is missing"),
    ({"html": 42}, "'html' is missing or not a non-empty string"),
    ({"templateData": {"a": 1}}, "'templateData' needs 'templateId'"),
    ({"templateId": "d-1", "templateData": "[1]"}, "'templateData' must be an object"),
    ({"categories": [f"c{i}" for i in range(11)]}, "'categories' must be a list of at most 10"),
    ({"categories": ["ok", ""]}, "'categories[1]'"),
    ({"customArgs": {"mailId": "forged"}}, "'customArgs.mailId' is reserved"),
    ({"customArgs": {"n": 1}}, "'customArgs.n' must be a string"),
    ({"customArgs": {"big": "x" * 10_001}}, "'customArgs' is larger"),
    ({"id": 7}, "'id' is missing or not a non-empty string"),
    ({"subject": 5}, "'subject' is missing or not a non-empty string"),
    ({"to": {"alice@example.com"}}, "'to' is a set"),
    ({"from": b"sender@example.com"}, "'from' is a binary value"),
    ({"replyTo": 3}, "'replyTo' must be an object"),
    ({"templateId": "d-1", "templateData": {"tags": {"a", "b"}}}, "'templateData.tags' is a set"),
    ({"templateId": "d-1", "templateData": {"logo": b"\x89PNG"}}, "'templateData.logo' is a binary value"),
    ({"templateId": "d-1", "templateData": '{"n": NaN}'}, "'templateData.n' is not a finite number"),
    ({"templateId": "d-1", "templateData": '{"s": "\\ud800"}'}, "'templateData.s' is not valid Unicode"),
    ({"templateId": "d-1", "templateData": {"list": [1, {"deep": [{1, 2}]}]}}, "'templateData.list[1].deep[0]' is a set"),
])
def test_malformed_item_is_refused_naming_the_field(changes, field):
    with pytest.raises(InvalidMail) as refused:
        parse(rich_item(**changes))
    assert field in str(refused.value)


def test_more_recipients_than_sendgrid_takes_is_refused():
    many = [{"email": f"user{i}@example.com"} for i in range(MAX_RECIPIENTS)]
    with pytest.raises(InvalidMail, match="1002 recipients; SendGrid takes at most 1000"):
        parse(rich_item(to=many))
    parse(rich_item(to=many[:MAX_RECIPIENTS - 2]))  # exactly 1000 with cc and bcc



def deep(depth: int, as_json: bool):
    """``depth`` lists, one inside the other, around a string (as JSON text, or native)."""
    if as_json:
        return "[" * depth + '"x"' + "]" * depth
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "native"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 20_000])
def test_nesting_deeper_than_dynamodb_allows_is_refused_whatever_the_depth(depth, as_json):
    """20,000 levels of JSON raised RecursionError (the item stayed 'sending'); 33 is refused already."""
    with pytest.raises(InvalidMail, match=f"'to' is nested deeper than {MAX_DEPTH} levels"):
        parse(rich_item(to=deep(depth, as_json)))
    inner = deep(depth - 1, as_json)
    data = f'{{"k": {inner}}}' if as_json else {"k": inner}
    with pytest.raises(InvalidMail, match=f"'templateData' is nested deeper than {MAX_DEPTH} levels"):
        parse(rich_item(templateId="d-1", templateData=data))


def test_nesting_up_to_the_limit_is_sent():
    data = {"k": deep(MAX_DEPTH - 1, as_json=False)}
    payload = parse(rich_item(templateId="d-1", templateData=data)).payload()
    assert payload["personalizations"][0]["dynamic_template_data"] == data


def test_a_refusal_never_quotes_an_address():
    with pytest.raises(InvalidMail) as refused:
        parse(rich_item(bcc=[{"email": "alice@EXAMPLE.com"}]))
    assert "@" not in str(refused.value) and "'bcc[0].email' repeats" in str(refused.value)
