"""Shared generated outputs for the demo generator tests (generated once per session)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from tests.unit.demo.demo_checks import revenue_lines

from retailhub.demo import GenerationReport, generate


@pytest.fixture(scope="session")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    """3,000 rows with a high defect rate, so every kind occurs several times."""
    return generate(tmp_path_factory.mktemp("dirty"), 3000, seed=7, defect_rate=0.03)


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    """Same size and seed as ``dirty`` but defect-free."""
    return generate(tmp_path_factory.mktemp("clean"), 3000, seed=7, defect_rate=0.0)


@pytest.fixture(scope="session")
def large(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    """Big enough for statistical shape checks (seasonality, Pareto), still < 1 s."""
    return generate(tmp_path_factory.mktemp("large"), 60_000, seed=11, defect_rate=0.01)


@pytest.fixture(scope="session")
def dirty_dir(dirty: GenerationReport) -> Path:
    return dirty.out_dir


@pytest.fixture(scope="session")
def clean_dir(clean: GenerationReport) -> Path:
    return clean.out_dir


@pytest.fixture(scope="session")
def large_revenue(large: GenerationReport) -> list[tuple[str, dt.datetime, float]]:
    """(customer, time, value) of the parseable lines of ``large``, parsed once."""
    return revenue_lines(large.out_dir)
