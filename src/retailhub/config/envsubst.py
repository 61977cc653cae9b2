"""``${VAR}`` and ``${VAR:-default}`` expansion for values of the project file.

Expansion happens on the parsed YAML (values only, never keys) so that a variable holding
YAML syntax cannot change the structure of the file. A variable without default that is
not set is a configuration error naming the key, because silently expanding to an empty
string has produced too many "why is my path empty" incidents.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from retailhub.errors import ConfigError

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: Any, *, file: str, key: str = "", env: Mapping[str, str] | None = None) -> Any:
    """Return ``value`` with every ``${VAR}`` in its strings replaced from ``env``."""
    env = os.environ if env is None else env
    if isinstance(value, str):
        return _expand_str(value, file=file, key=key, env=env)
    if isinstance(value, dict):
        return {
            k: expand(v, file=file, key=f"{key}.{k}" if key else str(k), env=env)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand(v, file=file, key=f"{key}[{i}]", env=env) for i, v in enumerate(value)]
    return value


def _expand_str(text: str, *, file: str, key: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        state = "is empty" if name in env else "is not set"
        raise ConfigError(
            f"{file}: key '{key}' uses ${{{name}}} but the environment variable {name} {state} "
            f"(write ${{{name}:-default}} to give a default)",
            file=file,
            key=key,
        )

    return _PATTERN.sub(replace, text)
