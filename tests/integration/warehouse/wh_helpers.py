"""Helpers shared by the warehouse tests (a module with a unique name, importable from tests)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retailhub.warehouse.base import Warehouse
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_roles import RoleNames

CANDIDATE_URLS = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
PREFIX = "retailhub_test_"


def admin_target() -> PgTarget | None:
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
