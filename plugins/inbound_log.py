"""Plugin ``inbound_log``: an example ``inbound_mail`` hook, one JSON log line per stored inbound mail.

It parses the stored form (``mail.form()``) and logs what SendGrid says about
the mail, without addresses or content: the object key, the form's fields,
the number of recipients and attachments, whether it came raw (``send_raw``:
the whole MIME message in the ``email`` field), SPF and the spam score. Copy
it to act on inbound mail: open a ticket, forward it, put a row in a table.
"""

from __future__ import annotations

import json
import logging

from handlers.hookspecs import hookimpl

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)


def summary(mail) -> dict:
    form = mail.form()
    try:
        envelope = json.loads(form.get("envelope") or "{}")
    except ValueError:
        envelope = {}
    recipients = envelope.get("to") if isinstance(envelope, dict) else None
    return {
        "message": "inbound mail",
        "key": mail.key,
        "bytes": len(mail.body),
        "signed": mail.signed,
        "fields": sorted(form),
        "recipients": len(recipients) if isinstance(recipients, list) else None,
        "attachments": int(form.get("attachments") or 0),  # a count: the inbound function checked it
        "raw": "email" in form,
        "spf": form.get("SPF"),
        "spamScore": form.get("spam_score"),
    }


@hookimpl
def inbound_mail(mail):
    log.info(json.dumps(summary(mail)))
