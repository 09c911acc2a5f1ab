"""A mail sender item, checked, and the SendGrid v3 Mail Send payload it makes.

Item format (the seed's): ``id``, ``from`` ``{"email", "name"}``, ``to``
``[{"email", "name"}]`` (JSON strings as the seed wrote them, or a native
map / list), ``subject``, ``content`` (plain text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


class InvalidMail(ValueError):
    """The item cannot become a mail; the message names the field."""


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None

    def to_json(self) -> dict:
        return {"email": self.email, "name": self.name} if self.name else {"email": self.email}


@dataclass
class Mail:
    id: str
    sender: Address
    to: list[Address]
    subject: str
    content: str
    dropped: dict[str, str] = field(default_factory=dict)
    vetoed: str | None = None

    @property
    def recipients(self) -> list[Address]:
        return [a for a in self.to if a.email.lower() not in self.dropped]

    def drop(self, address: str, reason: str) -> None:
        """Remove a recipient (``before_send`` hooks); ``reason`` goes on the item."""
        self.dropped[address.lower()] = reason

    def veto(self, reason: str) -> None:
        """Stop the whole mail (``before_send`` hooks); ``reason`` goes on the item."""
        self.vetoed = reason

    def payload(self, custom_args: dict[str, str]) -> dict:
        """The SendGrid v3 Mail Send request body."""
        return {
            "personalizations": [{"to": [a.to_json() for a in self.recipients]}],
            "from": self.sender.to_json(),
            "subject": self.subject,
            "content": [{"type": "text/plain", "value": self.content}],
            "custom_args": custom_args,
        }


def _decoded(item: dict, name: str):
    value = item.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise InvalidMail(f"'{name}' is not valid JSON") from None
    return value


def _address(value, where: str) -> Address:
    if not isinstance(value, dict):
        raise InvalidMail(f"'{where}' must be an object with 'email' (and optionally 'name')")
    email = value.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise InvalidMail(f"'{where}.email' is not an e-mail address")
    name = value.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidMail(f"'{where}.name' must be a string")
    return Address(email, name or None)


def _text(item: dict, name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidMail(f"'{name}' is missing or not a non-empty string")
    return value


def parse(item: dict) -> Mail:
    """Check a mail sender item and turn it into a ``Mail``; ``InvalidMail`` otherwise."""
    if "from" not in item:
        raise InvalidMail("'from' is missing")
    sender = _address(_decoded(item, "from"), "from")
    to = _decoded(item, "to")
    if not isinstance(to, list) or not to:
        raise InvalidMail("'to' must be a non-empty list of {'email', 'name'}")
    return Mail(
        id=str(item["id"]),
        sender=sender,
        to=[_address(a, f"to[{i}]") for i, a in enumerate(to)],
        subject=_text(item, "subject"),
        content=_text(item, "content"),
    )
