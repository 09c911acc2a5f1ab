"""Figure: verifying one Signed Event Webhook request with a 768 KB body (SendGrid's largest post).

Project: ``handlers.signature.verify`` (``cryptography``, the exact bytes).
Baselines, alternated with it:

- the ``sendgrid`` package's ``EventWebhook.verify_signature`` (also
  ``cryptography``, but it takes a ``str`` body and encodes it again);
- ``starkbank-ecdsa``, the pure-Python ECDSA the ``sendgrid`` helper used
  before 6.12 (and what a copy of an older sample would run).

Also shown: SHA-256 over the same bytes, the floor any verification pays.
"""

from __future__ import annotations

import base64
import hashlib
import time

from bench.common import Row, alternate, median, ms
from bench.webhook_batch import Batch
from devstack.eventwebhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookKey, batch_body
from handlers import signature

BODY_BYTES = 768 * 1024


def body_of(size: int) -> bytes:
    """A webhook body (compact JSON array of realistic events, CRLF) of at most ``size`` bytes."""
    events = Batch(max(4, size // 250)).events("sig")
    lo, hi = 1, len(events)
    while lo < hi:  # the most events that fit
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if len(batch_body(events[:mid])) <= size else (lo, mid - 1)
    return batch_body(events[:lo])


def run(quick: bool = False) -> list[Row]:
    from ellipticcurve import Ecdsa, PublicKey, Signature
    from sendgrid.helpers.eventwebhook import EventWebhook

    body = body_of(8 * 1024 if quick else BODY_BYTES)
    reps = 1 if quick else 15
    key = WebhookKey()
    headers = key.headers(body)
    config = signature.parse_settings(key.public_key_b64, "0", None)
    helper = EventWebhook(key.public_key_b64)
    stark_key = PublicKey.fromDer(base64.b64decode(key.public_key_b64))
    stark_signature = Signature.fromBase64(headers[SIGNATURE_HEADER])
    text = body.decode("utf-8")

    def project(_):
        assert signature.verify(body, headers, config, time.time())

    def sendgrid_helper(_):
        assert helper.verify_signature(text, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])

    def starkbank(_):
        assert Ecdsa.verify(headers[TIMESTAMP_HEADER] + text, stark_signature, stark_key)

    def sha256(_):
        hashlib.sha256(headers[TIMESTAMP_HEADER].encode() + body).digest()

    times = alternate({"project": project, "sendgrid": sendgrid_helper, "starkbank": starkbank,
                       "sha256": sha256}, reps)
    p, sg, sb, floor = (median(times[k]) for k in ("project", "sendgrid", "starkbank", "sha256"))
    size = f"{len(body) / 1024:,.0f} KB body"
    return [
        Row("signature", f"{size}, vs sendgrid EventWebhook", sg / p, ms(p), f"{ms(sg)} (sendgrid 6.12 helper)",
            f"SHA-256 of the body alone: {ms(floor)}; median of {reps}"),
        Row("signature", f"{size}, vs starkbank-ecdsa", sb / p, ms(p), f"{ms(sb)} (pure-Python ECDSA)",
            f"median of {reps}"),
    ]


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
