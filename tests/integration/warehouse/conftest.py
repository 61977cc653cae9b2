"""Fixtures for warehouse tests: a throwaway PostgreSQL database per test, and one test body
run on both warehouses (``warehouse_engine`` is parametrised over DuckDB and PostgreSQL).

The PostgreSQL server is the one on 127.0.0.1:5432 (trust authentication, user ``postgres``
or ``root``; override with ``RETAILHUB_TEST_PG_URL``). Each test gets its own database
``retailhub_test_<random>`` and its own role names, dropped afterwards, so tests never see
each other's tables and can run against a shared server. A missing server skips the
PostgreSQL tests locally and fails them under ``CI=true`` (see ``require_service``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from retailhub.warehouse.base import Warehouse
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_roles import RoleNames
from tests.conftest import require_service

CANDIDATE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
PREFIX = "retailhub_test_"


def _admin_target() -> PgTarget | None:
    import psycopg

    urls = [os.environ["RETAILHUB_TEST_PG_URL"]] if os.environ.get("RETAILHUB_TEST_PG_URL") else []
    for url in [*urls, *CANDIDATE_URLS]:
        target = PgTarget.from_url(url, connect_timeout_s=3)
        try:
            with psycopg.connect(target.conninfo(), autocommit=True) as conn:
                row = conn.execute(
                    "select rolsuper or rolcreatedb from pg_roles where rolname = current_user"
                ).fetchone()
                if row and row[0]:
                    return target
        except psycopg.Error:
            continue
    return None


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[PgTarget]:
    """An administrator connection target on the test server (skips/fails if absent)."""
    target = _admin_target()
    if target is None:
        require_service(
            "PostgreSQL", "no server accepting user postgres/root on 127.0.0.1:5432"
        )
    assert target is not None
    yield target


@dataclass
class PgDatabase:
    """One throwaway database with its own role names."""

    admin: PgTarget  # administrator, connected to the throwaway database
    name: str
    roles: RoleNames

    @property
    def url(self) -> str:
        return f"postgresql://{self.admin.user}@{self.admin.host}:{self.admin.port}/{self.name}"

    def as_role(self, role: str) -> PgTarget:
        return self.admin.with_user(role)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.admin.conninfo(), autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


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


def open_postgres(db: PgDatabase, tmp: Path, **kwargs: Any) -> Warehouse:
    from retailhub.warehouse.postgres import PostgresWarehouse

    label = kwargs.pop("label", "run-" + secrets.token_hex(3))
    target = kwargs.pop("target", db.admin)
    return PostgresWarehouse(target=target, work_db=tmp / "work" / f"{label}.duckdb", **kwargs)


def open_duckdb(path: Path, tmp: Path, **kwargs: Any) -> Warehouse:
    from retailhub.warehouse.duckdb import DuckDBWarehouse

    label = kwargs.pop("label", "run-" + secrets.token_hex(3))
    kwargs.pop("target", None)
    read_only = kwargs.pop("read_only", False)
    return DuckDBWarehouse(
        path, work_db=None if read_only else tmp / "work" / f"{label}.duckdb", read_only=read_only
    )


WarehouseOpener = Callable[..., Warehouse]


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
