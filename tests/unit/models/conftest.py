"""Fixtures for the models tests (helpers and known-answer inputs live in models_fixtures)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from tests.support import skip_or_fail

# models_fixtures sits beside this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from models_fixtures import create_empty_sources, load_known_sources


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def empty_sources(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return create_empty_sources(con)


def _postgres_up(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_dsn() -> str:
    """DSN of the local PostgreSQL; skips when it is down, but fails under CI=true."""
    dsn = os.environ.get("RETAILHUB_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 dbname=test")
    if not _postgres_up():
        skip_or_fail("PostgreSQL is not running on 127.0.0.1:5432")
    return dsn


@pytest.fixture
def known_sources(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return load_known_sources(con)
