"""Shared fixtures: real services, real datasets, throwaway projects.

A test that needs a service calls ``require_service``: locally a missing service skips the
test with the reason; in CI (``CI=true``) it fails, because a suite that silently skips its
database tests proves nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_roles import RoleNames
from tests.integration.warehouse.wh_helpers import PREFIX, PgDatabase, admin_target
from tests.support import DATASETS, REPO, datasets_or_skip, require_service

__all__ = ["DATASETS", "REPO", "require_service"]


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return datasets_or_skip()


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
