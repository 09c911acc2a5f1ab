"""The operator's command line: install, options, the target, output and errors (no stack needed)."""

import argparse
import io
import json
import os
import subprocess
import sys

import pytest

from cli import __main__ as cli_main
from cli import target as targets
from cli.errors import TRANSIENT, USAGE, CliError, UsageError
from cli.output import Output
from tests.cli_support import ROOT, console_script

OUTPUTS = {"tableNames": {"bounce": "prod-bounce", "sent_log": "prod-sent-log"},
           "dlqUrl": "https://sqs.eu-west-1.amazonaws.com/1/prod-failures", "webhookUrl": "[secret]"}


def parse(*argv):
    return cli_main.build_parser().parse_args(["probe", *argv])


@pytest.fixture
def probe(monkeypatch):
    """A command ``probe`` (as a command module registers one) that records what it was handed."""
    seen = {}

    def run(target, args):
        seen.update(target=target, args=args)
        args.out.result({"tables": target.tables, "n": 2, "x": 0.5})
        return 0

    class Module:
        @staticmethod
        def register(subparsers):
            subparsers.add_parser("probe").set_defaults(func=run)
            group = subparsers.add_parser("group").add_subparsers(dest="action", required=True)
            group.add_parser("leaf").set_defaults(func=run)

    monkeypatch.setattr(cli_main, "COMMANDS", ("probe_module",))
    monkeypatch.setitem(sys.modules, "cli.probe_module", Module)
    return seen


def write_outputs(tmp_path, outputs=OUTPUTS):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def test_python_m_cli_help_lists_the_commands():
    done = subprocess.run([sys.executable, "-m", "cli", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: sendgrid-events")
    for name in cli_main.COMMANDS:
        assert name in done.stdout


def test_make_venv_installs_the_console_script(tmp_path):
    """It runs from anywhere, its packages found without the repository on the path."""
    script = console_script(tmp_path / "venv")
    done = subprocess.run([str(script), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, done.stderr
    assert "usage: sendgrid-events" in done.stdout


def test_the_venv_is_rebuilt_when_pyproject_changes(tmp_path):
    for name in ("Makefile", "requirements.txt", "requirements-lambda.txt", "requirements-dev.txt", "pyproject.toml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())

    def stamp():
        return subprocess.run(["make", "-s", "--eval", "stamp: ; @echo $(STAMP)", "stamp"], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

    before = stamp()
    with open(tmp_path / "pyproject.toml", "a") as pyproject:
        pyproject.write("# changed\n")
    assert stamp() != before


def test_every_command_takes_the_global_options(probe, tmp_path):
    outputs = write_outputs(tmp_path)
    for argv in (["probe"], ["group", "leaf"]):
        args = cli_main.build_parser().parse_args([*argv, "--json", "--stack", "prod", "--outputs", str(outputs)])
        assert args.json and args.stack == "prod" and args.outputs == str(outputs)
    with pytest.raises(SystemExit):  # one target at a time
        cli_main.build_parser().parse_args(["probe", "--local", "--stack", "prod"])


def test_a_deployed_stack_from_its_outputs(probe, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.secret-key")
    monkeypatch.delenv("SENDGRID_API_HOST", raising=False)
    assert cli_main.main(["probe", "--json", "--stack", "prod", "--outputs", str(write_outputs(tmp_path))]) == 0
    assert json.loads(capsys.readouterr().out) == {"tables": OUTPUTS["tableNames"], "n": 2, "x": 0.5}
    target = probe["target"]
    assert target.name == "prod" and target.queues == {"sender_failures": OUTPUTS["dlqUrl"]}
    assert target.sendgrid() == ("https://api.sendgrid.com", "SG.secret-key")
    assert "SG.secret-key" not in repr(target)


def test_the_local_stack_from_its_state_file(probe, tmp_path, capsys):
    state = {"tables": {"bounce": "local-bounce"}, "queues": {"sender_failures": "http://q"},
             "outputs": {"x": 1}, "sendgrid_api_host": "http://127.0.0.1:9/", "sendgrid_api_key": "SG.local",
             "aws_env": {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_REGION": "us-east-1",
                         "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIA1",
                         "AWS_SECRET_ACCESS_KEY": "s"}}
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    assert cli_main.main(["probe", "--local", str(path)]) == 0
    target = probe["target"]
    assert target.table("bounce") == "local-bounce" and target.sendgrid() == ("http://127.0.0.1:9", "SG.local")
    client = target.client("dynamodb")
    assert client.meta.endpoint_url == "http://127.0.0.1:1" and client.meta.region_name == "us-east-1"
    with pytest.raises(UsageError, match="no 'event_history' table .* it has: bounce"):
        target.table("event_history")


def test_the_default_target_is_the_local_state_file(probe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli_main.main(["probe"]) == USAGE
    err = capsys.readouterr().err
    assert err.startswith("sendgrid-events: no stack named: no local stack is running") and err.count("\n") == 1
    assert "--stack NAME" in err


def test_a_stale_state_file_says_the_local_stack_is_gone(probe, tmp_path, capsys):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"pid": int(gone.stdout), "tables": {}, "aws_env": {}}))
    assert cli_main.main(["probe", "--local", str(path)]) == USAGE
    assert f"is not running (process {int(gone.stdout)} is gone)" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--outputs", "x.json"], "--outputs FILE goes with --stack NAME"),
    (["--stack", "prod", "--outputs", "missing.json"], "--outputs missing.json: no such file"),
    (["--local", "missing.json"], "no local stack at missing.json"),
])
def test_bad_target_options_are_one_line_errors(probe, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert cli_main.main(["probe", *argv]) == USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"sendgrid-events: {message}") and err.count("\n") == 1


def test_outputs_that_are_not_a_stacks(probe, tmp_path, capsys):
    path = write_outputs(tmp_path, {"somethingElse": 1})
    assert cli_main.main(["probe", "--stack", "prod", "--outputs", str(path)]) == USAGE
    assert "its outputs have no 'tableNames'" in capsys.readouterr().err


def test_no_sendgrid_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    target = targets.deployed("prod", OUTPUTS)
    with pytest.raises(UsageError, match="set SENDGRID_API_KEY"):
        target.sendgrid()


def test_pulumi_missing_says_how_to_pass_the_outputs(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match="--outputs FILE"):
        targets.from_args(argparse.Namespace(stack="prod", outputs=None, local=None))


def test_aws_errors_become_one_line_and_an_exit_code():
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query")
    assert cli_main.error_of(throttled).code == TRANSIENT
    assert str(cli_main.error_of(throttled)) == "AWS Query: ThrottlingException: slow down (throttled: try again later)"
    gone = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}}, "Scan")
    assert "the right --stack?" in str(cli_main.error_of(gone))
    assert cli_main.error_of(NoCredentialsError()).code == USAGE
    assert cli_main.error_of(EndpointConnectionError(endpoint_url="http://x")).code == TRANSIENT
    assert cli_main.error_of(ValueError("a bug")) is None  # a bug keeps its traceback
    assert cli_main.error_of(CliError("x", 7)).code == 7


def test_json_output_is_one_document_and_notes_go_to_stderr():
    out, err = io.StringIO(), io.StringIO()
    output = Output(as_json=True, out=out, err=err)
    output.note("read the sent log")
    output.result({"rows": [{"n": 1.5, "s": {"b", "a"}}]}, render=lambda console: console.print("no"))
    assert json.loads(out.getvalue()) == {"rows": [{"n": 1.5, "s": ["a", "b"]}]}
    assert err.getvalue() == "read the sent log\n"


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("as_json, err, shown", [(False, Terminal, True), (False, io.StringIO, False),
                                                  (True, Terminal, False)])
def test_progress_only_on_a_terminal_without_json(as_json, err, shown):
    output = Output(as_json=as_json, out=io.StringIO(), err=err())
    assert list(output.track(range(3), "pages", total=3)) == [0, 1, 2]
    assert bool(output.err.getvalue()) is shown
    assert output.out.getvalue() == ""
