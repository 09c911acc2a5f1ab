"""The Pulumi CLI's project-config rules (``infra.stackconfig``), on small project and stack files.

The failure messages are the CLI's: those its own tests quote (the project
and stack config tests) are checked word for word.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from pathlib import Path

import pytest
from pulumi.runtime import rpc

from handlers import manager
from infra import offline, passphrase, preview, stackconfig
from infra.configvalues import load_yaml
from infra.stackconfig import SECRET_PLACEHOLDER, StackConfigError
from tests.infra_program import PUBLIC_KEY, Program

ROOT = Path(__file__).resolve().parent.parent
CIPHERTEXT = "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
DEV_PASSPHRASE = "sendgrid-events-example"  # as Pulumi.dev.yaml's comment says


@pytest.fixture
def resolve(tmp_path):
    """``resolve(project_config, stack_config)``: both YAML texts (the ``config:`` blocks), as the program gets them."""
    def run(project: str, stack: str | None = "", name: str = "test"):
        (tmp_path / "Pulumi.yaml").write_text(f"name: {name}\nruntime: python\nconfig:\n"
                                              + textwrap.indent(textwrap.dedent(project), "  "))
        if stack is not None:
            (tmp_path / "Pulumi.dev.yaml").write_text("config:\n" + textwrap.indent(textwrap.dedent(stack), "  "))
        return stackconfig.load(tmp_path, "dev")
    return run


def refused(resolve, project: str, stack: str = "") -> str:
    with pytest.raises(StackConfigError) as error:
        resolve(project, stack)
    return str(error.value)


# --- a key without default must be set ---------------------------------------------------------

def test_a_typed_key_without_default_must_be_set(resolve):
    project = """
        values: {type: array, items: {type: string}}
        another: {type: string}
        hello: {type: integer}
        world: {type: boolean, description: no default either}
        optional: {type: string, default: x}
    """
    assert refused(resolve, project) == ("validating stack config: Stack 'dev' is missing configuration values "
                                         "'another', 'hello', 'values' and 'world'")
    assert refused(resolve, project, "test:values: [a]\ntest:hello: 1\ntest:world: true") == \
        "validating stack config: Stack 'dev' is missing configuration value 'another'"
    assert refused(resolve, project, "test:another: b\ntest:hello: 1") == \
        "validating stack config: Stack 'dev' is missing configuration values 'values' and 'world'"


def test_an_untyped_key_without_default_must_be_set_too(resolve):
    assert refused(resolve, "untyped: {description: only described}") == \
        "validating stack config: Stack 'dev' is missing configuration value 'untyped'"


def test_a_missing_stack_file_is_an_empty_stack(resolve):
    assert resolve("optional: {type: integer, default: 3}", stack=None).values == {"test:optional": "3"}
    assert "missing configuration value 'required'" in refused(resolve, "required: {type: string}", None)


# --- set values must match their type -----------------------------------------------------------

@pytest.mark.parametrize("declared, value, type_name", [
    ("{type: integer}", "abc", "integer"),
    ("{type: integer}", "1.5", "integer"),
    ("{type: integer}", "true", "integer"),
    ("{type: boolean}", "yes", "boolean"),  # YAML 1.2 (the CLI's yaml.v3): a string, not a boolean
    ("{type: boolean}", "1", "boolean"),
    ("{type: array, items: {type: string}}", "[1, 2]", "array<string>"),
    ("{type: array, items: {type: string}}", "just-one", "array<string>"),
    ("{type: array, items: {type: integer}}", "[1, two]", "array<integer>"),
    ("{type: array, items: {type: array, items: {type: string}}}", "[a]", "array<array<string>>"),
    ("{type: object}", "[a]", "object"),
    ("{type: string}", "{a: 1}", "string"),
])
def test_a_set_value_must_match_its_type(resolve, declared, value, type_name):
    assert refused(resolve, f"key: {declared}", f"test:key: {value}") == \
        f"validating stack config: Stack 'dev' with configuration key 'key' must be of type '{type_name}'"


@pytest.mark.parametrize("declared, value, handed", [
    ("{type: integer}", "42", "42"),
    ("{type: integer}", "'42'", "42"),  # a string that parses as an integer
    ("{type: integer}", "4.0", "4"),  # a whole number (as Go's JSON writes it)
    ("{type: boolean}", "True", "true"),
    ("{type: boolean}", "'false'", "false"),
    ("{type: string}", "42", "42"),  # stack values are strings to the CLI
    ("{type: string}", "2026-01-01", "2026-01-01"),  # no timestamps in YAML 1.2
    ("{type: array, items: {type: string}}", "[b, a]", '["b","a"]'),
    ("{type: array, items: {type: integer}}", "[1, '2']", '[1,"2"]'),
    ("{type: array, items: {type: boolean}}", "[true, 'false']", '[true,"false"]'),
    ("{type: object}", "{b: 1, a: [x, '<&>']}", '{"a":["x","\\u003c\\u0026\\u003e"],"b":1}'),
])
def test_values_matching_their_type_reach_the_program_as_the_cli_writes_them(resolve, declared, value, handed):
    assert resolve(f"key: {declared}", f"test:key: {value}").values == {"test:key": handed}


# --- secrets ---------------------------------------------------------------------------------------

def test_a_secret_key_must_be_encrypted(resolve):
    project = "apiKey: {type: string, secret: true}"
    assert refused(resolve, project, "test:apiKey: SG.plain") == \
        "validating stack config: Stack 'dev' with configuration key 'apiKey' must be encrypted as it's secret"
    config = resolve(project, f"test:apiKey:\n  secure: {CIPHERTEXT}")
    assert config.values == {"test:apiKey": SECRET_PLACEHOLDER}
    assert config.secret_keys == ("test:apiKey",)
    assert CIPHERTEXT not in repr(config)


def test_a_secret_key_with_a_default_is_refused_as_the_cli_does(resolve):
    # The CLI applies the default, plain, then finds the secret key not encrypted.
    assert refused(resolve, "apiKey: {type: string, secret: true, default: x}").endswith(
        "configuration key 'apiKey' must be encrypted as it's secret")


def test_any_key_may_be_secure_and_a_nested_secret_makes_the_whole_key_secret(resolve):
    config = resolve("", f"test:undeclared:\n  secure: {CIPHERTEXT}\n"
                         f"test:list:\n  - plain\n  - secure: {CIPHERTEXT}\n")
    assert config.values == {"test:undeclared": SECRET_PLACEHOLDER, "test:list": '["plain","[secret]"]'}
    assert config.secret_keys == ("test:list", "test:undeclared")


def test_a_secure_value_is_not_type_checked_offline(resolve):
    # The CLI checks the decrypted value; without the passphrase it is unknown here.
    assert resolve("port: {type: integer}", f"test:port:\n  secure: {CIPHERTEXT}").values == \
        {"test:port": SECRET_PLACEHOLDER}


# --- defaults ---------------------------------------------------------------------------------------

def test_defaults_are_applied_as_the_cli_writes_them(resolve):
    config = resolve("""
        name: {type: string, default: hello}
        count: {type: integer, default: 42}
        flag: {type: boolean, default: false}
        empty: {type: array, items: {type: string}, default: []}
        names: {type: array, items: {type: string}, default: [b, a]}
        ratio: {type: integer, default: 2.0}
        set: {type: integer, default: 1}
        shorthand: t3.micro
        aws:region: us-west-2
    """, "test:set: 7")
    assert config.values == {"test:name": "hello", "test:count": "42", "test:flag": "false", "test:empty": "[]",
                             "test:names": '["b","a"]', "test:ratio": "2", "test:set": "7",
                             "test:shorthand": "t3.micro", "aws:region": "us-west-2"}
    assert config.secret_keys == ()


def test_a_default_must_match_its_type(resolve, tmp_path):
    message = refused(resolve, "instanceSize: {type: integer, default: hello}")
    assert message == (f"could not unmarshal '{tmp_path / 'Pulumi.yaml'}': The default value specified for "
                       "configuration key 'instanceSize' is not of the expected type 'integer'")
    assert refused(resolve, "values: {type: array, items: {type: array, items: {type: string}}, default: [hello]}") \
        .endswith("The default value specified for configuration key 'values' is not of the expected type "
                  "'array<array<string>>'")


def test_an_array_needs_items_and_a_key_not_both_default_and_value(resolve):
    assert refused(resolve, "instanceSize: {type: array, default: [t3.micro]}").endswith(
        "The configuration key 'instanceSize' declares an array "
        "but does not specify the underlying type via the 'items' attribute")
    assert refused(resolve, "instanceSize: {type: string, default: t3.micro, value: t4.large}").endswith(
        "project config 'instanceSize' cannot have both a 'default' and 'value' attribute")


def test_declarations_are_checked_against_the_schema(resolve):
    assert refused(resolve, "size: {type: float}").endswith(
        '#/config/size/type: value must be one of "string", "integer", "boolean", "array", "object"')
    assert "#/config/size: 'defualt' not allowed" in refused(resolve, "size: {type: string, defualt: x}")
    assert refused(resolve, "size: {type: array, items: {description: x}}").endswith(
        "#/config/size/items: missing properties: 'type'")


# --- other namespaces ---------------------------------------------------------------------------------

def test_a_key_of_another_namespace_carries_a_value_and_neither_type_nor_default(resolve):
    assert refused(resolve, "aws:region: {type: string, value: us-west-1}").endswith(
        "Configuration key 'aws:region' is not namespaced by the project and should not define a type")
    message = refused(resolve, "aws:region: {default: us-west-1}")
    assert "Configuration key 'aws:region' is not namespaced by the project and should not define a default value" \
        in message and "Did you mean to use the 'value' attribute instead of 'default'?" in message
    assert refused(resolve, "aws:region: {description: where}").endswith(
        "Configuration key 'aws:region' is namespaced and must provide an attribute 'value'")
    assert resolve("aws:region: {value: us-west-1}", "aws:region: eu-west-1").values == {"aws:region": "eu-west-1"}


def test_the_project_namespace_may_be_written_out(resolve):
    assert refused(resolve, "test:count: {type: integer}") == \
        "validating stack config: Stack 'dev' is missing configuration value 'test:count'"
    assert resolve("test:count: {type: integer}", "count: 3").values == {"test:count": "3"}


# --- the stack file -------------------------------------------------------------------------------------

def test_undeclared_keys_of_the_project_namespace_are_accepted_and_handed_through(resolve):
    config = resolve("declared: {type: string, default: d}", "test:thirdPartyKey: [x]\nplainKey: 5\nother:key: 1")
    assert config.values == {"test:declared": "d", "test:thirdPartyKey": '["x"]', "test:plainKey": "5",
                             "other:key": "1"}


def test_a_null_value_is_the_empty_string_with_the_clis_warning(resolve):
    config = resolve("", "test:a:\ntest:b: ~")
    assert config.values == {"test:a": "", "test:b": ""}
    [warning] = config.warnings
    assert warning.startswith('No value for configuration keys "test:a" and "test:b". '
                              'This is currently treated as an empty string `""`')


def test_a_key_given_twice_or_malformed_is_refused(resolve, tmp_path):
    assert refused(resolve, "", "test:a: 1\ntest:a: 2").endswith(
        'line 3: mapping key "test:a" already defined at line 2')
    assert refused(resolve, "", "a:b:c: 1") == ("could not unmarshal map: could not parse a:b:c as a configuration "
                                               "key (configuration keys should be of the form `<namespace>:<name>`)")
    assert resolve("", "aws:config:region: x").values == {"aws:region": "x"}  # the old form


def test_a_stack_importing_esc_environments_is_refused_offline(resolve, tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: test\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("environment:\n  - myorg/prod\n")
    with pytest.raises(StackConfigError, match="imports ESC environments"):
        stackconfig.load(tmp_path, "dev")


def test_the_project_file_needs_a_name(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("runtime: python\n")
    with pytest.raises(StackConfigError, match="project is missing a 'name' attribute"):
        stackconfig.load(tmp_path, "dev")


def test_stack_files_live_in_stack_config_dir(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: test\nruntime: python\nstackConfigDir: stacks\n"
                                          "config:\n  size: {type: integer}\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text("config:\n  test:size: 3\n")
    assert stackconfig.load(tmp_path, "dev").values == {"test:size": "3"}


# --- the project's own stacks -----------------------------------------------------------------------

def readme_stack(section: str = "\n## Deploy\n", end: str = "\n## ") -> dict:
    """The stack file a user following a README section (default: Deploy) gets: its ``pulumi config set`` lines."""
    deploy = (ROOT / "README.md").read_text().split(section, 1)[1].split(end, 1)[0]
    config: dict = {}
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", deploy, re.M | re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:3] != ["pulumi", "config", "set"]:
                continue
            key, value = [w for w in words[3:] if not w.startswith("--")]
            value = {"secure": CIPHERTEXT} if "--secret" in words else value
            path = re.fullmatch(r"(.+)\[(\d+)\]", key) if "--path" in words else None
            if path:
                items = config.setdefault(path[1], [])
                assert int(path[2]) == len(items), f"the README sets {key} before the items above it"
                items.append(value)
            else:
                config[key] = value
    return config


def resolve_real(config: dict, stack: str = "prod") -> stackconfig.ProgramConfig:
    """``config`` (a stack file's ``config:``) against the real Pulumi.yaml."""
    project = stackconfig.load_project(ROOT / stackconfig.PROJECT_FILE)
    return stackconfig.resolve(project, stackconfig.parse_stack(project, stack, {"config": config}, ROOT))


def test_the_readmes_deploy_section_makes_a_stack_the_cli_accepts():
    stack = readme_stack()
    assert set(stack) >= {"aws:region", "sendgrid-events:sendgridApiKey"}
    assert "sendgrid-events:webhookPublicKeys" not in stack  # no key copied from SendGrid's console
    handed = resolve_real(stack)
    assert handed.secret_keys == ("sendgrid-events:sendgridApiKey",)
    assert handed.values["sendgrid-events:sendgridApiKey"] == SECRET_PLACEHOLDER
    assert handed.values["sendgrid-events:manageSendgridWebhook"] == "true"  # a default applied
    assert handed.values["sendgrid-events:webhookMaxAgeSeconds"] == "259200"


def test_the_readmes_manual_flow_sets_the_switch_and_the_verification_key():
    manual = readme_stack("\n### Configuring SendGrid by hand", "\n## ")
    handed = resolve_real({**readme_stack(), **manual})
    assert handed.values["sendgrid-events:manageSendgridWebhook"] == "false"
    assert len(json.loads(handed.values["sendgrid-events:webhookPublicKeys"])) == 1


def test_the_readmes_minimal_stack_without_the_api_key_is_refused():
    stack = {k: v for k, v in readme_stack().items() if k != "sendgrid-events:sendgridApiKey"}
    with pytest.raises(StackConfigError, match="^validating stack config: Stack 'prod' is missing configuration "
                                               "value 'sendgridApiKey'$"):
        resolve_real(stack)


def test_the_example_stack_passes_and_its_api_key_is_an_encrypted_placeholder():
    handed = stackconfig.load(ROOT, "dev")
    assert handed.secret_keys == ("sendgrid-events:sendgridApiKey",)
    assert handed.values["sendgrid-events:sendgridApiKey"] == SECRET_PLACEHOLDER
    assert handed.values["sendgrid-events:logRetentionDays"] == "14"
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    assert f'passphrase "{DEV_PASSPHRASE}"' in text
    stack = load_yaml(text)
    key = passphrase.key_from_state(DEV_PASSPHRASE, stack["encryptionsalt"])
    assert passphrase.decrypt(key, stack["config"]["sendgrid-events:sendgridApiKey"]["secure"]) == "SG.replace-me"


def test_a_stack_with_every_builtin_plugin_passes_and_the_program_makes_it():
    stack = {"aws:region": "eu-west-1", "sendgridApiKey": {"secure": CIPHERTEXT}, "webhookPublicKeys": [PUBLIC_KEY],
             "plugins": list(manager.BUILTIN_PLUGINS), "inboundPublicKeys": [PUBLIC_KEY], "snsEmails": ["ops@example.com"]}
    handed = resolve_real(stack, "all")  # (keys without a namespace get the project's)
    made = Program(**vars(offline.run(handed.values, preview.Engine(region="eu-west-1"), stack="all",
                                      secret_keys=handed.secret_keys)))
    for typ, name in [("aws:sns/topic:Topic", "sns-notify"), ("aws:s3/bucket:Bucket", "inbound-mail"),
                      ("aws:dynamodb/table:Table", "event-history"),
                      ("aws:lambda/function:Function", "sendgrid-events-all-inbound")]:
        made.one(typ, name)  # each plugin's infrastructure
    [parameter] = made.of_type("aws:ssm/parameter:Parameter")
    assert rpc.is_rpc_secret(parameter.inputs["value"])  # the program got the key's placeholder, as a secret
    assert rpc.unwrap_rpc_secret(parameter.inputs["value"]) == SECRET_PLACEHOLDER
    environment = made.one("aws:lambda/function:Function", "sendgrid-events-all-webhook").inputs["environment"]
    assert environment["variables"]["ENABLED_PLUGINS"] == ",".join(manager.BUILTIN_PLUGINS)
    assert made.is_secret("webhookUrl") and made.is_secret("inboundUrl")
    assert re.match(r"https://[^./]+\.execute-api\.eu-west-1\.amazonaws\.com/v1/", made.resolved_outputs()["webhookUrl"])


def test_a_third_party_plugins_keys_need_no_declaration():
    handed = resolve_real({"sendgrid-events:sendgridApiKey": {"secure": CIPHERTEXT},
                           "sendgrid-events:plugins": ["bounce", "dynamodb", "jsonlog"],
                           "sendgrid-events:jsonlogEvents": "bounce,dropped", "jsonlogLevel": 2})
    assert handed.values["sendgrid-events:jsonlogEvents"] == "bounce,dropped"
    assert handed.values["sendgrid-events:jsonlogLevel"] == "2"
    assert handed.values["sendgrid-events:plugins"] == '["bounce","dynamodb","jsonlog"]'
