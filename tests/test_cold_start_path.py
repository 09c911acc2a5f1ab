"""What a cold start runs: the functions' import path and the webhook's first request stay cheap.

bench/cold_start.py measures the figures (bench/README.md, cold start); these
tests hold the choices behind them, in a fresh interpreter: no dataclass is
created on the path (each costs 0.4 to 0.7 ms of generated code when its
module is imported), and modules needed only on an error path are not loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FUNCTIONS = "handlers.sender, handlers.webhook"  # the core functions' handler modules
# Run after ``import <imports>`` (first_request):
FIRST_REQUEST = """
import json, sys
handlers.webhook.enabled_plugins()
ours = [m for name, m in sorted(sys.modules.items()) if name.split('.')[0] in ('handlers', 'plugins')]
dataclasses = [f'{m.__name__}.{name}' for m in ours for name, value in vars(m).items()
               if isinstance(value, type) and value.__module__ == m.__name__ and '__dataclass_fields__' in vars(value)]
print(json.dumps({'modules': [m.__name__ for m in ours], 'dataclasses': dataclasses,
                  'loaded': sorted(sys.modules)}))
"""


def first_request(imports: str = FUNCTIONS) -> dict:
    """What a fresh interpreter holds after importing ``imports`` and loading the plugin set."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "AWS_DEFAULT_REGION": "us-east-1"}
    answer = subprocess.run([sys.executable, "-c", f"import {imports}\n{FIRST_REQUEST}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr[-2000:]
    return json.loads(answer.stdout)


def test_no_dataclass_is_created_on_the_functions_import_path():
    seen = first_request()
    assert {"handlers.tables", "handlers.manager", "handlers.mail", "plugins.dynamodb"} <= set(seen["modules"])
    assert seen["dataclasses"] == []


def test_what_only_an_error_needs_is_not_loaded_by_a_cold_start():
    loaded = set(first_request()["loaded"])
    assert "pluggy" in loaded
    assert "difflib" not in loaded  # handlers.manager.unknown_message: a misspelt plugin name


def test_no_function_loads_boto3():
    """botocore alone: ``import boto3`` (s3transfer, multiprocessing, ...) costs a cold start about 14 ms more."""
    loaded = set(first_request(f"{FUNCTIONS}, plugins.inbound_handler")["loaded"])
    assert {"handlers.sender", "handlers.webhook", "plugins.inbound_handler", "botocore.session"} <= loaded
    assert not {name for name in loaded if name.split(".")[0] in ("boto3", "s3transfer")}
