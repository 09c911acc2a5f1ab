"""Stack config values as the Pulumi CLI reads, keeps and hands them to a program.

What ``infra.stackconfig`` needs of the Pulumi CLI's Go code, in Python:

- ``load_yaml``: YAML as ``gopkg.in/yaml.v3`` decodes it into ``any`` (the CLI's
  reader for Pulumi.yaml and stack files): only ``true``/``false`` are booleans
  (``yes``, ``on`` stay strings), ``1e5`` is a number but ``1:20`` is not,
  timestamps stay strings, a mapping key given twice is an error.
- ``Value``: the CLI's ``config.Value`` (and its ``object`` form): a
  value's text, secure (``secure: v1:...``, or an object holding one) and object
  (an array or map, kept as JSON) flags.
- ``go_json``: ``encoding/json.Marshal`` as the CLI writes an object value
  (compact, keys sorted, ``<``, ``>``, ``&`` escaped, floats the Go way).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

SECURE = "secure"
_BOOL, _INT, _FLOAT, _TIMESTAMP, _MERGE = (f"tag:yaml.org,2002:{t}"
                                           for t in ("bool", "int", "float", "timestamp", "merge"))


class YamlError(ValueError):
    """Not YAML the CLI could read."""


class _GoYamlLoader(yaml.SafeLoader):
    """PyYAML resolving plain scalars the way yaml.v3 does when decoding into ``any``."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                continue  # PyYAML refuses it below
            if key in seen:
                raise YamlError(f"yaml: unmarshal errors:\n  line {line}: mapping key {json.dumps(key)} "
                                f"already defined at line {seen[key]}")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_GoYamlLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_GoYamlLoader.add_implicit_resolver(
    _INT, re.compile(r"^[-+]?(?:[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$"), list("-+0123456789"))
_GoYamlLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """The document as yaml.v3 decodes it into ``any`` (a UTF-8 byte-order mark is dropped, as the CLI does)."""
    try:
        return yaml.load(text.removeprefix("\ufeff"), Loader=_GoYamlLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlError(f"yaml: {exc}") from None


def go_float(number: float) -> str:
    """A float64 as ``encoding/json`` writes it (``1``, ``0.00001``, ``1e-7``, ``1e+21``)."""
    if math.isinf(number) or math.isnan(number):
        raise ValueError(f"json: unsupported value: {number}")
    if number and not 1e-6 <= abs(number) < 1e21:
        text = repr(number)  # shortest digits, exponent form
        return re.sub(r"e-0(\d)$", r"e-\1", text)
    return format(Decimal(repr(number)).normalize(), "f")


def go_json(value: Any) -> str:
    """``json.Marshal(value)``: compact, map keys sorted, HTML characters escaped."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, float):
        return go_float(value)
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def is_secure(raw: Any) -> bool:
    """``isSecureValue``: a map whose only key is ``secure``, holding a string (the ciphertext)."""
    return isinstance(raw, dict) and len(raw) == 1 and isinstance(raw.get(SECURE), str)


def holds_secure(raw: Any) -> bool:
    """``object.Secure``: a secure value, or an array or map holding one."""
    if is_secure(raw):
        return True
    children = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else ()
    return any(holds_secure(child) for child in children)


@dataclass(frozen=True)
class Value:
    """A config value as the CLI keeps it (``config.Value``)."""

    text: str
    """The string, the ciphertext (secure), or the JSON (object, secure parts as ``{"secure": ...}``)."""
    secure: bool = False
    object: bool = False

    @classmethod
    def from_yaml(cls, raw: Any) -> Value:
        """A stack file's value (``Value.UnmarshalYAML``; a null is the empty string, as the CLI warns)."""
        if raw is None:
            return cls("")
        if is_secure(raw):
            return cls(raw[SECURE], secure=True)
        if isinstance(raw, (dict, list)):
            return cls(go_json(raw), secure=holds_secure(raw), object=True)
        return cls.from_scalar(raw)

    @classmethod
    def from_default(cls, raw: Any) -> Value:
        """A project default or value (``createConfigValue``): string, integer, boolean as text; else JSON."""
        if isinstance(raw, (str, int)):  # bool is an int
            return cls.from_scalar(raw)
        return cls(go_json(raw), object=True)

    @classmethod
    def from_scalar(cls, raw: str | int | float) -> Value:
        if isinstance(raw, bool):
            return cls("true" if raw else "false")
        return cls(go_float(raw) if isinstance(raw, float) else str(raw))

    def content(self, unknown: Any) -> Any:
        """What the CLI type-checks: the string, or the decoded JSON; a secure part is ``unknown``."""
        if not self.object:
            return unknown if self.secure else self.text
        return _replace_secure(json.loads(self.text), unknown)

    def plaintext(self, placeholder: str) -> str:
        """The string the program gets (``Map.Decrypt``), each secure part replaced by ``placeholder``."""
        if not self.object:
            return placeholder if self.secure else self.text
        return go_json(_replace_secure(json.loads(self.text), placeholder))


def _replace_secure(raw: Any, replacement: Any) -> Any:
    if is_secure(raw):
        return replacement
    if isinstance(raw, dict):
        return {k: _replace_secure(v, replacement) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_replace_secure(v, replacement) for v in raw]
    return raw
