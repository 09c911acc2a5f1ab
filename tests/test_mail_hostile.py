"""Whatever a mail sender item holds, ``parse`` answers a Mail SendGrid can take, or ``InvalidMail``.

Items are drawn in DynamoDB's wire format, as a stream record carries them:
any type in any attribute the mail reads, JSON strings of any shape, over a
valid seed item so that some of them pass.
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import dynamo
from handlers.mail import InvalidMail, parse
from tests.support import seed_item

ATTRIBUTES = ("from", "to", "cc", "bcc", "replyTo", "subject", "content", "html", "templateId",
              "templateData", "categories", "customArgs")
# Keys without '@', so that an '@' in a refusal can only be a quoted value.
KEYS = st.text(st.characters(exclude_characters="@"), max_size=8)
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["a@example.com", "x@y", "@", "not an address"]))

WIRE_SCALARS = st.one_of(
    TEXT.map(lambda t: {"S": t}),
    st.integers(-10**38 + 1, 10**38 - 1).map(lambda n: {"N": str(n)}),
    st.sampled_from(["1E+125", "-1E-130", "0.5", "9.99E+125"]).map(lambda n: {"N": n}),
    st.binary(max_size=8).map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(TEXT, min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
    st.sets(st.integers(-99, 99), min_size=1, max_size=3).map(lambda s: {"NS": sorted(map(str, s))}),
    st.sets(st.binary(max_size=4), min_size=1, max_size=3).map(lambda s: {"BS": sorted(s)}),
)
WIRE = st.recursive(WIRE_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda v: {"L": v}),
    st.dictionaries(KEYS, inner, max_size=3).map(lambda v: {"M": v}),
), max_leaves=12)

JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=12,
)
JSON_TEXT = st.one_of(
    JSON.map(json.dumps),  # NaN and Infinity included: json.dumps writes them
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.sampled_from(['{"email": "a@example.com"', "[1, 2", '"\\ud800"', "1" * 5000]),
).map(lambda t: {"S": t})

VALID = dynamo.serialize({**seed_item("m1", [("alice@example.com", "Alice")]), "templateId": "d-1"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(ATTRIBUTES), st.one_of(WIRE, JSON_TEXT), max_size=4))
def test_any_item_parses_to_a_sendable_mail_or_a_refusal_that_quotes_no_address(changes):
    image = {**VALID, **changes}
    try:
        mail = parse(dynamo.deserialize(image))
    except InvalidMail as refused:
        assert "@" not in str(refused)
        return
    body = json.dumps(mail.payload("dev"), allow_nan=False)
    body.encode("utf-8")
    dynamo.serialize({"to": [a.to_json() for a in mail.to]})  # what the sent log stores
