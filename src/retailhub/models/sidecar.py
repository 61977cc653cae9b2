"""Parse and check a model's YAML sidecar (``<name>.yml`` beside ``<name>.sql``).

The sidecar is the model's contract: schema, grain, column types and the column tests that
``test_models`` runs. It is checked when the models are loaded, so a mistyped test name or
schema fails before anything is built, with the file named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from retailhub.config import strict_yaml
from retailhub.errors import ModelError

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
SIMPLE_TESTS = frozenset({"unique", "not_null"})
# A table is computed once and read many times; a view costs nothing to build and is computed
# by each reader, which suits a model read once or for a few narrow columns.
MATERIALIZATIONS = ("table", "view")
DEFAULT_SCHEMAS = (("stg_", "stg"), ("int_", "int"))


def default_schema(name: str) -> str:
    """Schema of a model without a sidecar: from its prefix (stg_ → stg, int_ → int, else core)."""
    for prefix, schema in DEFAULT_SCHEMAS:
        if name.startswith(prefix):
            return schema
    return "core"


def load_sidecar(sql_path: Path) -> dict[str, Any]:
    """Return the checked sidecar of ``sql_path`` ({} when it has none)."""
    for suffix in (".yml", ".yaml"):
        path = sql_path.with_suffix(suffix)
        if path.is_file():
            break
    else:
        return {}
    try:
        spec = strict_yaml.load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: invalid YAML: {exc}", file=str(path)) from exc
    if not isinstance(spec, dict):
        raise ModelError(f"{path}: a model sidecar must be a mapping", file=str(path))
    _check(spec, sql_path.stem, path)
    return spec


def _fail(path: Path, key: str, message: str) -> ModelError:
    return ModelError(f"{path}: key '{key}': {message}", file=str(path), key=key)


def _check(spec: dict[str, Any], stem: str, path: Path) -> None:
    name = spec.get("name", stem)
    if name != stem:
        raise _fail(path, "name", f"'{name}' differs from the SQL file name '{stem}'")
    schema = spec.get("schema", default_schema(stem))
    if not isinstance(schema, str) or not IDENTIFIER.match(schema):
        raise _fail(path, "schema", f"'{schema}' is not a lower-case identifier")
    materialized = spec.get("materialized", "table")
    if materialized not in MATERIALIZATIONS:
        raise _fail(
            path,
            "materialized",
            f"'{materialized}' is not supported ({' or '.join(MATERIALIZATIONS)})",
        )
    columns = spec.get("columns", [])
    if not isinstance(columns, list):
        raise _fail(path, "columns", "must be a list")
    seen: set[str] = set()
    for index, column in enumerate(columns):
        key = f"columns[{index}]"
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            raise _fail(path, key, "each column needs a 'name'")
        if column["name"] in seen:
            raise _fail(path, key, f"column '{column['name']}' is listed twice")
        seen.add(column["name"])
        for test in column.get("tests", []) or []:
            _check_test(test, path, f"{key}.tests")


def _check_test(test: Any, path: Path, key: str) -> None:
    if isinstance(test, str) and test in SIMPLE_TESTS:
        return
    if isinstance(test, dict) and set(test) == {"relationships"}:
        target = test["relationships"]
        if (
            isinstance(target, dict)
            and isinstance(target.get("to"), str)
            and isinstance(target.get("field"), str)
        ):
            return
        raise _fail(path, key, "relationships needs {to: <model>, field: <column>}")
    raise _fail(path, key, f"unknown test {test!r} (unique, not_null, relationships)")


def column_tests(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, str] | None]]:
    """Flatten a sidecar's tests to (column, test name, relationship target or None)."""
    out: list[tuple[str, str, dict[str, str] | None]] = []
    for column in spec.get("columns", []) or []:
        for test in column.get("tests", []) or []:
            if isinstance(test, str):
                out.append((column["name"], test, None))
            else:
                out.append((column["name"], "relationships", dict(test["relationships"])))
    return out
