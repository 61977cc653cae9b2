"""Fixtures for warehouse tests: a throwaway PostgreSQL database per test, and one test body
run on both warehouses (``warehouse_engine`` is parametrised over DuckDB and PostgreSQL).

The PostgreSQL server is the one on 127.0.0.1:5432 (trust authentication, user ``postgres``
or ``root``; override with ``RETAILHUB_TEST_PG_URL``). Each test gets its own database
``retailhub_test_<random>`` and its own role names, dropped afterwards, so tests never see
each other's tables and can run against a shared server. A missing server skips the
PostgreSQL tests locally and fails them under ``CI=true`` (see ``require_service``).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require_service
from tests.integration.warehouse.wh_helpers import (
    PREFIX,
    Cluster,
    PgDatabase,
    WarehouseOpener,
    admin_target,
    find_pg_bin,
    open_duckdb,
    open_postgres,
    start_tls_cluster,
    stop_cluster,
)

from retailhub.warehouse.base import Warehouse
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_roles import RoleNames


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[PgTarget]:
    """An administrator connection target on the test server (skips/fails if absent)."""
    target = admin_target()
    if target is None:
        require_service("PostgreSQL", "no server accepting user postgres/root on 127.0.0.1:5432")
    assert target is not None
    yield target


@pytest.fixture
def pg_db(pg_admin: PgTarget) -> Iterator[PgDatabase]:
    import psycopg

    name = PREFIX + secrets.token_hex(4)
    roles = RoleNames(loader=f"{name}_loader", analyst=f"{name}_analyst")
    with psycopg.connect(pg_admin.conninfo(), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield PgDatabase(pg_admin.with_database(name), name, roles)
    finally:
        with psycopg.connect(pg_admin.conninfo(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            for role in (roles.loader, roles.analyst):
                conn.execute(f'drop role if exists "{role}"')


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
