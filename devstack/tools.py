"""``python -m devstack plugins`` and ``post``: what a plugin author asks of the local stack.

``plugins`` lists every plugin that could be enabled (built-in and installed),
what kind it is (from the hooks it implements), its description (its
module's first docstring line) and its stack config keys (those ``Pulumi.yaml``
describes as "<name> plugin - ..."). ``post FILE`` signs a file of events as
SendGrid would (with the local webhook's key, from the state file) and posts
it to the local webhook URL.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from devstack import http
from devstack.eventwebhook import WebhookKey, batch_body
from handlers import hookspecs, manager
from infra import deploy, stackconfig

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"
KINDS = {"register_event_types": "event type", "register_sinks": "sink", "register_tables": "tables",
         "before_send": "sender", "after_send": "sender", "inbound_mail": "inbound"}


def plugin_rows() -> list[dict]:
    """One row per known plugin: name, where it comes from, kinds, description, config keys."""
    declared = stackconfig.load_project(PROJECT_FILE).config
    rows = []
    for name, load in sorted(manager.known_plugins().items()):
        module = load()
        marked = {n for n, v in vars(module).items() if hasattr(v, f"{hookspecs.PROJECT}_impl")}
        offered = sorted(n for n, v in vars(module).items() if hasattr(v, f"{hookspecs.PROJECT}_spec"))
        half = deploy.deploy_module(name)
        kinds = sorted({KINDS[h] for h in marked if h in KINDS}
                       | ({"infrastructure"} if half is not None and hasattr(half, "infrastructure") else set())
                       | {f"offers {hook}" for hook in offered})
        doc = (module.__doc__ or "").strip().splitlines()
        keys = sorted(k for k, d in declared.items() if d.description.startswith(f"{name} plugin"))
        rows.append({"name": name, "source": "built-in" if name in manager.BUILTIN_PLUGINS else "installed",
                     "kinds": kinds, "description": doc[0] if doc else "", "config": keys})
    return rows


def print_plugins(rows: list[dict]) -> None:
    width = max(len(r["name"]) for r in rows)
    kinds = max(len(", ".join(r["kinds"])) for r in rows)
    for r in rows:
        keys = f"  [config: {', '.join(r['config'])}]" if r["config"] else ""
        print(f"{r['name']:<{width}}  {r['source']:<9}  {', '.join(r['kinds']):<{kinds}}  {r['description']}{keys}")


def post(state: dict, events) -> tuple[int, str]:
    """Sign ``events`` (a list, or one event) with the local webhook's key and post them; (status, answer)."""
    key = WebhookKey(load_pem_private_key(state["webhook_private_key_pem"].encode(), None))
    body = batch_body(events if isinstance(events, list) else [events])
    status, answer = http.post(state["webhook_url"], body, key.headers(body))
    return status, answer.decode()


def load_events(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"devstack post: {path}: {exc}") from None
