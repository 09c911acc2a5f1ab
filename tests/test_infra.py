"""The Pulumi program (the real ``__main__.py``) under mocks: resources, roles, environment, config."""

from __future__ import annotations

import base64
import sys
import textwrap

import pulumi
import pytest
from pulumi.runtime import rpc

from handlers import env, functions, manager
from handlers.env import Var
from handlers.tables import SENDER, WEBHOOK
from infra import bytecode
from infra.config import ConfigError
from infra import preview
from infra.preview import ACCOUNT, Engine
from tests.infra_program import API_KEY, PROJECT, PUBLIC_KEY, STACK, run_program

FUNCTIONS = (SENDER, WEBHOOK)
TABLE = "aws:dynamodb/table:Table"
# Variables the handlers read that the program must not set: local runs only, or a right default.
LOCAL_ONLY = {"SENDGRID_API_KEY", "SENDGRID_API_HOST"}
INVENTORY = {f.name: f.reads for f in functions.CORE}


@pytest.fixture
def program():
    return run_program


@pytest.fixture(scope="module")
def default():
    """The program with the default config (run once for the read-only checks)."""
    return run_program()


def table_arn(logical: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{logical.replace('_', '-')}"


def granted(statements: list[dict]) -> dict[str, set[str]]:
    """Resource -> actions, over all statements."""
    result: dict[str, set[str]] = {}
    for s in statements:
        assert s["Effect"] == "Allow"
        for resource in s["Resource"]:
            result.setdefault(resource, set()).update(s["Action"])
    return result


def test_tables_follow_the_shared_definitions(default):
    definitions = manager.build(None).tables
    assert {r.name for r in default.of_type(TABLE)} == {n.replace("_", "-") for n in definitions}
    for logical, table in definitions.items():
        made = default.table(logical).inputs
        assert made["name"] == f"{PROJECT}-{STACK}-{logical}"
        assert made["hashKey"] == table.hash_key
        assert made.get("rangeKey") == table.range_key
        assert {(a["name"], a["type"]) for a in made["attributes"]} == \
            {(n, table.attribute_type(n)) for n in table.key_attributes}
        assert made["billingMode"] == "PAY_PER_REQUEST"
        assert made["serverSideEncryption"] == {"enabled": True,
                                                "kmsKeyArn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{PROJECT}-{STACK}-key"}
        assert made["pointInTimeRecovery"] == {"enabled": True}
        assert made["deletionProtectionEnabled"] is True
        assert made.get("ttl") == ({"attributeName": table.ttl_attribute, "enabled": True}
                                   if table.ttl_attribute else None)
        assert bool(made.get("streamEnabled")) == bool(table.stream_view_type)
    assert default.table("mail_sender").inputs["streamViewType"] == "NEW_IMAGE"
    [key] = default.of_type("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True


def test_table_names_protection_and_pitr_are_configurable(program):
    made = program({"tableNames": ["mail_sender=testMailSender"], "tablePrefix": "x-",
                    "deletionProtection": "false", "pointInTimeRecovery": "false"})
    assert made.table("mail_sender").inputs["name"] == "testMailSender"
    assert made.table("sent_log").inputs["name"] == "x-sent_log"
    assert made.table("sent_log").inputs["deletionProtectionEnabled"] is False
    assert made.table("sent_log").inputs["pointInTimeRecovery"] == {"enabled": False}
    assert made.environment(SENDER)["TABLE_MAIL_SENDER"] == "testMailSender"


@pytest.mark.parametrize("kms", ["aws-owned", f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/existing"])
def test_kms_key_choice(program, kms):
    made = program({"kmsKey": kms})
    assert made.of_type("aws:kms/key:Key") == []
    [queue] = [q for q in made.of_type("aws:sqs/queue:Queue") if q.name.endswith("-failures")]
    [parameter] = made.of_type("aws:ssm/parameter:Parameter")
    sse = made.table("sent_log").inputs.get("serverSideEncryption")
    if kms == "aws-owned":
        assert sse is None  # DynamoDB's default: an AWS-owned key
        assert queue.inputs["sqsManagedSseEnabled"] is True
        assert "keyId" not in parameter.inputs  # SSM's aws/ssm key
        assert not any(a.startswith("kms:") for s in made.policies(SENDER) for a in s["Action"])
    else:
        assert sse == {"enabled": True, "kmsKeyArn": kms}
        assert queue.inputs["kmsMasterKeyId"] == kms
        assert parameter.inputs["keyId"] == kms
        assert "kms:Decrypt" in granted(made.policies(SENDER))[kms]


def test_functions_layer_and_logs(default):
    [layer] = default.of_type("aws:lambda/layerVersion:LayerVersion")
    assert layer.inputs["compatibleArchitectures"] == ["arm64"]
    assert layer.inputs["compatibleRuntimes"] == ["python3.12"]
    assert layer.inputs["layerName"].startswith(f"{PROJECT}-{STACK}-deps-arm64-")
    handlers = {SENDER: "handlers.sender.lambda_handler", WEBHOOK: "handlers.webhook.lambda_handler"}
    for fn, handler in handlers.items():
        made = default.function(fn).inputs
        assert made["handler"] == handler
        assert made["runtime"] == "python3.12"
        assert made["architectures"] == ["arm64"]
        assert made["layers"] == [f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:{layer.inputs['layerName']}:1"]
        logs = default.one("aws:cloudwatch/logGroup:LogGroup", f"{PROJECT}-{STACK}-{fn}-logs").inputs
        assert logs["retentionInDays"] == 30
        assert made["loggingConfig"]["logGroup"] == logs["name"]
    assert default.function(WEBHOOK).inputs["timeout"] <= 29  # API Gateway's limit
    shipped = default.function(WEBHOOK).inputs["code"].assets
    compiled = "handlers/__pycache__/webhook.cpython-312.pyc" in shipped
    assert compiled == (bytecode.interpreter("3.12") is not None) and "handlers/webhook.py" in shipped


def test_without_the_runtime_python_the_code_ships_without_bytecode_and_says_so(program, caplog, monkeypatch):
    monkeypatch.setattr(bytecode, "interpreter", lambda version: None)
    made = program({"runtime": "python3.13"})
    [warning] = [r.getMessage() for r in caplog.records if "not found" in r.getMessage()]
    assert warning.startswith("python3.13 not found") and "pyenv install 3.13" in warning
    assert not any(name.endswith(".pyc") for name in made.function(WEBHOOK).inputs["code"].assets)
    [layer] = made.of_type("aws:lambda/layerVersion:LayerVersion")
    assert "no bytecode" in layer.inputs["description"]


def test_architecture_and_runtime_are_configurable(program):
    made = program({"architecture": "x86_64", "runtime": "python3.13", "logRetentionDays": "90"})
    assert made.function(SENDER).inputs["architectures"] == ["x86_64"]
    assert made.function(SENDER).inputs["runtime"] == "python3.13"
    [layer] = made.of_type("aws:lambda/layerVersion:LayerVersion")
    assert layer.inputs["compatibleArchitectures"] == ["x86_64"]
    assert {r.inputs["retentionInDays"] for r in made.of_type("aws:cloudwatch/logGroup:LogGroup")} == {90}


def test_stream_trigger(default):
    [mapping] = [m for m in default.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
                 if ":dynamodb:" in m.inputs["eventSourceArn"]]
    [queue] = [q for q in default.of_type("aws:sqs/queue:Queue") if q.name.endswith("-failures")]
    m = mapping.inputs
    assert m["eventSourceArn"] == table_arn("mail_sender") + "/stream/2026-01-01T00:00:00.000"
    assert m["functionName"] == f"{PROJECT}-{STACK}-sender"
    assert m["batchSize"] == 100
    assert m["filterCriteria"] == {"filters": [{"pattern": '{"eventName": ["INSERT"]}'}]}
    assert m["bisectBatchOnFunctionError"] is True
    assert m["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m["maximumRetryAttempts"] == 5
    assert m["maximumRecordAgeInSeconds"] == 86400
    assert m["destinationConfig"]["onFailure"]["destinationArn"] == queue.outputs["arn"]
    assert queue.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
    sender = granted(default.policies(SENDER))
    assert sender[m["eventSourceArn"]] >= {"dynamodb:GetRecords", "dynamodb:GetShardIterator",
                                           "dynamodb:DescribeStream"}
    assert sender[queue.outputs["arn"]] == {"sqs:SendMessage"}


def test_rest_api(program):
    default = program({"ingest": "direct"})  # the webhook's route invokes the function (queue: test_ingest_infra)
    [resource] = default.of_type("aws:apigateway/resource:Resource")
    path = resource.inputs["pathPart"]
    assert len(path) >= 40 and path.isalnum()
    [method] = default.of_type("aws:apigateway/method:Method")
    assert (method.inputs["httpMethod"], method.inputs["authorization"]) == ("POST", "NONE")
    [integration] = default.of_type("aws:apigateway/integration:Integration")
    assert integration.inputs["type"] == "AWS_PROXY"
    assert integration.inputs["integrationHttpMethod"] == "POST"
    assert f"function/{PROJECT}-{STACK}-webhook/invocations" in integration.inputs["uri"]
    [error] = default.of_type("aws:apigateway/methodResponse:MethodResponse")
    assert error.inputs["statusCode"] == "500"
    [stage] = default.of_type("aws:apigateway/stage:Stage")
    assert stage.inputs["stageName"] == "v1"
    [throttling] = default.of_type("aws:apigateway/methodSettings:MethodSettings")
    assert throttling.inputs["methodPath"] == "*/*"
    assert throttling.inputs["settings"]["throttlingRateLimit"] == 50
    assert throttling.inputs["settings"]["throttlingBurstLimit"] == 100
    [permission] = default.of_type("aws:lambda/permission:Permission")
    assert permission.inputs["principal"] == "apigateway.amazonaws.com"
    assert permission.inputs["sourceArn"].endswith(f"/*/POST/{path}")
    assert default.is_secret("webhookUrl")
    assert default.resolved_outputs()["webhookUrl"].endswith(f"/v1/{path}")


def test_roles_grant_exactly_the_declared_table_actions(default):
    definitions = manager.build(None).tables
    for fn in FUNCTIONS:
        grants = granted(default.policies(fn))
        for logical, table in definitions.items():
            assert grants.get(table_arn(logical), set()) == set(table.access.get(fn, ())), (fn, logical)
    sender, webhook = granted(default.policies(SENDER)), granted(default.policies(WEBHOOK))
    assert table_arn("bounce") not in sender  # the sender cannot touch the bounce table
    assert not any(r.startswith(table_arn("mail_sender")) for r in webhook)  # nor the webhook the sender table
    parameter = default.one("aws:ssm/parameter:Parameter", "sendgrid-api-key")
    assert sender[parameter.outputs["arn"]] == {"ssm:GetParameter"}
    assert not any("ssm:" in a for s in default.policies(WEBHOOK) for a in s["Action"])


def test_no_wildcard_resource_where_an_arn_is_known(default):
    for fn in FUNCTIONS:
        for statement in default.policies(fn):
            if "*" in statement["Resource"]:
                # The one action IAM cannot scope to a resource.
                assert statement["Action"] == ["dynamodb:ListStreams"], statement
            for resource in statement["Resource"]:
                assert resource == "*" or resource.startswith("arn:aws:"), resource


def test_environment_carries_what_the_handlers_read_and_nothing_else(default):
    plugins = manager.build(None)
    plugin_vars = {v.name for module in plugins.pm.get_plugins()
                   for v in vars(module).values() if isinstance(v, Var)}
    set_anywhere = set()
    for fn in FUNCTIONS:
        environment = default.environment(fn)
        set_anywhere |= set(environment)
        reads = {v.name for v in INVENTORY[fn]}
        tables = {t.env_var for t in plugins.tables.values() if fn in t.access}
        missing = reads - LOCAL_ONLY - set(environment)
        assert not missing, f"{fn} reads {missing} but the program does not set them"
        assert not LOCAL_ONLY & set(environment)
        unknown = set(environment) - reads - tables - plugin_vars
        assert not unknown, f"{fn}: the program sets {unknown}, which nothing declares"
        assert {n for n in environment if n.startswith("TABLE_")} == tables
    assert plugin_vars - {v.name for fn in FUNCTIONS for v in INVENTORY[fn]} <= set_anywhere
    # The managed webhook's key (SendGrid's answer), then the configured extra key.
    assert default.environment(WEBHOOK)["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == \
        f"{preview.SENDGRID_OUTPUTS['publicKey']},{PUBLIC_KEY}"
    assert default.environment(SENDER)["ENABLED_PLUGINS"] == "bounce,dropped,dynamodb"
    assert default.environment(SENDER)["SENDGRID_API_KEY_PARAMETER"] == f"/{PROJECT}/{STACK}/sendgrid-api-key"


def test_the_api_key_is_never_plaintext(default):
    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    holders = [r for r in default.resources if any(API_KEY in s for s in strings(r.inputs))]
    [parameter, webhook] = sorted(holders, key=lambda r: r.type)  # (aws:ssm... first; registered concurrently)
    assert (parameter.type, parameter.inputs["type"]) == ("aws:ssm/parameter:Parameter", "SecureString")
    # SendGrid's Event Webhook provider gets it as a secret input (delete and refresh call SendGrid with it);
    # the serialized provider itself holds no key.
    assert webhook.type == "pulumi-python:dynamic:Resource"
    assert webhook.inputs["apiKey"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": API_KEY}
    assert API_KEY.encode() not in base64.b64decode(webhook.inputs["__provider"]["value"])
    exports = default.resolved_outputs()
    assert not any(API_KEY in s for s in strings(exports))
    assert default.is_secret("webhookUrl")


def test_outputs(default):
    exports = default.resolved_outputs()
    assert exports["tableNames"]["bounce"] == f"{PROJECT}-{STACK}-bounce"
    assert exports["dlqUrl"].startswith("https://sqs.")


def test_a_plugin_is_deployed_only_when_enabled(program):
    without = program({"plugins": ["bounce", "dropped"]})
    assert "bounce" not in {r.name for r in without.of_type(TABLE)}
    assert not {"TABLE_BOUNCE", "BOUNCE_TTL_DAYS"} & set(without.environment(WEBHOOK))
    assert table_arn("bounce") not in granted(without.policies(WEBHOOK))
    assert without.environment(WEBHOOK)["ENABLED_PLUGINS"] == "bounce,dropped"

    with_it = program({"plugins": ["bounce", "dropped", "dynamodb"], "bounceTtlDays": "90"})
    assert with_it.environment(WEBHOOK)["BOUNCE_TTL_DAYS"] == "90"
    assert granted(with_it.policies(WEBHOOK))[table_arn("bounce")] == {"dynamodb:PutItem"}  # in transactions


INBOUND_PLUGIN = '''
from infra.hookspecs import hookimpl

@hookimpl
def infrastructure(stack):
    import pulumi_aws as aws
    from handlers.functions import Function
    topic = aws.sns.Topic("inbound-topic", kms_master_key_id=stack.kms_key_arn, opts=stack.child_opts())
    stack.add_function(Function("inbound", "plugins_inbound_test.lambda_handler"))
    stack.add_env("inbound", "INBOUND_TOPIC_ARN", topic.arn)
    stack.allow("inbound", ["sns:Publish"], [topic.arn])
    stack.allow_key("inbound")
    stack.add_route("inbound", "inbound-mail-path")
    stack.export("inboundTopic", topic.arn)
'''


@pytest.fixture
def inbound_plugin(tmp_path, monkeypatch):
    package = tmp_path / "plugins_inbound_test"  # a plugin package: nothing at run time, a deploy half
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "deploy.py").write_text(textwrap.dedent(INBOUND_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(manager.BUILTIN_PLUGINS, "inbound", "plugins_inbound_test")
    yield
    for name in ("plugins_inbound_test.deploy", "plugins_inbound_test"):
        sys.modules.pop(name, None)


def test_a_plugin_adds_resources_a_function_and_a_route(program, inbound_plugin):
    made = program({"plugins": ["bounce", "dynamodb", "inbound"]})
    topic = made.one("aws:sns/topic:Topic", "inbound-topic")
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:")
    inbound = made.function("inbound").inputs
    assert inbound["handler"] == "plugins_inbound_test.lambda_handler"
    assert inbound["environment"]["variables"] == {"INBOUND_TOPIC_ARN": topic.outputs["arn"]}
    grants = granted(made.policies("inbound"))
    assert grants[topic.outputs["arn"]] == {"sns:Publish"}
    assert grants[topic.inputs["kmsMasterKeyId"]] == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert not any(r.startswith("arn:aws:dynamodb") for r in grants)
    paths = {r.inputs["pathPart"] for r in made.of_type("aws:apigateway/resource:Resource")}
    assert "inbound-mail-path" in paths and len(paths) == 2
    assert made.is_secret("inboundUrl")
    assert made.resolved_outputs()["inboundUrl"].endswith("/v1/inbound-mail-path")
    assert made.resolved_outputs()["inboundTopic"] == topic.outputs["arn"]


INDEX_PLUGIN = '''
from handlers.hookspecs import hookimpl
from handlers.tables import SENDER, Index, Table

@hookimpl
def register_tables(register):
    register(Table(name="bounce", indexes=(Index("byAddress", "address", "at"),),
                   attribute_types={"at": "N"}, access={SENDER: ("dynamodb:Query",)}))
'''


def test_indexes_and_the_grants_on_them(program, tmp_path, monkeypatch):
    (tmp_path / "plugins_index_test.py").write_text(INDEX_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(manager.BUILTIN_PLUGINS, "byaddress", "plugins_index_test")
    made = program({"plugins": ["bounce", "dynamodb", "byaddress"]})
    bounce = made.table("bounce").inputs
    assert bounce["globalSecondaryIndexes"] == [{
        "name": "byAddress", "projectionType": "ALL",
        "keySchemas": [{"attributeName": "address", "keyType": "HASH"}, {"attributeName": "at", "keyType": "RANGE"}],
    }]
    assert {(a["name"], a["type"]) for a in bounce["attributes"]} == \
        {("fullMessageId", "S"), ("address", "S"), ("at", "N")}
    sender = granted(made.policies(SENDER))
    assert sender[table_arn("bounce")] == sender[table_arn("bounce") + "/index/*"] == {"dynamodb:Query"}
    assert made.environment(SENDER)["TABLE_BOUNCE"] == f"{PROJECT}-{STACK}-bounce"
    sys.modules.pop("plugins_index_test", None)


@pytest.mark.parametrize("config, key", [
    ({"sendgridApiKey": None}, "sendgridApiKey"),
    ({"webhookPublicKeys": None, "manageSendgridWebhook": "false"}, "webhookPublicKeys"),  # set by hand
    ({"webhookPublicKeys": ["not base64!"]}, "webhookPublicKeys"),
    ({"webhookPublicKeys": ["QUJDRA=="]}, "webhookPublicKeys"),
    ({"plugins": ["bounce", "nosuchplugin"]}, "plugins"),
    ({"kmsKey": "mine"}, "kmsKey"),
    ({"logRetentionDays": "42"}, "logRetentionDays"),
    ({"architecture": "sparc"}, "architecture"),
    ({"runtime": "python3.9"}, "runtime"),
    ({"sentLogTtlDays": "-1"}, "sentLogTtlDays"),
    ({"throttleBurstLimit": "lots"}, "throttleBurstLimit"),
    ({"deletionProtection": "yes"}, "deletionProtection"),
    ({"tableNames": ["nosuchtable=abc"]}, "tableNames"),
    ({"tableNames": ["mail_sender"]}, "tableNames"),
    ({"webhookMaxAgeSeconds": "86399"}, "webhookMaxAgeSeconds"),  # below SendGrid's 24 hours of retries
    ({"webhookMaxAgeSeconds": "604801"}, "webhookMaxAgeSeconds"),  # beyond the 7 days of duplicate marks
    ({"webhookMaxAgeSeconds": "-1"}, "webhookMaxAgeSeconds"),
])
def test_bad_config_fails_naming_the_key_before_any_resource(config, key):
    engine = Engine()
    with pytest.raises(ConfigError, match=f"^sendgrid-events:{key}: ") as error:
        run_program(config, engine=engine)
    assert error.value.key == f"sendgrid-events:{key}"
    assert isinstance(error.value, pulumi.RunError)  # the CLI shows its message alone, no traceback
    assert engine.created == []


def test_unsigned_webhooks_only_when_asked(program):
    made = program({"webhookPublicKeys": None, "allowUnsignedWebhooks": "true", "manageSendgridWebhook": "false"})
    assert made.environment(WEBHOOK)["SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE"] == "true"
    assert made.environment(WEBHOOK)["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == ""


@pytest.mark.parametrize("seconds", ["86400", "604800"])
def test_webhook_max_age_bounds_are_accepted(program, seconds):
    assert program({"webhookMaxAgeSeconds": seconds}).environment(WEBHOOK)["SENDGRID_WEBHOOK_MAX_AGE_SECONDS"] == seconds


def test_webhook_max_age_zero_turns_the_check_off_with_a_warning(program, caplog):
    made = program({"webhookMaxAgeSeconds": "0"})
    assert made.environment(WEBHOOK)["SENDGRID_WEBHOOK_MAX_AGE_SECONDS"] == "0"
    [warning] = [r.getMessage() for r in caplog.records if "webhookMaxAgeSeconds" in r.getMessage()]
    assert warning.startswith("sendgrid-events:webhookMaxAgeSeconds is 0: ")
    assert "7-day duplicate check" in warning
    caplog.clear()
    program({"webhookMaxAgeSeconds": "86400"})
    assert not [r for r in caplog.records if "webhookMaxAgeSeconds" in r.getMessage()]


def test_pulumi_yaml_describes_every_config_key_the_program_reads(monkeypatch):
    import yaml

    from tests.infra_program import MAIN

    read = set()
    original = pulumi.Config._get

    def recording(self, key, *args, **kwargs):
        read.add(f"{self.name}:{key}")
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(pulumi.Config, "_get", recording)
    run_program({"plugins": sorted(manager.BUILTIN_PLUGINS)})
    declared = yaml.safe_load((MAIN.parent / "Pulumi.yaml").read_text())["config"]
    for key, spec in declared.items():
        assert spec.get("description"), key
    assert read == {f"{PROJECT}:{key}" for key in declared}
    assert declared["sendgridApiKey"]["secret"] is True


def test_the_string_helper_checks_choices_and_patterns_naming_the_key():
    from infra.config import string

    class Config:
        def __init__(self, **values):
            self.values = values

        def get(self, key):
            return self.values.get(key)

    assert string(Config(), "k", "dflt") == "dflt"
    assert string(Config(k="b"), "k", "a", choices=("a", "b")) == "b"
    with pytest.raises(ConfigError, match=r"^sendgrid-events:k: must be one of a, b, not 'c'$"):
        string(Config(k="c"), "k", "a", choices=("a", "b"))
    assert string(Config(k="mail.example.com"), "k", "", pattern=r"[a-z.]+") == "mail.example.com"
    with pytest.raises(ConfigError, match=r"^sendgrid-events:k: must be a host name, not 'Bad Host'$"):
        string(Config(k="Bad Host"), "k", "", pattern=r"[a-z.]+", what="a host name")
