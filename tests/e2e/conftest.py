"""Fixtures for end-to-end runs: a scaffolded demo project with freshly generated data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retailhub.config.scaffold import scaffold
from retailhub.demo import generate

ROWS = 4000
SEED = 7
DEFECT_RATE = 0.02


@pytest.fixture(scope="session")
def generated_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated dataset for the whole session (copied into each test's project)."""
    out = tmp_path_factory.mktemp("generated") / "data"
    generate(out, rows=ROWS, seed=SEED, defect_rate=DEFECT_RATE)
    return out


@pytest.fixture(params=["duckdb", "postgres"])
def demo_project(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    generated_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A scaffolded project with the generated data, on each warehouse engine in turn.

    PostgreSQL: a throwaway database per test (``pg_db``), selected the way a user does it,
    with ``RETAILHUB_WAREHOUSE__URL``; the test body is the same for both engines.
    """
    project = tmp_path / "shop"
    scaffold(project)
    shutil.rmtree(project / "data")
    shutil.copytree(generated_data, project / "data")
    # copytree keeps modification times, so the generator's stale file stays stale.
    if request.param == "postgres":
        monkeypatch.setenv("RETAILHUB_WAREHOUSE__URL", request.getfixturevalue("pg_db").url)
    return project
