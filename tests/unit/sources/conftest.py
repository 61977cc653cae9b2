"""Helpers for the sources unit tests: build a configured source and land it in memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from retailhub.config.sources import parse_source_config
from retailhub.sources import LandedUnit, Source, SourceState, build_source, land

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def make_source(tmp_path: Path) -> Callable[..., Source]:
    """``make_source(type='csv', path='x.csv', ...)`` -> a Source rooted at ``tmp_path``."""

    def build(name: str = "src", project_dir: Path | None = None, **raw: Any) -> Source:
        raw.setdefault("layout", "none")
        cfg = parse_source_config(name, raw)
        return build_source(cfg, project_dir or tmp_path)

    return build


@pytest.fixture
def land_source() -> Callable[..., tuple[duckdb.DuckDBPyConnection, list[LandedUnit]]]:
    """Discover every unit of a source and land it into table ``raw`` of a fresh DuckDB."""

    def run(
        source: Source, state: SourceState | None = None, table: str = "raw"
    ) -> tuple[duckdb.DuckDBPyConnection, list[LandedUnit]]:
        con = duckdb.connect()
        units = source.discover(state or SourceState())
        return con, land(con, source, units, table)

    return run
