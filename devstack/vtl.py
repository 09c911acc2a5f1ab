"""API Gateway's mapping templates (Velocity), the part the program's templates use, for the local front.

Locally, the front renders an applied integration's own request and response
templates (``devstack.front``) rather than a second description of what they
do. Supported: ``#if(...)`` / ``#else`` / ``#end`` (conditions: ``A != ""``,
``A == ""``, ``$input.body.contains("...")``, joined by ``&&``),
``#set($context.responseOverride.status = N)``, and the references
``$input.body``, ``$input.params('name')`` (a header's value, else ""),
``$util.urlEncode(...)``, ``$context.<name>``. Anything else is an error naming
it, never silently left in the output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote_plus

_DIRECTIVE = re.compile(r"#(if|else|end|set)\b|\$")
_REFERENCE = re.compile(r"\$util\.urlEncode\(|\$input\.body\.contains\(\"([^\"]*)\"\)|\$input\.params\('([^']*)'\)"
                        r"|\$input\.body|\$context\.([A-Za-z.]+)")
_SET = re.compile(r"\(\$context\.responseOverride\.status\s*=\s*(\d{3})\)")


class TemplateError(ValueError):
    """The template uses what this renderer does not interpret."""


@dataclass
class Scope:
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    context: dict[str, object] = field(default_factory=dict)
    status: int | None = None
    """``$context.responseOverride.status``, once a template sets it."""

    def param(self, name: str) -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), "")


def render(template: str, scope: Scope) -> str:
    text, end, stop = _block(template, 0, scope, True)
    if stop is not None:
        raise TemplateError(f"#{stop} without #if at {end}")
    return text


def _block(t: str, i: int, scope: Scope, emit: bool) -> tuple[str, int, str | None]:
    """Render from ``i`` up to an unmatched ``#else`` / ``#end`` (returned, with the index after it) or the end."""
    out = []
    while True:
        found = _DIRECTIVE.search(t, i)
        if found is None:
            out.append(t[i:])
            return "".join(out) if emit else "", len(t), None
        out.append(t[i:found.start()])
        word = found.group(1)
        if word in ("else", "end"):
            return "".join(out) if emit else "", found.end(), word
        if word == "if":
            condition, i = _parenthesized(t, found.end())
            holds = emit and _holds(condition, scope)
            then, i, stop = _block(t, i, scope, holds)
            otherwise = ""
            if stop == "else":
                otherwise, i, stop = _block(t, i, scope, emit and not holds)
            if stop != "end":
                raise TemplateError("#if without #end")
            out.append(then if holds else otherwise)
        elif word == "set":
            setting = _SET.match(t, found.end())
            if setting is None:
                raise TemplateError(f"unsupported #set at {found.start()}: {t[found.start():found.start() + 60]!r}")
            if emit:
                scope.status = int(setting.group(1))
            i = setting.end()
        else:
            value, i = _value(t, found.start(), scope)
            out.append(value)


def _parenthesized(t: str, i: int) -> tuple[str, int]:
    if t[i:i + 1] != "(":
        raise TemplateError(f"expected '(' at {i}")
    depth, j, quote = 0, i, None
    while j < len(t):
        c = t[j]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return t[i + 1:j], j + 1
        j += 1
    raise TemplateError("unbalanced parentheses")


def _value(t: str, i: int, scope: Scope) -> tuple[str, int]:
    found = _REFERENCE.match(t, i)
    if found is None:
        raise TemplateError(f"unsupported reference at {i}: {t[i:i + 60]!r}")
    if found.group(0) == "$util.urlEncode(":
        inner, end = _parenthesized(t, found.end() - 1)
        value, used = _value(inner, 0, scope)
        if used != len(inner):
            raise TemplateError(f"unsupported argument of $util.urlEncode: {inner!r}")
        return quote_plus(value, safe="*"), end  # Java's URLEncoder: '*' stays, ' ' is '+'
    if found.group(1) is not None:
        return str(found.group(1) in scope.body).lower(), found.end()
    if found.group(2) is not None:
        return scope.param(found.group(2)), found.end()
    if found.group(3) is not None:
        if found.group(3) not in scope.context:
            raise TemplateError(f"unknown $context.{found.group(3)}")
        return str(scope.context[found.group(3)]), found.end()
    return scope.body, found.end()


def _holds(condition: str, scope: Scope) -> bool:
    return all(_term(term.strip(), scope) for term in condition.split("&&"))


def _term(term: str, scope: Scope) -> bool:
    for operator, equal in (("!=", False), ("==", True)):
        if operator in term:
            left, right = (side.strip() for side in term.split(operator, 1))
            if right not in ('""', "''"):
                raise TemplateError(f"unsupported comparison {term!r}")
            value, used = _value(left, 0, scope)
            if used != len(left):
                raise TemplateError(f"unsupported comparison {term!r}")
            return (value == "") == equal
    value, used = _value(term, 0, scope)
    if used != len(term) or value not in ("true", "false"):
        raise TemplateError(f"unsupported condition {term!r}")
    return value == "true"
