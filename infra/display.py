"""The text of ``make preview``, in the form of ``pulumi preview``'s display.

The resource tree (children indented under their parent, types shortened as
pulumi shows them), the diagnostics, the outputs (a secret one as ``[secret]``)
and the count: as the CLI's progress display draws its tree, with its
``tokens.Type.DisplayName`` for the types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from infra.offline import STACK_TYPE, Resource

SECRET = "[secret]"


@dataclass
class Node:
    type: str
    name: str
    children: list[Node] = field(default_factory=list)

    def find(self, type_: str, name: str) -> Node | None:
        """The first node of this type and name in the tree (depth first), or None."""
        if (self.type, self.name) == (type_, name):
            return self
        return next((found for child in self.children if (found := child.find(type_, name))), None)


def tree(stack_name: str, resources: Iterable[Resource]) -> Node:
    """The stack (``<project>-<stack>``) and every resource under its parent; children sorted by type and name."""
    root = Node(STACK_TYPE, stack_name)
    resources = list(resources)
    nodes = {r.urn: Node(r.type, r.name) for r in resources}
    for resource in resources:
        nodes.get(resource.parent, root).children.append(nodes[resource.urn])
    for node in (root, *nodes.values()):
        node.children.sort(key=lambda n: (display_type(n.type), n.name))
    return root


def display_type(token: str) -> str:
    """``Type.DisplayName``: ``aws:dynamodb/table:Table`` -> ``aws:dynamodb:Table``."""
    parts = token.split(":")
    if len(parts) != 3 or not parts[2] or "/" not in parts[1]:
        return token
    package, module, name = parts
    folder, file = module.rsplit("/", 1)
    return f"{package}:{folder}:{name}" if file == name[0].lower() + name[1:] else token


def tree_lines(root: Node, plan: str = "+  ") -> list[str]:
    """The table: ``+   <type, indented under its parent>  <name>``."""
    rows: list[tuple[str, str]] = []

    def walk(node: Node, prefix: str, indentation: str) -> None:
        rows.append((prefix + display_type(node.type), node.name))
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            walk(child, indentation + ("└─ " if last else "├─ "), indentation + ("   " if last else "│  "))

    walk(root, "", "")
    width = max(len("Type"), *(len(t) for t, _ in rows)) + 2
    return [f"     {'Type'.ljust(width)}Name"] + [f" {plan} {t.ljust(width)}{n}" for t, n in rows]


def diagnostics_lines(stack_name: str, messages: list[tuple[str, str]]) -> list[str]:
    """``Diagnostics:``: each (severity, message) under the stack, as pulumi shows a program's log."""
    if not messages:
        return []
    lines = ["Diagnostics:", f"  {STACK_TYPE} ({stack_name}):"]
    for severity, message in messages:
        first, *rest = message.splitlines() or [""]
        lines += [f"    {severity}: {first}"] + [f"    {line}" for line in rest]
    return lines


def outputs_lines(outputs: dict[str, Any], secret: set[str]) -> list[str]:
    """``Outputs:``: names aligned, values as pulumi writes them; a secret output is ``[secret]``."""
    if not outputs:
        return []
    width = max(len(name) for name in outputs)
    lines = ["Outputs:"]
    for name in sorted(outputs):
        text = SECRET if name in secret else _value(outputs[name], "    ")
        lines.append(f"    {name.ljust(width)}: {text}")
    return lines


def _value(value: Any, indentation: str) -> str:
    inner = indentation + "    "
    if isinstance(value, dict) and value:
        width = max(len(str(k)) for k in value)
        items = [f"{inner}{str(k).ljust(width)}: {_value(v, inner)}" for k, v in sorted(value.items())]
        return "{\n" + "\n".join(items) + f"\n{indentation}}}"
    if isinstance(value, list) and value:
        items = [f"{inner}[{i}]: {_value(v, inner)}" for i, v in enumerate(value)]
        return "[\n" + "\n".join(items) + f"\n{indentation}]"
    return json.dumps(value, ensure_ascii=False)
