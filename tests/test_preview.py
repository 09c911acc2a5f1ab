"""``make preview``: the stack checked with the CLI's rules, the program run offline, the tree printed."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra import display, pipeline, preview

ROOT = Path(__file__).resolve().parent.parent
FUNCTION, TABLE, QUEUE = "aws:lambda/function:Function", "aws:dynamodb/table:Table", "aws:sqs/queue:Queue"
SECURE_KEY = "sendgrid-events:sendgridApiKey:\n  secure: v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"


@pytest.fixture(scope="module")
def dev() -> preview.Run:
    return preview.run("dev")


def children(node: display.Node) -> set[tuple[str, str]]:
    return {(child.type, child.name) for child in node.children}


def test_the_dev_stacks_tree_has_every_resource_under_its_component(dev):
    root = display.tree(dev.stack_name, dev.resources)
    assert (root.type, root.name) == ("pulumi:pulumi:Stack", "sendgrid-events-dev")
    [pipeline_node] = root.children
    assert (pipeline_node.type, pipeline_node.name) == ("sendgrid-events:infra:Pipeline", "sendgrid-events-dev")
    storage = pipeline_node.find("sendgrid-events:infra:Storage", "sendgrid-events-dev")
    assert children(storage) == {(TABLE, t) for t in ("mail-sender", "sent-log", "processed-events", "rejects",
                                                      "bounce")}
    for fn in ("sender", "webhook"):
        function = pipeline_node.find("sendgrid-events:infra:Function", f"sendgrid-events-dev-{fn}")
        assert (FUNCTION, f"sendgrid-events-dev-{fn}") in children(function)
        assert ("aws:iam/role:Role", f"sendgrid-events-dev-{fn}-role") in children(function)
    trigger = pipeline_node.find("sendgrid-events:infra:StreamTrigger", "sendgrid-events-dev-mail-sender-stream")
    assert {t for t, _ in children(trigger)} >= {"aws:lambda/eventSourceMapping:EventSourceMapping", QUEUE}
    api = pipeline_node.find("sendgrid-events:infra:WebhookApi", "sendgrid-events-dev-api")
    assert ("aws:apigateway/restApi:RestApi", "sendgrid-events-dev-api") in children(api)
    assert root.find("aws:kms/key:Key", "sendgrid-events-dev-key") is None  # the dev stack's kmsKey: aws-owned
    assert len(dev.resources) == sum(1 for _ in _walk(root)) - 1


def _walk(node: display.Node):
    yield node
    for child in node.children:
        yield from _walk(child)


def test_the_dev_stacks_outputs_hide_the_secret_one(dev):
    assert dev.secret_outputs == {"webhookUrl"}
    assert dev.outputs["dlqUrl"].startswith("https://sqs.ap-northeast-1.amazonaws.com/")  # the stack's aws:region
    text = io.StringIO()
    assert preview.preview("dev", out=text) == 0
    out = text.getvalue()
    assert "\n +   └─ sendgrid-events:infra:Pipeline " in out
    assert "\n +      │  ├─ aws:dynamodb:Table " in out  # a table, under Storage, under the Pipeline
    assert re.search(r"\n    webhookUrl +: \[secret\]\n", out)
    assert dev.outputs["webhookUrl"] not in out
    assert f"Resources:\n    + {len(dev.resources) + 1} to create" in out


@pytest.fixture
def stack_dir(tmp_path):
    """``write(name, config)``: a stack file next to a copy of Pulumi.yaml; the folder to preview."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)

    def write(name: str, config: str) -> Path:
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config:\n" + textwrap.indent(textwrap.dedent(config), "  "))
        return tmp_path
    return write


def run_preview(stack: str, folder: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return preview.preview(stack, folder, out=out, err=err), out.getvalue(), err.getvalue()


def test_a_stack_the_cli_would_refuse_fails_with_its_message(stack_dir):
    folder = stack_dir("bad", "aws:region: eu-west-1\nsendgrid-events:logRetentionDays: soon\n")
    assert run_preview("bad", folder) == (
        1, "", "error: validating stack config: Stack 'bad' is missing configuration value 'sendgridApiKey'\n")
    folder = stack_dir("plain", "sendgrid-events:sendgridApiKey: SG.in-plaintext\n")
    code, out, err = run_preview("plain", folder)
    assert (code, out) == (1, "")
    assert err == ("error: validating stack config: Stack 'plain' with configuration key 'sendgridApiKey' "
                   "must be encrypted as it's secret\n")
    assert "SG.in-plaintext" not in err


def test_a_config_error_of_the_program_is_shown_as_the_cli_shows_it(stack_dir):
    folder = stack_dir("age", SECURE_KEY + "sendgrid-events:allowUnsignedWebhooks: true\n"
                                           "sendgrid-events:webhookMaxAgeSeconds: 3600\n")
    code, out, err = run_preview("age", folder)
    assert code == 1 and err == ""
    assert ("Diagnostics:\n  pulumi:pulumi:Stack (sendgrid-events-age):\n"
            "    error: sendgrid-events:webhookMaxAgeSeconds: must be 0 (no age check) or between 86400") in out
    assert "Traceback" not in out and "Outputs:" not in out


def test_an_unexpected_program_failure_comes_with_its_traceback(stack_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline, "Pipeline", broken)
    code, out, _ = run_preview("bug", stack_dir("bug", SECURE_KEY + "sendgrid-events:allowUnsignedWebhooks: true\n"))
    assert code == 1
    assert "    error: Program failed with an unhandled exception:\n    Traceback (most recent call last):" in out
    assert out.rstrip().endswith("RuntimeError: a bug")


def test_the_programs_warnings_are_diagnostics(stack_dir):
    folder = stack_dir("noage", SECURE_KEY + "sendgrid-events:allowUnsignedWebhooks: true\n"
                                             "sendgrid-events:webhookMaxAgeSeconds: 0\n")
    code, out, _ = run_preview("noage", folder)
    assert code == 0
    assert ("  pulumi:pulumi:Stack (sendgrid-events-noage):\n"
            "    warning: sendgrid-events:webhookMaxAgeSeconds is 0: ") in out


def test_make_preview(tmp_path):
    """The Makefile target, in a stand-in venv (this interpreter) whose stamp is up to date."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    stamp = subprocess.run(["make", "-s", f"VENV={venv}", "--eval", "stamp: ; @echo $(STAMP)", "stamp"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    Path(stamp).touch()
    done = subprocess.run(["make", "-s", "preview", "STACK=dev", f"VENV={venv}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Previewing update (dev)" in done.stdout and re.search(r"\n    webhookUrl +: \[secret\]\n", done.stdout)
