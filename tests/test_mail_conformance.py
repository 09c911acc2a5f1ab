"""Our Mail Send payloads equal what SendGrid's official library builds.

The sender posts the v3 JSON itself (handlers/sendgrid_api.py: urllib3, for
split timeouts and kept-alive connections); the ``sendgrid`` package's mail
helpers are the reference for the payload's shape.
"""

import json

import pytest
from sendgrid.helpers.mail import (Bcc, Category, Cc, Content, CustomArg, From, Mail, Personalization,
                                   ReplyTo, To)

from handlers.mail import parse

ITEMS = {
    "seed": {
        "id": "seed-1",
        "from": json.dumps({"email": "sender@example.com", "name": "Sender"}),
        "to": json.dumps([{"email": "a@example.com", "name": "A"}, {"email": "b@example.com"}]),
        "subject": "Test mail",
        "content": "Hello.",
    },
    "rich": {
        "id": "rich-1",
        "from": {"email": "sender@example.com", "name": "Sender"},
        "to": [{"email": "a@example.com", "name": "A"}],
        "cc": [{"email": "c@example.com", "name": "C"}],
        "bcc": [{"email": "d@example.com"}],
        "replyTo": {"email": "help@example.com", "name": "Help"},
        "subject": "Rich",
        "content": "Plain text.",
        "html": "<p>HTML.</p>",
        "categories": ["newsletter", "jp"],
        "customArgs": {"campaign": "winter"},
    },
    "template": {
        "id": "tpl-1",
        "from": {"email": "sender@example.com"},
        "to": [{"email": "a@example.com"}],
        "templateId": "d-0123456789abcdef0123456789abcdef",
        "templateData": {"name": "A", "items": [1, 2]},
    },
}


def reference(item: dict, stack: str) -> dict:
    """The same mail built with the official helpers."""
    def decoded(name):
        value = item.get(name)
        return json.loads(value) if isinstance(value, str) else value

    sender = decoded("from")
    mail = Mail()
    mail.from_email = From(sender["email"], sender.get("name"))
    personalization = Personalization()
    for a in decoded("to"):
        personalization.add_to(To(a["email"], a.get("name")))
    for a in decoded("cc") or []:
        personalization.add_cc(Cc(a["email"], a.get("name")))
    for a in decoded("bcc") or []:
        personalization.add_bcc(Bcc(a["email"], a.get("name")))
    if "templateData" in item:
        personalization.dynamic_template_data = item["templateData"]
    mail.add_personalization(personalization)
    if "subject" in item:
        mail.subject = item["subject"]
    if "replyTo" in item:
        mail.reply_to = ReplyTo(item["replyTo"]["email"], item["replyTo"].get("name"))
    for mime, key in (("text/plain", "content"), ("text/html", "html")):
        if key in item:
            mail.add_content(Content(mime, item[key]))
    if "templateId" in item:
        mail.template_id = item["templateId"]
    for category in item.get("categories", []):
        mail.add_category(Category(category))
    for key, value in {**item.get("customArgs", {}), "mailId": item["id"], "stack": stack}.items():
        mail.add_custom_arg(CustomArg(key, value))
    return mail.get()


@pytest.mark.parametrize("name", sorted(ITEMS))
def test_payload_matches_the_official_library(name):
    item = ITEMS[name]
    ours, theirs = parse(item).payload("prod"), reference(item, "prod")
    # Category order carries no meaning (the helper prepends each one).
    for payload in (ours, theirs):
        payload.get("categories", []).sort()
    assert ours == theirs
