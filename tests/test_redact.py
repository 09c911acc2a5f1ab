"""Error text for items and logs: addresses out, at most MAX_ERROR_BYTES."""

import pytest

from handlers.redact import MAX_ERROR_BYTES, clip, describe, redact, where


@pytest.mark.parametrize("text, expected", [
    ("bounced: bob@example.com", "bounced: <address>"),
    ("KeyError: 'Bob.Smith+tag@mail.example.co.jp'", "KeyError: '<address>'"),
    ("<alice@example.com>, (carol@x.test); dave@y", "<<address>>, (<address>); <address>"),
    ('{"email": "e@example.com"}', '{"email": "<address>"}'),
    ("SendGrid 429: too many requests (retry after 3 s)", "SendGrid 429: too many requests (retry after 3 s)"),
])
def test_addresses_are_replaced_and_nothing_else(text, expected):
    assert redact(text) == expected


def test_clip_cuts_on_a_character_within_the_byte_limit():
    text = "é" * MAX_ERROR_BYTES  # two bytes each
    clipped = clip(text)
    assert len(clipped.encode()) <= MAX_ERROR_BYTES and clipped.endswith("…") and clipped.startswith("éé")
    assert clip("short") == "short"
    assert clip("lone \ud800 surrogate") == "lone ? surrogate"


def test_describe_names_the_type_and_a_short_message_without_addresses():
    assert describe(ConnectionError("suppression list unreachable")) == "ConnectionError: suppression list unreachable"
    assert describe(KeyError("bob@example.com")) == "KeyError: '<address>'"
    assert describe(RecursionError()) == "RecursionError"
    assert len(describe(ValueError("x" * 10_000)).encode()) <= MAX_ERROR_BYTES

    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert describe(Unprintable()) == "Unprintable: (message unprintable)"


def test_where_names_the_innermost_frame():
    def fails():
        raise ValueError("x")

    try:
        fails()
    except ValueError as exc:
        assert where(exc).startswith("test_redact.py:") and where(exc).endswith(" in fails")
    assert where(ValueError("never raised")) is None
