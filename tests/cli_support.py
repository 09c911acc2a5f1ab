"""What the command-line tests share: mails sent through the local stack, a command run with --json."""

import json
import shlex
import site
import subprocess
import sys
from pathlib import Path

from cli.__main__ import main
from devstack import demo

ROOT = Path(__file__).resolve().parent.parent
M1 = ("ok@example.com", "b@bounce.test", "x@blocked.test", "d@dropped.test", "late@deferred.test")


def item(item_id, *emails):
    return demo.seed_item(item_id, [{"email": e, "name": e.split("@")[0]} for e in emails], f"About {item_id}")


def send(stack):
    """m1 to five domains, m2 to a bounce in upper case, then m3 to the bounced address (suppressed)."""
    stack.insert(item("m1", *M1))
    stack.insert(item("m2", "B@bounce.test"))
    stack.wait_settled("m1", "m2")
    stack.insert(item("m3", "b@bounce.test"))
    stack.wait_settled("m3")


def run_json(capsys, state, *argv):
    capsys.readouterr()
    code = main([*argv, "--json", "--local", str(state)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err


def console_script(venv: Path) -> Path:
    """``sendgrid-events`` installed by the Makefile's own install line into a fresh venv at ``venv`` (the
    pinned requirements seen through a .pth, as ``make venv`` would have installed them)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [inner] = (venv / "lib").glob("python3*/site-packages")
    (inner / "outer.pth").write_text(site.getsitepackages()[0] + "\n")
    commands = subprocess.run(["make", "-n", "-B", f"VENV={venv}", "venv"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.splitlines()
    [install] = [c for c in commands if {"-e", "."} <= set(shlex.split(c))]
    subprocess.run(install, shell=True, cwd=ROOT, check=True, capture_output=True)
    return venv / "bin" / "sendgrid-events"
