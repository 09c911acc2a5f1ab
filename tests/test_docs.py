"""docs/plugins.md: every hook is there with its full signature, and every example runs.

Each example is a complete plugin module: here it is registered by name with
a fresh plugin manager (pluggy checks its hook functions against the specs)
and each hook it implements is called, the deploy ones through the program's
own machinery, offline.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from datetime import datetime, timezone
from pathlib import Path

import pytest

from handlers import manager, records
from infra import deploy
from handlers.mail import parse
from plugins.inbound_handler import StoredMail, parse_form
from tests.plugin_infra import run_infrastructure
from tests.support import seed_item

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
TEXT = GUIDE.read_text()
_RUNTIME = manager.build(sorted(manager.BUILTIN_PLUGINS))
_DEPLOY = deploy.build(_RUNTIME)
DEPLOY_HOOKS = set(manager.hook_specs(_DEPLOY))
HOOKS = {name: f"{name}{inspect.signature(fn)}"  # the core's, those built-in plugins offer, the deploy side's
         for pm in (_RUNTIME.pm, _DEPLOY) for name, fn in manager.hook_specs(pm).items()}
SECTIONS = {m.group(1): (m.group(1) + m.group(2), m.group(3))  # hook -> (its heading's signature, its text)
            for m in re.finditer(r"^## `(\w+)(\([^)]*\))`\n(.*?)(?=^## |\Z)", TEXT, re.S | re.M)}
EXAMPLE = re.compile(r"```python\n(.*?)```", re.S)


def test_every_hook_is_in_the_guide_with_its_full_signature():
    assert HOOKS, "no hook specs found"
    assert {name: SECTIONS[name][0] for name in HOOKS if name in SECTIONS} == HOOKS
    assert set(SECTIONS) == set(HOOKS)  # and no section for a hook that does not exist


def plugin_from(example: str, monkeypatch, name: str, deploy_half: bool):
    """The example as plugin ``name``: its runtime module, or (``deploy_half``) its package's deploy module."""
    module = types.ModuleType(f"{name}.deploy" if deploy_half else name)
    exec(compile(example, f"docs/plugins.md ({name})", "exec"), module.__dict__)
    if deploy_half:
        package = types.ModuleType(name)
        package.__path__ = []
        monkeypatch.setitem(sys.modules, name, package)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(manager.BUILTIN_PLUGINS, name, name)
    return module


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_the_example_of_each_hook_runs(hook, monkeypatch, stack, capsys):
    [example] = EXAMPLE.findall(SECTIONS[hook][1])[:1] or [None]
    assert example, f"docs/plugins.md: no example for {hook}"
    name = f"doc_{hook}"
    module = plugin_from(example, monkeypatch, name, deploy_half=hook in DEPLOY_HOOKS)
    assert hasattr(module, hook), f"the {hook} example does not implement {hook}"
    offering = ["inbound"] if hook == "inbound_mail" else []  # the plugin whose hook it is
    plugins = stack([*offering, name])  # registered (signatures checked against the specs), its tables in moto
    sample = {"event": "open", "email": "a@example.com", "timestamp": 1700000000, "sg_event_id": "e1",
              "sg_message_id": "m1.x", "useragent": "UA", "ip": "192.0.2.1"}
    if hook == "register_event_types":
        [event_type] = plugins.event_types.values()
        fields = event_type.fields(sample)
        assert fields and not records.clashes(fields)
    elif hook in ("register_sinks", "register_tables"):
        [sink] = plugins.sinks
        record = {key: None for key in records.CORE_KEYS} | {"eventId": "e1", "event": "open", "messageId": "m1",
                                                              "email": "a@example.com", "timestamp": 1700000000}
        sink.write([record])
    elif hook in ("before_send", "after_send"):
        mail = parse(seed_item("doc", [("ok@example.com", "OK"), ("x@example.invalid", "X")]))
        plugins.hook.before_send(mail=mail)
        plugins.hook.after_send(mail=mail, message_id="msg-1")
        if hook == "before_send":
            assert [r.email for r in mail.recipients] == ["ok@example.com"]
    elif hook in ("stack_settings", "infrastructure"):
        made = run_infrastructure([name])
        if hook == "infrastructure":
            assert made.resources and made.env["webhook"]
    elif hook == "inbound_mail":
        from tests.test_inbound import parsed_mail

        body, content_type = parsed_mail()
        plugins.hook.inbound_mail(mail=StoredMail("bucket", "key", body, content_type,
                                                  datetime.now(timezone.utc), True, parse_form(body, content_type)))
    else:
        pytest.fail(f"test_docs does not know how to run the {hook} example")


def test_nothing_points_outside_the_repository():
    """Users have the repository only: no link or reference to files beside it."""
    import subprocess

    root = GUIDE.parent.parent
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    outside = re.compile(r"\.\./shared|DESIGN\.md")
    found = [name for name in tracked.split() if Path(root, name).suffix in (".py", ".md", ".yaml", ".toml", "")
             and Path(root, name).is_file() and outside.search(Path(root, name).read_text(errors="ignore"))]
    assert found == []
