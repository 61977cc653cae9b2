"""Helpers for the quality tests: hand-built staged tables, YAML rules, a recording connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import yaml

from retailhub.config.quality import DatasetQualityConfig, QualityConfig
from retailhub.quality.results import QualityOutcome

NOW = datetime(2024, 3, 10, 12, 0, 0)


def make_staged(
    con: duckdb.DuckDBPyConnection,
    columns: dict[str, str],
    rows: Sequence[Sequence[Any]],
    *,
    name: str = "staged",
    type_errors: dict[int, list[str]] | None = None,
    files: Sequence[str] | None = None,
) -> str:
    """A staged table: ``columns`` plus the bookkeeping columns the staging step adds.

    Row ``i`` (0-based) comes from ``files[i]`` (default ``f.csv``) at line ``i + 2``.
    """
    body = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    con.execute(
        f"CREATE TABLE {name} ({body}, _source VARCHAR, _source_file VARCHAR, _line BIGINT, "
        "_unit_id VARCHAR, _type_errors VARCHAR[])"
    )
    errors = type_errors or {}
    for i, row in enumerate(rows):
        file = files[i] if files else "f.csv"
        con.execute(
            f"INSERT INTO {name} VALUES ({', '.join('?' * (len(columns) + 5))})",
            [*row, "src", file, i + 2, "u1", errors.get(i, [])],
        )
    return name


def rules_of(text: str) -> DatasetQualityConfig:
    """Rules from YAML, as a user writes them under ``quality.datasets.ds``."""
    return QualityConfig.model_validate({"datasets": {"ds": yaml.safe_load(text)}}).datasets["ds"]


def result(outcome: QualityOutcome, rule: str):
    matches = [r for r in outcome.results if r.rule == rule]
    assert matches, f"no result for {rule}: {[r.rule for r in outcome.results]}"
    return matches[0]


class RecordingConnection:
    """Delegates to a real connection and records every SQL text it is given."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.statements: list[str] = []

    def execute(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        return self._con.execute(sql, *args)

    def sql(self, sql: str, *args: Any) -> Any:
        self.statements.append(sql)
        return self._con.sql(sql, *args)
