"""A mail sender item, checked, and the SendGrid v3 Mail Send payload it makes.

Item format. The seed's attributes: ``id``, ``from`` ``{"email", "name"}``,
``to`` ``[{"email", "name"}, ...]``, ``subject``, ``content`` (plain text).
Optional: ``html``, ``cc`` / ``bcc`` (lists like ``to``), ``replyTo`` (like
``from``), ``templateId`` (a SendGrid template; ``subject`` and content may
then be omitted), ``templateData`` (an object: the dynamic template data),
``categories`` (list of strings), ``customArgs`` (object of strings; echoed
back in every webhook event). Structured values may be JSON strings, as the
seed wrote them, or native DynamoDB maps / lists. Other attributes are ignored.

Everything SendGrid would refuse for the item's own sake is refused here, with
an ``InvalidMail`` message that names the attribute, so the item is marked
``rejected`` without a round trip and the user can see which field is wrong.
A message never quotes a value that may hold an address. Structured values
must be plain JSON: a set, a binary, a non-finite number, a string that is not
Unicode or nesting deeper than ``MAX_DEPTH`` is refused (naming the place);
``parse`` raises nothing but ``InvalidMail``.
"""

from __future__ import annotations

import json
import math
from typing import NamedTuple

# SendGrid's limits (Mail Send API reference).
MAX_RECIPIENTS = 1000          # to + cc + bcc of one personalization
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255
MAX_CUSTOM_ARGS_BYTES = 10_000
# Nesting a structured value may have: what DynamoDB allows a native map or list.
MAX_DEPTH = 32
# custom_args the sender adds itself, for correlating webhook events.
CORRELATION_ARGS = ("mailId", "stack")


class InvalidMail(ValueError):
    """The item cannot become a mail; the message names the field."""


class Address(NamedTuple):
    email: str
    name: str | None = None

    def to_json(self) -> dict:
        return {"email": self.email, "name": self.name} if self.name else {"email": self.email}


class Mail:
    """A checked mail (``parse``): its fields, the recipients ``before_send`` hooks dropped and their veto.

    A plain class, not a dataclass: see handlers/env.py's Var.
    """

    def __init__(self, id: str, sender: Address, to: list[Address], subject: str | None = None,
                 content: str | None = None, html: str | None = None, cc: list[Address] | None = None,
                 bcc: list[Address] | None = None, reply_to: Address | None = None, template_id: str | None = None,
                 template_data: dict | None = None, categories: list[str] | None = None,
                 custom_args: dict[str, str] | None = None, dropped: dict[str, str] | None = None,
                 vetoed: str | None = None):
        self.id, self.sender, self.to, self.cc, self.bcc = id, sender, to, cc or [], bcc or []
        self.subject, self.content, self.html, self.reply_to = subject, content, html, reply_to
        self.template_id, self.template_data = template_id, template_data
        self.categories: list[str] = categories or []
        self.custom_args: dict[str, str] = custom_args or {}
        self.dropped: dict[str, str] = dropped or {}
        """Address (lower case) -> why a ``before_send`` hook dropped it."""
        self.vetoed = vetoed

    def kept(self, addresses: list[Address]) -> list[Address]:
        """``addresses`` without the ones a ``before_send`` hook dropped."""
        return [a for a in addresses if a.email.lower() not in self.dropped]

    @property
    def recipients(self) -> list[Address]:
        """Every recipient still to be sent to: to, cc and bcc."""
        return self.kept(self.to + self.cc + self.bcc)

    def drop(self, address: str, reason: str) -> None:
        """Remove a recipient from to, cc and bcc (``before_send`` hooks); ``reason`` goes on the item."""
        self.dropped[str(address).lower()] = str(reason)

    def veto(self, reason: str) -> None:
        """Stop the whole mail (``before_send`` hooks); ``reason`` goes on the item."""
        self.vetoed = reason

    def refusal(self) -> str | None:
        """Why this mail must not be sent after the hooks ran, or None."""
        if self.vetoed:
            return f"vetoed: {self.vetoed}"
        if not self.recipients:
            return "every recipient was dropped"
        if not self.kept(self.to):
            return "no 'to' recipient left after drops"
        return None

    def payload(self, stack: str | None = None) -> dict:
        """The SendGrid v3 Mail Send request body.

        ``custom_args`` carry the item id as ``mailId`` (and the stack name as
        ``stack``), so a webhook event can be traced to its item even without
        ``sg_message_id``.
        """
        personalization = {"to": [a.to_json() for a in self.kept(self.to)]}
        for kind, addresses in (("cc", self.kept(self.cc)), ("bcc", self.kept(self.bcc))):
            if addresses:
                personalization[kind] = [a.to_json() for a in addresses]
        if self.template_data is not None:
            personalization["dynamic_template_data"] = self.template_data
        body = {"personalizations": [personalization], "from": self.sender.to_json()}
        if self.reply_to:
            body["reply_to"] = self.reply_to.to_json()
        if self.subject:
            body["subject"] = self.subject
        # SendGrid wants text/plain before text/html.
        content = [{"type": t, "value": v} for t, v in (("text/plain", self.content), ("text/html", self.html)) if v]
        if content:
            body["content"] = content
        if self.template_id:
            body["template_id"] = self.template_id
        if self.categories:
            body["categories"] = self.categories
        body["custom_args"] = {**self.custom_args, "mailId": self.id, **({"stack": stack} if stack else {})}
        return body


def _decoded(item: dict, name: str):
    """A structured attribute (a JSON string or a native value), checked to be plain JSON."""
    value = item.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise InvalidMail(f"'{name}' is nested deeper than {MAX_DEPTH} levels") from None
        except ValueError:
            raise InvalidMail(f"'{name}' is not valid JSON") from None
    _check_plain(value, name)
    return value


# What a structured value may hold besides maps and lists; anything else is named in the refusal.
_KINDS = {set: "a set", frozenset: "a set", bytes: "a binary value", bytearray: "a binary value",
          "Binary": "a binary value"}


def _check_plain(value, name: str) -> None:
    """``InvalidMail`` unless ``value`` is JSON SendGrid takes: maps (string keys), lists, strings,
    finite numbers, booleans, null; maps and lists at most ``MAX_DEPTH`` deep. Iterative: any
    depth is safe."""
    pending = [(value, name, 1)]
    while pending:
        node, where, depth = pending.pop()
        if depth > MAX_DEPTH and isinstance(node, (dict, list)):
            raise InvalidMail(f"'{name}' is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            if not all(isinstance(key, str) for key in node):
                raise InvalidMail(f"'{where}' has a key that is not a string")
            pending += [(v, f"{where}.{k}", depth + 1) for k, v in node.items()]
        elif isinstance(node, list):
            pending += [(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node)]
        elif isinstance(node, str):
            _check_unicode(node, where)
        elif isinstance(node, float) and not math.isfinite(node):
            raise InvalidMail(f"'{where}' is not a finite number")
        elif node is not None and not isinstance(node, (bool, int, float)):
            kind = _KINDS.get(type(node)) or _KINDS.get(type(node).__name__) or type(node).__name__
            raise InvalidMail(f"'{where}' is {kind}: only strings, numbers, booleans, null, lists "
                              "and maps can be sent")


def _check_unicode(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMail(f"'{where}' is not valid Unicode (a lone surrogate)") from None


def _address(value, where: str) -> Address:
    if not isinstance(value, dict):
        raise InvalidMail(f"'{where}' must be an object with 'email' (and optionally 'name')")
    email = value.get("email")
    local, _, domain = email.rpartition("@") if isinstance(email, str) else ("", "", "")
    if not local or not domain or any(c.isspace() for c in email):
        raise InvalidMail(f"'{where}.email' is not an e-mail address")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidMail(f"'{where}.name' must be a string")
    return Address(email, name or None)


def _addresses(item: dict, name: str, required: bool) -> list[Address]:
    value = _decoded(item, name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise InvalidMail(f"'{name}' must be a {'non-empty ' if required else ''}list of {{'email', 'name'}}")
    return [_address(a, f"{name}[{i}]") for i, a in enumerate(value)]


def _text(item: dict, name: str, required: bool) -> str | None:
    value = item.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidMail(f"'{name}' is missing or not a non-empty string")
    _check_unicode(value, name)
    return value


def _check_unique(lists: dict[str, list[Address]]) -> None:
    """SendGrid refuses an address that appears twice across to, cc and bcc."""
    seen: set[str] = set()
    for name, addresses in lists.items():
        for i, address in enumerate(addresses):
            if address.email.lower() in seen:
                raise InvalidMail(f"'{name}[{i}].email' repeats an earlier address: "
                                  "an address may appear once across to, cc and bcc")
            seen.add(address.email.lower())
    total = sum(len(a) for a in lists.values())
    if total > MAX_RECIPIENTS:
        raise InvalidMail(f"'to', 'cc' and 'bcc' have {total} recipients; SendGrid takes at most {MAX_RECIPIENTS}")


def _categories(item: dict) -> list[str]:
    value = _decoded(item, "categories")
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CATEGORIES:
        raise InvalidMail(f"'categories' must be a list of at most {MAX_CATEGORIES} strings")
    for i, category in enumerate(value):
        if not isinstance(category, str) or not category or len(category) > MAX_CATEGORY_LENGTH:
            raise InvalidMail(f"'categories[{i}]' must be a non-empty string of at most "
                              f"{MAX_CATEGORY_LENGTH} characters")
    return value


def _custom_args(item: dict) -> dict[str, str]:
    value = _decoded(item, "customArgs")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMail("'customArgs' must be an object of strings")
    for key, arg in value.items():
        if key in CORRELATION_ARGS:
            raise InvalidMail(f"'customArgs.{key}' is reserved: the sender sets it")
        if not isinstance(arg, str):
            raise InvalidMail(f"'customArgs.{key}' must be a string")
    if len(json.dumps(value).encode()) > MAX_CUSTOM_ARGS_BYTES:
        raise InvalidMail(f"'customArgs' is larger than SendGrid's {MAX_CUSTOM_ARGS_BYTES} bytes")
    return value


def parse(item: dict) -> Mail:
    """Check a mail sender item and turn it into a ``Mail``; ``InvalidMail`` otherwise."""
    if "from" not in item:
        raise InvalidMail("'from' is missing")
    sender = _address(_decoded(item, "from"), "from")
    lists = {name: _addresses(item, name, required=name == "to") for name in ("to", "cc", "bcc")}
    _check_unique(lists)
    reply_to = _decoded(item, "replyTo")
    template_id = _text(item, "templateId", required=False)
    template_data = _decoded(item, "templateData")
    if template_data is not None and not isinstance(template_data, dict):
        raise InvalidMail("'templateData' must be an object")
    if template_data is not None and not template_id:
        raise InvalidMail("'templateData' needs 'templateId'")
    content = _text(item, "content", required=False)
    html = _text(item, "html", required=False)
    if not template_id and not (content or html):
        raise InvalidMail("'content' (or 'html') is missing: a mail without 'templateId' needs a body")
    return Mail(
        id=_text(item, "id", required=True),
        sender=sender,
        to=lists["to"],
        cc=lists["cc"],
        bcc=lists["bcc"],
        subject=_text(item, "subject", required=not template_id),
        content=content,
        html=html,
        reply_to=_address(reply_to, "replyTo") if reply_to is not None else None,
        template_id=template_id,
        template_data=template_data,
        categories=_categories(item),
        custom_args=_custom_args(item),
    )
