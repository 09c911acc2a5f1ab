"""A plugin from outside plugins/: an installed package with an entry point.

The module and its distribution metadata are written in a temporary folder
put on sys.path, just as pip would install them. Nothing in the core changes.
"""

import json
import sys
import textwrap

import pytest

from handlers import manager, webhook
from tests.support import put_item, scan

PLUGIN = '''
from handlers.hookspecs import hookimpl

SEEN = []

@hookimpl
def register_event_types(register):
    register("delivered", lambda event: {"response": event.get("response")})

@hookimpl
def register_sinks(register):
    register("recorder", SEEN.extend)
'''


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    (tmp_path / "sg_recorder.py").write_text(PLUGIN)
    dist = tmp_path / "sg_recorder-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sg-recorder\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sendgrid_events]\nrecorder = sg_recorder\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("sg_recorder", None)


def test_not_loaded_unless_enabled(installed_plugin):
    assert "recorder" in manager.known_plugins()
    manager.build("bounce")
    assert "sg_recorder" not in sys.modules


def test_entry_point_plugin_adds_an_event_type_and_a_sink(installed_plugin, stack):
    plugins = stack("recorder,bounce,dynamodb")
    import sg_recorder

    put_item("TABLE_SENT_LOG", {"messageId": "abc", "from": {"email": "s@example.com"},
                                "to": [{"email": "r@example.com", "name": "R"}], "subject": "Hi"})
    events = [
        {"event": "delivered", "email": "r@example.com", "timestamp": 1764400000,
         "sg_event_id": "e1", "sg_message_id": "abc.filter1", "response": "250 OK"},
        {"event": "bounce", "email": "r@example.com", "timestamp": 1764400001, "type": "blocked",
         "sg_event_id": "e2", "sg_message_id": "abc.filter1", "reason": "421"},
    ]
    counts = webhook.receive(json.dumps(events).encode(), plugins)

    assert counts["accepted"] == 2
    assert [(r["event"], r.get("response"), r["toName"]) for r in sg_recorder.SEEN] == [
        ("delivered", "250 OK", "R"), ("bounce", None, "R")]
    # the built-in sink still stores only what it stores
    assert [row["event"] for row in scan("TABLE_BOUNCE")] == ["bounce"]


def test_entry_point_cannot_take_a_builtin_name(tmp_path, monkeypatch):
    dist = tmp_path / "evil-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sendgrid_events]\nbounce = evil\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(manager.PluginError, match="already taken"):
        manager.build("bounce")
