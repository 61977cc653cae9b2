"""Fixtures for warehouse tests: a throwaway PostgreSQL database per test, and one test body
run on both warehouses (``warehouse_engine`` is parametrised over DuckDB and PostgreSQL).

The PostgreSQL server is the one on 127.0.0.1:5432 (trust authentication, user ``postgres``
or ``root``; override with ``RETAILHUB_TEST_PG_URL``). Each test gets its own database
``retailhub_test_<random>`` and its own role names, dropped afterwards, so tests never see
each other's tables and can run against a shared server. A missing server skips the
PostgreSQL tests locally and fails them under ``CI=true`` (see ``require_service``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require_service
from tests.integration.warehouse.wh_helpers import (
    Cluster,
    WarehouseOpener,
    find_pg_bin,
    open_duckdb,
    open_postgres,
    start_tls_cluster,
    stop_cluster,
)

from retailhub.warehouse.base import Warehouse


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_engine(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.param)


@pytest.fixture
def open_warehouse(
    request: pytest.FixtureRequest, warehouse_engine: str, tmp_path: Path
) -> Iterator[WarehouseOpener]:
    """``open_warehouse(**kw)`` opens the parametrised engine's warehouse (closed at the end)."""
    opened: list[Warehouse] = []
    if warehouse_engine == "postgres":
        db = request.getfixturevalue("pg_db")

        def opener(**kw: Any) -> Warehouse:
            wh = open_postgres(db, tmp_path, **kw)
            opened.append(wh)
            return wh

    else:
        path = tmp_path / "warehouse.duckdb"

        def opener(**kw: Any) -> Warehouse:
            wh = open_duckdb(path, tmp_path, **kw)
            opened.append(wh)
            return wh

    try:
        yield opener
    finally:
        for wh in opened:
            wh.close()


@pytest.fixture(scope="session")
def tls_cluster() -> Iterator[Cluster]:
    """A private server with a self-signed certificate that refuses TCP without TLS."""
    bin_dir = find_pg_bin()
    if bin_dir is None or shutil.which("openssl") is None:
        require_service("PostgreSQL server binaries", "initdb/pg_ctl or openssl not found")
    assert bin_dir is not None
    try:
        cluster = start_tls_cluster(bin_dir)
    except Exception as exc:
        require_service("a private PostgreSQL cluster", f"could not start: {exc}")
        raise
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated demo data (small), shared by the pipeline tests of this package."""
    from retailhub.demo import generate

    out = tmp_path_factory.mktemp("wh-demo") / "data"
    generate(out, rows=3000, seed=11, defect_rate=0.02)
    return out


@pytest.fixture
def demo_project(tmp_path: Path, demo_data: Path) -> Path:
    """A scaffolded project with its own copy of the demo data."""
    from retailhub.config.scaffold import scaffold

    project = tmp_path / "shop"
    scaffold(project)
    shutil.rmtree(project / "data")
    shutil.copytree(demo_data, project / "data")
    return project
