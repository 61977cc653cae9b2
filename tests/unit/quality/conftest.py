"""Fixtures for the quality tests: a real in-memory DuckDB and a ``run`` shortcut."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest
from tests.unit.quality.quality_helpers import NOW, rules_of

from retailhub.config.quality import DatasetQualityConfig
from retailhub.quality.gate import QualityContext, run_quality
from retailhub.quality.results import QualityOutcome


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    yield connection
    connection.close()


@pytest.fixture
def run(con: duckdb.DuckDBPyConnection) -> Callable[..., QualityOutcome]:
    def _run(
        rules: DatasetQualityConfig | str,
        staged: str = "staged",
        *,
        connection: Any = None,
        **ctx: Any,
    ) -> QualityOutcome:
        if isinstance(rules, str):
            rules = rules_of(rules)
        context = QualityContext(
            run_id=ctx.pop("run_id", "run-1"),
            reference_tables=ctx.pop("reference_tables", {}),
            file_times=ctx.pop("file_times", []),
            previous_rows=ctx.pop("previous_rows", None),
            now=ctx.pop("now", NOW),
        )
        return run_quality(
            connection or con,
            "ds",
            staged,
            rules,
            context,
            accepted_table=ctx.pop("accepted_table", "accepted"),
            quarantine_table=ctx.pop("quarantine_table", "quarantine"),
        )

    return _run
