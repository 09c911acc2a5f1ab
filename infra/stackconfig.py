"""The Pulumi CLI's project-config rules, offline: what ``pulumi up`` checks before the program runs.

``load(root, stack)`` reads ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``, applies
the rules and returns the config exactly as the CLI hands it to the program
(``namespace:key`` -> string, project defaults applied) and the secret keys; a
project or stack the CLI would refuse raises ``StackConfigError`` with the
CLI's message. Mirrored from the CLI's Go code (function names given):

- loading: ``LoadProjectBytes`` (shorthand config values, ``config:`` as a
  folder), ``LoadProjectStackBytes`` (stack keys without a namespace get the
  project's, a null value is the empty string);
- the project: ``Project.Validate`` (an array type needs ``items``; a default
  must match its type; a key of another namespace, like ``aws:region``, carries
  neither type nor default but a ``value``), ``ValidateConfigValue``,
  ``InferFullTypeName``;
- the stack: ``ValidateStackConfigAndApplyProjectConfig`` (a project key
  without default or value must be set; a ``secret: true`` value must be
  ``secure:``; a set value must match its type; defaults applied);
- keys and values: ``config.ParseKey``, ``config.Value`` (``infra.configvalues``),
  ``config.Map.Decrypt``.

Keys of the project's namespace that Pulumi.yaml does not declare (a
third-party plugin's) are accepted and handed through, as the CLI does.
Secure values cannot be decrypted without the stack's secrets provider: the
program gets ``SECRET_PLACEHOLDER`` (what the CLI's blinding crypter shows) and
their type is not checked. Not mirrored: ESC environments (a stack importing
one is refused here) and the JSON schema of the rest of Pulumi.yaml (only its
config declarations are checked, with messages in its form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.configvalues import Value, YamlError, load_yaml

PROJECT_FILE = "Pulumi.yaml"
SECRET_PLACEHOLDER = "[secret]"
TYPES = ("string", "integer", "boolean", "array", "object")
DECLARATION_ATTRIBUTES = ("default", "description", "items", "secret", "type", "value")
_UNKNOWN = object()  # a secure value's content: cannot be type-checked offline


class StackConfigError(Exception):
    """The CLI would refuse the project or the stack; the message is the CLI's."""


@dataclass(frozen=True)
class ItemsType:
    """``ProjectConfigItemsType``: an array's item type."""

    type: str
    items: ItemsType | None = None


@dataclass(frozen=True)
class Declaration:
    """``ProjectConfigType``: one key of Pulumi.yaml's ``config`` (None: not given)."""

    type: str | None = None
    items: ItemsType | None = None
    description: str = ""
    default: Any = None
    value: Any = None
    secret: bool = False

    @property
    def type_name(self) -> str:
        """``InferFullTypeName``: ``string``, ``array<string>``, ..."""
        return _full_type_name(self.type or "", self.items)


@dataclass(frozen=True)
class Project:
    name: str
    config: dict[str, Declaration]
    """As written in Pulumi.yaml: ``key`` or ``namespace:key``."""
    root: Path
    stack_config_dir: str = ""

    def stack_file(self, stack: str) -> Path:
        return self.root / self.stack_config_dir / f"Pulumi.{stack}.yaml"


@dataclass(frozen=True)
class Stack:
    name: str
    config: dict[str, Value]
    """``namespace:key`` -> value, as in the stack file."""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgramConfig:
    """The config as the CLI hands it to the program."""

    values: dict[str, str]
    secret_keys: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def load(root: Path, stack: str) -> ProgramConfig:
    """``root``'s Pulumi.yaml and the stack's file, checked, as the program gets them."""
    project = load_project(root / PROJECT_FILE)
    return resolve(project, load_stack(project, stack))


# --- Pulumi.yaml --------------------------------------------------------------------------------


def load_project(path: Path) -> Project:
    """``LoadProject``: read, check the config declarations, rewrite shorthand values, ``Validate``."""
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, YamlError) as exc:
        raise StackConfigError(f"could not read '{path}': {exc}") from None
    return parse_project(raw, path)


def parse_project(raw: Any, path: Path) -> Project:
    if not isinstance(raw, dict):
        raise StackConfigError(f"could not validate '{path}': expected project to be an object")
    if "name" not in raw:
        raise StackConfigError(f"could not validate '{path}': project is missing a 'name' attribute")
    if not isinstance(raw["name"], str) or not raw["name"]:
        raise StackConfigError(f"could not validate '{path}': project is missing a non-empty string 'name' attribute")
    name, config, stack_config_dir = raw["name"], raw.get("config"), raw.get("stackConfigDir") or ""
    if isinstance(config, str):  # RewriteConfigPathIntoStackConfigDir
        if stack_config_dir:
            raise StackConfigError("Should not use both config and stackConfigDir to define the stack directory. "
                                   "Use only stackConfigDir instead.")
        config, stack_config_dir = None, config
    if not isinstance(config or {}, dict):
        raise StackConfigError(f"could not validate '{path}': #/config: expected object or string")
    declarations = {key: _declaration(name, key, spec, path) for key, spec in (config or {}).items()}
    for key, declaration in declarations.items():
        problem = _invalid(name, key, declaration)
        if problem:
            raise StackConfigError(f"could not unmarshal '{path}': {problem}")
    return Project(name, declarations, path.parent, stack_config_dir)


def _declaration(project: str, key: str, spec: Any, path: Path) -> Declaration:
    """``RewriteShorthandConfigValues`` and the schema's ``configTypeDeclaration``."""
    where = f"could not validate '{path}': #/config/{key}"
    if isinstance(spec, (str, int, list)):  # bool is an int
        return Declaration(default=spec) if _in_project(project, key) else Declaration(value=spec)
    if not isinstance(spec, dict):
        raise StackConfigError(f"{where}: expected a string, integer, boolean, array or a config type declaration")
    unknown = sorted(set(spec) - set(DECLARATION_ATTRIBUTES))
    if unknown:
        allowed = ", ".join(f"'{a}'" for a in DECLARATION_ATTRIBUTES[:-1])
        raise StackConfigError(f"{where}: '{unknown[0]}' not allowed; the allowed attributes are {allowed} "
                               f"and '{DECLARATION_ATTRIBUTES[-1]}'")
    if spec.get("type") is not None:
        _check_type_name(spec["type"], f"{where}/type")
    return Declaration(type=spec.get("type"), items=_items(spec.get("items"), f"{where}/items"),
                       description=spec.get("description") or "", default=spec.get("default"),
                       value=spec.get("value"), secret=spec.get("secret") is True)


def _items(spec: Any, where: str) -> ItemsType | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or "type" not in spec:
        raise StackConfigError(f"{where}: missing properties: 'type'")
    _check_type_name(spec["type"], f"{where}/type")
    if spec["type"] == "array" and "items" not in spec:
        raise StackConfigError(f"{where}: missing properties: 'items'")
    return ItemsType(spec["type"], _items(spec.get("items"), f"{where}/items"))


def _check_type_name(name: Any, where: str) -> None:
    if name not in TYPES:
        raise StackConfigError(f"{where}: value must be one of " + ", ".join(f'"{t}"' for t in TYPES))


def _invalid(project: str, key: str, declaration: Declaration) -> str | None:
    """``Project.Validate`` for one key: the CLI's message, or None."""
    if declaration.default is not None and declaration.value is not None:
        return f"project config '{key}' cannot have both a 'default' and 'value' attribute"
    if _in_project(project, key):
        if declaration.type == "array" and declaration.items is None:
            return (f"The configuration key '{key}' declares an array "
                    "but does not specify the underlying type via the 'items' attribute")
        if declaration.type is not None and declaration.default is not None and \
                not matches(declaration.type, declaration.items, declaration.default):
            return (f"The default value specified for configuration key '{key}' "
                    f"is not of the expected type '{declaration.type_name}'")
        return None
    if declaration.type is not None:
        return f"Configuration key '{key}' is not namespaced by the project and should not define a type"
    if declaration.default is not None:
        return (f"Configuration key '{key}' is not namespaced by the project and should not define a default "
                "value. Did you mean to use the 'value' attribute instead of 'default'?")
    if declaration.value is None:
        return f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
    return None


def _in_project(project: str, key: str) -> bool:
    """``configKeyIsNamespacedByProject``."""
    return ":" not in key or key.startswith(project + ":")


def _full_type_name(name: str, items: ItemsType | None) -> str:
    return f"array<{_full_type_name(items.type, items.items)}>" if items is not None else name


def matches(type_name: str, items: ItemsType | None, value: Any) -> bool:
    """``ValidateConfigValue``: does ``value`` (from YAML, or a stack value's text or JSON) have the type?"""
    if value is _UNKNOWN:
        return True
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, float):
            return _whole(value)
        return isinstance(value, int) or (isinstance(value, str) and _atoi(value))
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(matches(items.type, items.items, item) for item in value)


def _whole(number: float) -> bool:
    """Go's ``f == math.Trunc(f)`` (true for infinities, false for NaN)."""
    return number == number and (number in (float("inf"), float("-inf")) or number.is_integer())


def _atoi(text: str) -> bool:
    """``strconv.Atoi`` would parse it (an int64 in decimal, optional sign)."""
    return bool(re.fullmatch(r"[+-]?[0-9]+", text)) and -2**63 <= int(text) < 2**63


# --- Pulumi.<stack>.yaml ------------------------------------------------------------------------


def load_stack(project: Project, name: str, path: Path | None = None) -> Stack:
    """``LoadProjectStack``: a missing file is an empty stack; keys get the project's namespace."""
    path = path or project.stack_file(name)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = None
    except (OSError, YamlError) as exc:
        raise StackConfigError(f"could not read '{path}': {exc}") from None
    return parse_stack(project, name, raw or {}, path)


def parse_stack(project: Project, name: str, raw: Any, path: Path) -> Stack:
    config = raw.get("config") or {} if isinstance(raw, dict) else None
    if not isinstance(config, dict):
        raise StackConfigError(f"could not read '{path}': expected a map with a 'config' map")
    if raw.get("environment"):
        raise StackConfigError(f"'{path}' imports ESC environments: their values cannot be read offline")
    values = {}
    for key, value in config.items():
        key = str(key) if ":" in str(key) else f"{project.name}:{key}"
        values[_parse_key(key, "could not unmarshal map: ")] = Value.from_yaml(value)
    empty = [f'"{k}"' for k, v in config.items() if v is None]
    return Stack(name, values, (_empty_warning(empty),) if empty else ())


def _parse_key(key: str, context: str = "") -> str:
    """``config.ParseKey``: ``namespace:name`` (or the old ``namespace:config:name``), as ``namespace:name``."""
    parts = key.split(":")
    if len(parts) == 2 or (len(parts) == 3 and parts[1] == "config" and all(parts)):
        return f"{parts[0]}:{parts[-1]}"
    raise StackConfigError(f"{context}could not parse {key} as a configuration key "
                           "(configuration keys should be of the form `<namespace>:<name>`)")


def _empty_warning(keys: list[str]) -> str:
    """``checkForEmptyConfig``."""
    plural = "s" if len(keys) > 1 else ""
    listed = " and ".join(keys) if len(keys) == 2 else ", ".join(keys)
    return (f"No value for configuration key{plural} {listed}. This is currently treated as an empty string "
            f'`""`, but will be treated as `null` in a future version of pulumi.\n'
            f'Set the value{plural} to `""` to avoid this warning.')


# --- the stack against the project ---------------------------------------------------------------


def resolve(project: Project, stack: Stack) -> ProgramConfig:
    """``ValidateStackConfigAndApplyProjectConfig``, then the values as the program gets them."""
    config = dict(stack.config)
    missing = []
    for name in sorted(project.config):
        declaration, key = project.config[name], _project_key(project.name, name)
        has_default = declaration.default is not None or declaration.value is not None
        if key in config:
            continue
        if not has_default and key.split(":")[0] == project.name:
            missing.append(name)
        elif has_default:
            given = declaration.default if declaration.default is not None else declaration.value
            config[key] = Value.from_default(given)
    if missing:
        raise StackConfigError(f"validating stack config: {_missing_message(stack.name, missing)}")
    for name in sorted(project.config):
        declaration, key = project.config[name], _project_key(project.name, name)
        if declaration.type is not None:
            problem = _invalid_value(stack.name, name, declaration, config.get(key, Value("")))
            if problem:
                raise StackConfigError(f"validating stack config: {problem}")
    return ProgramConfig({key: value.plaintext(SECRET_PLACEHOLDER) for key, value in sorted(config.items())},
                         tuple(sorted(key for key, value in config.items() if value.secure)), stack.warnings)


def _project_key(project: str, name: str) -> str:
    """``parseConfigKey``: a declaration's key, in the project's namespace unless it names one."""
    return _parse_key(name) if ":" in name else f"{project}:{name}"


def _missing_message(stack: str, keys: list[str]) -> str:
    """``missingStackConfigurationKeysError``."""
    quoted = [f"'{k}'" for k in sorted(keys)]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
    return f"Stack '{stack}' is missing configuration value{'s' if len(keys) > 1 else ''} {listed}"


def _invalid_value(stack: str, name: str, declaration: Declaration, value: Value) -> str | None:
    """``validateStackConfigValue``: the CLI's message, or None."""
    if declaration.secret and not value.secure:
        return f"Stack '{stack}' with configuration key '{name}' must be encrypted as it's secret"
    if not matches(declaration.type, declaration.items, value.content(_UNKNOWN)):
        return f"Stack '{stack}' with configuration key '{name}' must be of type '{declaration.type_name}'"
    return None
