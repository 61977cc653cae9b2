"""Load ``retailhub.yaml``: parse, expand ``${VAR}``, merge the profile, apply env overrides,
then command-line values (which beat all of them).

Every failure is a :class:`~retailhub.errors.ConfigError` whose message names the file, the
key and what was expected, because "validation error" without a location costs an operator
far more time than the few lines spent here.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from retailhub.config import strict_yaml
from retailhub.config.envsubst import expand
from retailhub.config.settings import ProjectSettings
from retailhub.config.sources import own_dataset_problem
from retailhub.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_FILE = "retailhub.yaml"
PROFILES = ("dev", "staging", "prod")
# Keys that may only come from the environment: a secret in a committed file is a leak.
SECRET_KEYS = (("warehouse", "password"),)


@dataclass(frozen=True)
class LoadedProject:
    """A validated configuration and where it came from (paths resolve against ``root``)."""

    settings: ProjectSettings
    root: Path
    config_path: Path
    profile: str
    #: dotted keys set on the command line (``--warehouse``) and by the selected profile
    flag_keys: frozenset[str] = frozenset()
    profile_keys: frozenset[str] = frozenset()

    def resolve(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p)

    def origin(self, key: str) -> str:
        """``key`` named where its value came from, for messages about a value that only
        fails after loading (a warehouse URL the adapter rejects): the operator must know
        whether to fix the file, the profile, an exported variable or the command line."""
        if key in self.flag_keys:
            return f"key '{key}' (from the command line)"
        variable = env_variable(key)
        if variable:
            return f"key '{key}' (from environment variable {variable})"
        if key in self.profile_keys:
            return f"key 'profiles.{self.profile}.{key}' in {self.config_path}"
        return f"key '{key}' in {self.config_path}"


def find_config(project_dir: Path | None) -> Path:
    """Return the project file of ``project_dir`` (default: current directory)."""
    base = Path(project_dir or os.environ.get("RETAILHUB_PROJECT_DIR") or ".").resolve()
    path = base if base.is_file() else base / CONFIG_FILE
    if not path.exists():
        raise ConfigError(
            f"no project file at {path}: run 'retailhub init {base}' to create one, "
            "or pass --project DIR",
            file=str(path),
        )
    return path


def load_project(
    project_dir: Path | None = None,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    sources_optional: bool = False,
) -> LoadedProject:
    """Load and validate the project at ``project_dir`` for ``profile``.

    ``sources_optional`` is for commands that never open a source (query, runs, backup...):
    a ``${VAR}`` left unset under ``sources`` does not stop them.
    """
    path = find_config(project_dir)
    raw = _read_yaml(path)
    profile = profile or os.environ.get("RETAILHUB_PROFILE") or "dev"
    if profile not in PROFILES:
        raise ConfigError(
            f"unknown profile '{profile}': expected one of {', '.join(PROFILES)}",
            file=str(path),
            key="profile",
        )
    _reject_secrets(raw, path)
    profiles = raw.get("profiles")
    if isinstance(profiles, dict):
        # Another profile's variables are that environment's business (STAGING_DB is not set
        # in production): its values that use an unset one are left out of its check.
        raw = {
            **raw,
            "profiles": {
                p: body if p == profile else _without_unset(body, path, f"profiles.{p}")
                for p, body in profiles.items()
            },
        }
    if sources_optional:
        raw = _without_unresolvable_sources(raw, path)
    data = expand(raw, file=str(path))
    settings = validate_settings(_apply_profile(data, profile, path), path, profile)
    # A typo in a profile that is not selected would otherwise surface only on the day that
    # profile runs (in production, typically): check every profile now.
    for other in sorted(set(data.get("profiles") or {}) - {profile}):
        validate_settings(_apply_profile(data, other, path), path, other)
    if overrides:
        settings = apply_overrides(settings, overrides, path)
    _warn_unknown_variables()
    for name, source in settings.sources.items():
        if getattr(source, "name", None) in (None, ""):
            object.__setattr__(source, "name", name)
        # sources are validated before they get their names: the name's own check is here
        if source.dataset is None and (problem := own_dataset_problem(name)):
            raise ConfigError(
                f"{path}: key 'sources.{name}': {problem}", file=str(path), key=f"sources.{name}"
            )
    if not sources_optional and not any(s.enabled for s in settings.sources.values()):
        raise ConfigError(
            f"{path}: key 'sources': the project declares no enabled source (see "
            "docs/configuration.md; 'retailhub init DIR' writes a commented example)",
            file=str(path),
            key="sources",
        )
    profile_body = (data.get("profiles") or {}).get(profile)
    if not isinstance(profile_body, dict):
        profile_body = {}
    return LoadedProject(
        settings=settings,
        root=path.parent,
        config_path=path,
        profile=profile,
        flag_keys=frozenset(_dotted_keys(overrides or {})),
        profile_keys=frozenset(_dotted_keys(profile_body)),
    )


def _dotted_keys(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    """The leaf keys of a nested mapping, dotted: ``{"warehouse": {"url": x}}`` -> warehouse.url."""
    keys = []
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(_dotted_keys(value, dotted + "."))
        else:
            keys.append(dotted)
    return keys


_UNSET = object()


def _without_unset(value: Any, path: Path, key: str) -> Any:
    """``value`` without the mapping entries that use an unset ``${VAR}`` (keys stay checked
    where their values resolve); ``_UNSET`` when ``value`` itself does not resolve."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            kept = _without_unset(v, path, f"{key}.{k}")
            if kept is not _UNSET:
                out[k] = kept
        return out
    try:
        expand(value, file=str(path), key=key)
    except ConfigError:
        return _UNSET
    return value


def _without_unresolvable_sources(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """``raw`` minus the sources (also in profiles) whose ``${VAR}``s are not all set.

    Dropped rather than kept unexpanded: ``url: ${ORDERS_DB}`` would fail validation as a
    URL, and a command that only reads the warehouse needs no source at all.
    """

    def resolvable(section: Any, key: str, gone: frozenset[str] = frozenset()) -> Any:
        """``section`` without its sources that do not expand, nor those in ``gone``."""
        if not isinstance(section, dict):
            return section
        kept = {}
        for name, cfg in section.items():
            try:
                expand(cfg, file=str(path), key=f"{key}.{name}")
            except ConfigError:
                log.debug("%s.%s left out: a ${VAR} of it is not set", key, name)
                continue
            if name not in gone:  # a profile's part of a source left out of the base
                kept[name] = cfg
        return kept

    out = dict(raw)
    base = out.get("sources")
    if isinstance(base, dict):
        out["sources"] = resolvable(base, "sources")
    # a 'sources' that is not a mapping is left for the settings' validation to name
    gone = frozenset(base) - frozenset(out["sources"]) if isinstance(base, dict) else frozenset()
    profiles = out.get("profiles")
    if isinstance(profiles, dict):
        out["profiles"] = {
            p: (
                {**body, "sources": resolvable(body["sources"], f"profiles.{p}.sources", gone)}
                if isinstance(body, dict) and "sources" in body
                else body
            )
            for p, body in profiles.items()
        }
    return out


def apply_overrides(
    settings: ProjectSettings, overrides: dict[str, Any], path: Path
) -> ProjectSettings:
    """Apply command-line values (``--warehouse``) on top of the file *and* the environment.

    They cannot go in with the file's data: the environment beats that (an operator's
    ``RETAILHUB_WAREHOUSE__URL`` overrides a deployed file), so a flag typed for one command
    would silently lose to a variable exported for the whole shell, and the command would
    read or write another warehouse than the one it names.
    """
    update: dict[str, Any] = {}
    for key, value in overrides.items():
        current = getattr(settings, key)
        if isinstance(current, BaseModel) and isinstance(value, dict):
            merged = deep_merge(current.model_dump(), value)
            try:
                update[key] = type(current).model_validate(merged)
            except ValidationError as exc:
                raise ConfigError(
                    format_validation_error(exc, path, prefix=key), file=str(path)
                ) from None
        else:
            update[key] = value
    return settings.model_copy(update=update)


def validate_settings(
    data: dict[str, Any], path: Path, profile: str | None = None
) -> ProjectSettings:
    """Build :class:`ProjectSettings`, turning pydantic's errors into one readable message.

    Each key is named where its value came from: the file, ``profiles.<profile>``, or a
    ``RETAILHUB_`` environment variable.
    """
    try:
        return ProjectSettings(**data)
    except SettingsError as exc:
        # A RETAILHUB_<KEY> variable for a nested section (warehouse, runner...) must hold a
        # JSON object; anything else fails in pydantic-settings before validation.
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else "?"
        raise ConfigError(
            f"{path}: environment variable RETAILHUB_{field.upper()} does not hold a valid value "
            f"for section '{field}' (a JSON object); set one key with "
            f"RETAILHUB_{field.upper()}__<KEY>, e.g. RETAILHUB_WAREHOUSE__URL",
            file=str(path),
            key=field,
        ) from None
    except ValidationError as exc:
        profiles = data.get("profiles") if isinstance(data.get("profiles"), dict) else {}
        override = (profiles or {}).get(profile) if profile else None

        def origin(key: str) -> str:
            variable = env_variable(key)
            if variable:
                return f"key '{key}' (from environment variable {variable})"
            below = env_variables_under(key)
            named_entry = key.startswith("sources.") and key.count(".") == 1
            if below and named_entry and not _has_path(data, key.split(".")):
                # only a variable names this source: one the file lacks (a misspelt name)
                return (
                    f"key '{key}' (from environment variable {', '.join(below)}; {path.name} "
                    "declares no such key: is the name misspelt?)"
                )
            if below:
                return f"key '{key}' (environment variable {', '.join(below)} sets a value in it)"
            if isinstance(override, dict) and _has_path(override, key.split(".")):
                return f"key 'profiles.{profile}.{key}'"
            return f"key '{key}'"

        raise ConfigError(
            format_validation_error(exc, path, origin=origin), file=str(path)
        ) from None


def _warn_unknown_variables() -> None:
    """Name ``RETAILHUB_X__Y`` variables whose ``x`` is no top-level key: pydantic-settings
    ignores them, so a misspelt override would silently change nothing. (Variables without
    ``__`` are left alone: ``RETAILHUB_PSEUDONYM_KEY`` and others are not settings.)"""
    keys = set(ProjectSettings.model_fields)
    for name in sorted(os.environ):
        head, sep, _ = name.upper().removeprefix("RETAILHUB_").partition("__")
        if name.upper().startswith("RETAILHUB_") and sep and head.lower() not in keys:
            log.warning(
                "environment variable %s sets nothing: '%s' is not a top-level key (%s)",
                name,
                head.lower(),
                ", ".join(sorted(keys)),
            )


def env_variable(key: str) -> str | None:
    """The ``RETAILHUB_`` environment variable that sets dotted ``key``, if one is set."""
    wanted = "RETAILHUB_" + key.replace(".", "__").upper()
    return next((name for name in os.environ if name.upper() == wanted), None)


def env_variables_under(key: str) -> list[str]:
    """The ``RETAILHUB_`` variables that set a key inside dotted ``key``."""
    prefix = "RETAILHUB_" + key.replace(".", "__").upper() + "__"
    return sorted(name for name in os.environ if name.upper().startswith(prefix))


def _has_path(mapping: dict[str, Any], parts: list[str]) -> bool:
    node: Any = mapping
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def format_validation_error(
    exc: ValidationError,
    path: Path,
    prefix: str = "",
    origin: Callable[[str], str] | None = None,
) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        parts = [prefix] if prefix else []
        key = ".".join(parts + [str(part) for part in err["loc"] if not _is_union_tag(part)])
        named = origin(key) if origin else f"key '{key}'"
        kind = err["type"]
        if kind == "extra_forbidden":
            lines.append(f"  {named}: unknown key (check the spelling; see docs/configuration.md)")
        elif kind == "missing":
            lines.append(f"  {named}: required but missing")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            lines.append(f"  {named}: {err['msg']}{shown}")
    return "\n".join(lines)


# pydantic puts the discriminator value (a source type, a rule kind) or a model name in the
# location of an error inside a tagged union; it is noise in a key path.
_UNION_TAGS = frozenset(
    {
        "csv",
        "parquet",
        "json",
        "http",
        "database",
        "completeness",
        "uniqueness",
        "validity",
        "range",
        "accepted_values",
        "regex",
        "referential",
        "freshness",
        "volume",
    }
)


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in _UNION_TAGS or part[:1].isupper() or "[" in part)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", file=str(path)) from None
    try:
        data = strict_yaml.load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level", file=str(path))
    return data


def _reject_secrets(data: dict[str, Any], path: Path) -> None:
    profiles = data.get("profiles")
    sections: list[tuple[str, Any]] = [("", data)]
    if isinstance(profiles, dict):  # not a mapping: the settings' validation names it
        sections += [(f"profiles.{name}.", body) for name, body in profiles.items()]
    for prefix, section in sections:
        for keys in SECRET_KEYS:
            node: Any = section
            for k in keys:
                node = node.get(k) if isinstance(node, dict) else None
            if node is not None:
                env = "RETAILHUB_" + "__".join(k.upper() for k in keys)
                raise ConfigError(
                    f"{path}: key '{prefix}{'.'.join(keys)}' is a secret and may only come from "
                    f"the environment: remove it from the file and set {env}",
                    file=str(path),
                    key=prefix + ".".join(keys),
                )


def _apply_profile(data: dict[str, Any], profile: str, path: Path) -> dict[str, Any]:
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError(
            f"{path}: key 'profiles' must be a mapping", file=str(path), key="profiles"
        )
    unknown = sorted(set(profiles) - set(PROFILES))
    if unknown:
        raise ConfigError(
            f"{path}: key 'profiles.{unknown[0]}': unknown profile, expected one of "
            f"{', '.join(PROFILES)}",
            file=str(path),
            key=f"profiles.{unknown[0]}",
        )
    override = profiles.get(profile) or {}
    if not isinstance(override, dict):
        raise ConfigError(
            f"{path}: key 'profiles.{profile}' must be a mapping",
            file=str(path),
            key=f"profiles.{profile}",
        )
    return deep_merge(data, override)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in; mappings merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
