"""The example third-party package (examples/sendgrid-events-jsonlog): built, pip-installed, enabled by name."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handlers import manager, webhook
from handlers.tables import WEBHOOK
from tests.infra_program import run_program
from tests.support import sample

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sendgrid-events-jsonlog"


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory):
    """pip-install the example (offline, no build isolation) into a fresh folder, once."""
    tmp = tmp_path_factory.mktemp("example")
    source, target = tmp / "source", tmp / "site-packages"
    shutil.copytree(EXAMPLE, source)  # the build leaves build/ and *.egg-info behind: not in the repo
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True, timeout=120)
    return target


@pytest.fixture
def installed(site_packages, monkeypatch):
    """The installed example on sys.path, as if pip had put it in site-packages."""
    monkeypatch.syspath_prepend(str(site_packages))
    yield
    for name in ("sendgrid_events_jsonlog.deploy", "sendgrid_events_jsonlog"):
        sys.modules.pop(name, None)


def test_enabled_by_name_its_sink_logs_one_json_line_per_event(installed, stack, capsys, monkeypatch):
    assert "jsonlog" in manager.known_plugins()
    plugins = stack("bounce,dropped,dynamodb,jsonlog")
    assert [s.name for s in plugins.sinks] == ["dynamodb", "jsonlog"]
    monkeypatch.setenv("JSONLOG_EVENTS", "bounce")

    webhook.receive(json.dumps([sample("bounce.json"), sample("dropped.json")]).encode(), plugins)

    [line] = [json.loads(out) for out in capsys.readouterr().out.splitlines() if out.startswith("{")]
    assert line["message"] == "sendgrid event"
    assert (line["event"], line["email"], line["bounceClassification"]) == (
        "bounce", "nobody@bounce.test", "Invalid Address")


def test_enabled_in_a_stack_its_infrastructure_hook_runs(installed):
    made = run_program({"plugins": ["bounce", "dynamodb", "jsonlog"], "jsonlogEvents": "bounce,dropped"})
    assert made.environment(WEBHOOK)["JSONLOG_EVENTS"] == "bounce,dropped"
    assert made.environment(WEBHOOK)["ENABLED_PLUGINS"] == "bounce,dynamodb,jsonlog"


def test_its_own_tests_pass_with_the_plugin_test_kit(site_packages):
    """examples/sendgrid-events-jsonlog/tests use devstack.plugin_kit: the program offline, the local stack."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site_packages), str(EXAMPLE.parent.parent)])}
    answer = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                            cwd=EXAMPLE.parent.parent, env=env, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stdout[-3000:] + answer.stderr[-2000:]
    assert "2 passed" in answer.stdout
