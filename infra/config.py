"""The stack config, read and checked before any resource is made.

Every key lives in the ``sendgrid-events`` namespace and is described in
``Pulumi.yaml``. ``load`` returns a ``Settings`` or raises ``ConfigError``
whose message starts with the full key name (``sendgrid-events:<key>``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pluggy
import pulumi

from handlers import delivery, env, manager, signature
from infra import deploy
from infra.sendgrid_client import DEFAULT_BASE_URL

NAMESPACE = "sendgrid-events"

ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda name -> manylinux name
RUNTIMES = ("python3.12", "python3.13")
# The values CloudWatch Logs accepts for a log group's retention (0 = never expire).
LOG_RETENTION_DAYS = (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                      1096, 1827, 2192, 2557, 2922, 3288, 3653)
KMS_CREATE = "create"
KMS_AWS_OWNED = "aws-owned"
KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+$")
TABLE_PREFIX = re.compile(r"^[A-Za-z0-9_.-]*$")
DEFAULT_TABLE_PREFIX = "{project}-{stack}-"  # placeholders: the project and stack names
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# webhookMaxAgeSeconds: 0 (no check) or within these bounds. SendGrid retries a batch for 24 hours,
# possibly with the first attempt's signature, so a shorter window could refuse a genuine retry;
# processed events are remembered 7 days, so a longer one could let a replay through once its
# duplicate mark has expired.
WEBHOOK_MAX_AGE_MIN = 86400
WEBHOOK_MAX_AGE_MAX = delivery.REMEMBER_SECONDS
# ingest: how a webhook post reaches the function; the first is the default (infra/ingest.py, README "Deploy").
INGEST_MODES = ("queue", "direct")
# sendgridApiBaseUrl: SendGrid's API (https), or a local stand-in's (http on a loopback address).
API_BASE_URL = re.compile(r"^(https://[A-Za-z0-9.-]+|http://(127\.0\.0\.1|localhost)(:\d+)?)/?$")


class ConfigError(pulumi.RunError, ValueError):
    """A stack config value is missing or invalid; the message names the key.

    A ``pulumi.RunError``: the CLI's Python host shows the message alone (other
    exceptions come with "Program failed with an unhandled exception" and a traceback).
    """

    def __init__(self, key: str, problem: str):
        super().__init__(f"{NAMESPACE}:{key}: {problem}")
        self.key = f"{NAMESPACE}:{key}"


@dataclass(frozen=True)
class Settings:
    api_key: pulumi.Output[str]
    webhook_public_keys: tuple[str, ...]
    """Configured keys: with ``manage_sendgrid``, extra ones (a rotation) besides the managed webhook's."""
    manage_sendgrid: bool
    """Whether the program creates the Event Webhook (and Inbound Parse) through SendGrid's API."""
    sendgrid_api_base_url: str
    webhook_key_version: int
    """Bumping it makes SendGrid sign the managed webhook with a new key (a rotation)."""
    allow_unsigned_webhooks: bool
    webhook_max_age_seconds: int
    plugins: tuple[str, ...]
    kms_key: str  # KMS_CREATE, KMS_AWS_OWNED or a key ARN
    table_prefix: str
    table_names: dict[str, str]
    deletion_protection: bool
    point_in_time_recovery: bool
    sent_log_ttl_days: int
    log_retention_days: int
    architecture: str
    runtime: str
    throttle_rate_limit: int
    throttle_burst_limit: int
    stream_max_retries: int
    stream_max_record_age_seconds: int
    ingest: str
    """How webhook posts reach the function: ``queue`` (through SQS, ``infra.ingest``) or ``direct``."""
    plugin_settings: dict[str, Any]
    """Enabled plugin name -> what its ``stack_settings`` hook returned (its own keys, checked)."""
    operations: Any = None
    """Alarms and access logs: ``infra.operations.OperationsSettings``."""
    enabled: manager.Plugins | None = field(default=None, compare=False, repr=False)
    """The enabled plugins, built once (their tables, their hooks) for the whole program."""
    deploy: pluggy.PluginManager | None = field(default=None, compare=False, repr=False)
    """Their deploy halves (``infra.deploy``): ``stack_settings`` and ``infrastructure``."""

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")

    @property
    def platform_arch(self) -> str:
        return ARCHITECTURES[self.architecture]


def _raw(config: pulumi.Config, key: str) -> str | None:
    return config.get(key)


def _json(config: pulumi.Config, key: str, default: Any) -> Any:
    value = _raw(config, key)
    if value is None:
        return default
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(key, f"not valid JSON/YAML structured config: {value!r}") from None


def boolean(config: pulumi.Config, key: str, default: bool) -> bool:
    """``true`` or ``false`` (any case); anything else is a ``ConfigError`` (also for plugins' keys)."""
    value = _raw(config, key)
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(key, f"must be true or false, not {value!r}")


def integer(config: pulumi.Config, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer config value within bounds (also for plugins' own keys)."""
    value = _raw(config, key)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(key, f"must be an integer, not {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(key, f"must be {bound}, not {number}")
    return number


def string(config: pulumi.Config, key: str, default: str, *, choices: tuple[str, ...] = (),
           pattern: str | None = None, what: str = "") -> str:
    """A string config value (also for plugins' keys): one of ``choices``, or matching ``pattern``
    (a regular expression; ``what`` says in words what it must look like), else a ``ConfigError``."""
    value = _raw(config, key)
    value = default if value is None else value
    if choices and value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}, not {value!r}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ConfigError(key, f"must be {what or f'like {pattern}'}, not {value!r}")
    return value


def string_list(config: pulumi.Config, key: str, default: list[str]) -> list[str]:
    """A list of strings (structured config, ``--path 'key[0]'``; also for plugins' keys)."""
    value = _json(config, key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, f"must be a list of strings, not {value!r}")
    return value


def check_public_key(key: str) -> str:
    """SendGrid's verification key: base64 of an ECDSA P-256 public key (DER)."""
    text = "".join(key.split())
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if signature.p256_point(der) is None:
        raise ValueError("not an ECDSA P-256 public key (SendGrid's 'Verification Key')")
    return text


def public_keys(config: pulumi.Config, key: str) -> tuple[str, ...]:
    """Checked public keys (see ``check_public_key``): a list, or one string of comma-separated keys."""
    raw = _raw(config, key)
    values = _json(config, key, []) if raw and raw.lstrip().startswith("[") else (raw.split(",") if raw else [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(key, "must be a list of base64 public keys")
    keys = []
    for i, value in enumerate(v for v in values if v.strip()):
        try:
            keys.append(check_public_key(value))
        except ValueError as exc:
            raise ConfigError(key, f"key #{i + 1}: {exc}") from None
    return tuple(keys)


def _webhook_public_keys(config: pulumi.Config, allow_unsigned: bool, managed: bool) -> tuple[str, ...]:
    keys = public_keys(config, "webhookPublicKeys")
    if not keys and not allow_unsigned and not managed:
        raise ConfigError("webhookPublicKeys", "is required: the public key(s) of SendGrid's signed Event "
                                               f"Webhook (or set {NAMESPACE}:allowUnsignedWebhooks true to "
                                               "accept unsigned posts), since "
                                               f"{NAMESPACE}:manageSendgridWebhook is false")
    return keys


def _api_base_url(config: pulumi.Config) -> str:
    url = _raw(config, "sendgridApiBaseUrl") or DEFAULT_BASE_URL
    if not API_BASE_URL.match(url):
        raise ConfigError("sendgridApiBaseUrl", f"must be an https:// base URL such as {DEFAULT_BASE_URL} "
                                                f"(or https://api.eu.sendgrid.com), not {url!r}")
    return url.rstrip("/")


def _webhook_max_age(config: pulumi.Config) -> int:
    """0 (no age check, with a warning) or between ``WEBHOOK_MAX_AGE_MIN`` and ``WEBHOOK_MAX_AGE_MAX``."""
    key = "webhookMaxAgeSeconds"
    seconds = integer(config, key, int(env.SENDGRID_WEBHOOK_MAX_AGE_SECONDS.default))
    if seconds == 0:
        pulumi.log.warn(f"{NAMESPACE}:{key} is 0: signatures of any age are accepted, so a replayed post "
                        f"is only stopped by the {WEBHOOK_MAX_AGE_MAX // 86400}-day duplicate check")
    elif not WEBHOOK_MAX_AGE_MIN <= seconds <= WEBHOOK_MAX_AGE_MAX:
        raise ConfigError(key, f"must be 0 (no age check) or between {WEBHOOK_MAX_AGE_MIN} (SendGrid retries "
                               f"for 24 hours) and {WEBHOOK_MAX_AGE_MAX} (processed events are remembered "
                               f"{WEBHOOK_MAX_AGE_MAX // 86400} days), not {seconds}")
    return seconds


def _table_prefix(config: pulumi.Config) -> str:
    """``tablePrefix`` (default ``DEFAULT_TABLE_PREFIX``) with ``{project}`` and ``{stack}`` replaced."""
    prefix = _raw(config, "tablePrefix")
    prefix = DEFAULT_TABLE_PREFIX if prefix is None else prefix
    return prefix.replace("{project}", pulumi.get_project()).replace("{stack}", pulumi.get_stack())


def _plugins(config: pulumi.Config) -> manager.Plugins:
    names = string_list(config, "plugins", list(manager.DEFAULT_PLUGINS))
    try:
        return manager.build(names, source="the stack's plugin list")
    except manager.PluginError as exc:
        raise ConfigError("plugins", str(exc)) from None


def _kms_key(config: pulumi.Config) -> str:
    value = _raw(config, "kmsKey") or KMS_CREATE
    if value in (KMS_CREATE, KMS_AWS_OWNED) or KMS_ARN.match(value):
        return value
    raise ConfigError("kmsKey", f"must be {KMS_CREATE!r}, {KMS_AWS_OWNED!r} or a KMS key ARN, not {value!r}")


def _table_names(config: pulumi.Config) -> dict[str, str]:
    """``["mail_sender=testMailSender", ...]``: logical table name = DynamoDB table name."""
    names = {}
    for entry in string_list(config, "tableNames", []):
        logical, sep, physical = entry.partition("=")
        if not sep or not TABLE_NAME.match(physical.strip()):
            raise ConfigError("tableNames", f"{entry!r} is not '<table>=<DynamoDB table name>' "
                                            "(3-255 letters, digits, '_', '-', '.')")
        names[logical.strip()] = physical.strip()
    return names


def load(config: pulumi.Config | None = None) -> Settings:
    """Read and check the whole stack config; raises ``ConfigError`` naming the key."""
    config = config or pulumi.Config(NAMESPACE)
    if config.get("sendgridApiKey") is None:
        raise ConfigError("sendgridApiKey", "is required: a SendGrid API key with Mail Send permission "
                                            f"(pulumi config set --secret {NAMESPACE}:sendgridApiKey SG....)")
    allow_unsigned = boolean(config, "allowUnsignedWebhooks", False)
    managed = boolean(config, "manageSendgridWebhook", True)
    prefix = _table_prefix(config)
    if not TABLE_PREFIX.match(prefix):
        raise ConfigError("tablePrefix", f"may hold only letters, digits, '_', '-', '.', not {prefix!r}")
    enabled = _plugins(config)  # built once for the whole program: Settings.enabled
    deploy_halves = deploy.build(enabled)
    table_names = _table_names(config)
    known_tables = enabled.tables
    unknown = sorted(set(table_names) - set(known_tables))
    if unknown:
        raise ConfigError("tableNames", f"unknown table(s) {', '.join(unknown)}; "
                                        f"tables of this stack: {', '.join(known_tables)}")
    return Settings(
        api_key=config.require_secret("sendgridApiKey"),
        webhook_public_keys=_webhook_public_keys(config, allow_unsigned, managed),
        manage_sendgrid=managed,
        sendgrid_api_base_url=_api_base_url(config),
        webhook_key_version=integer(config, "webhookKeyVersion", 1, minimum=1),
        allow_unsigned_webhooks=allow_unsigned,
        webhook_max_age_seconds=_webhook_max_age(config),
        plugins=enabled.names,
        enabled=enabled,
        kms_key=_kms_key(config),
        table_prefix=prefix,
        table_names=table_names,
        deletion_protection=boolean(config, "deletionProtection", True),
        point_in_time_recovery=boolean(config, "pointInTimeRecovery", True),
        sent_log_ttl_days=integer(config, "sentLogTtlDays", 400),
        log_retention_days=_log_retention(config),
        architecture=string(config, "architecture", "arm64", choices=tuple(ARCHITECTURES)),
        runtime=string(config, "runtime", "python3.12", choices=RUNTIMES),
        throttle_rate_limit=integer(config, "throttleRateLimit", 50, minimum=1),
        throttle_burst_limit=integer(config, "throttleBurstLimit", 100, minimum=1),
        stream_max_retries=integer(config, "streamMaximumRetryAttempts", 5, minimum=0, maximum=10000),
        stream_max_record_age_seconds=integer(config, "streamMaximumRecordAgeSeconds", 86400,
                                              minimum=60, maximum=604800),
        ingest=string(config, "ingest", INGEST_MODES[0], choices=INGEST_MODES),
        plugin_settings=plugin_settings(config, deploy_halves),
        deploy=deploy_halves,
        operations=_operations(config),
    )


def _operations(config: pulumi.Config):
    from infra import operations  # it builds on this module's readers

    return operations.settings(config)


def plugin_settings(config: pulumi.Config, pm: pluggy.PluginManager) -> dict[str, Any]:
    """Each enabled plugin's keys, read and checked by its ``stack_settings`` hook: name -> its value.

    ``pm``: the plugins' deploy halves (``infra.deploy.build``). Called plugin by
    plugin (through the hook caller, so hook tracing sees it) to know whose
    value is whose; a plugin without the hook has no entry.
    """
    settings = {}
    for impl in pm.hook.stack_settings.get_hookimpls():
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        results = pm.subset_hook_caller("stack_settings", others)(config=config)
        settings[impl.plugin_name] = results[0] if results else None  # pluggy drops None results
    return settings


def _log_retention(config: pulumi.Config) -> int:
    days = integer(config, "logRetentionDays", 30)
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError("logRetentionDays", f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}, not {days}")
    return days
