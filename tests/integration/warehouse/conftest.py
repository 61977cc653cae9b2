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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require_service
from wh_helpers import (
    PREFIX,
    PgDatabase,
    WarehouseOpener,
    admin_target,
    open_duckdb,
    open_postgres,
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
