"""Read a project's published warehouse in tests, whichever engine it is (DuckDB or PostgreSQL).

Everything goes through the warehouse adapter (read-only, closed after use), so a test body
written once runs against both engines (``demo_project`` is parametrised).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from retailhub.config.settings import WarehouseConfig
from retailhub.warehouse.base import Warehouse, is_staging_table
from retailhub.warehouse.factory import open_warehouse

#: Columns that differ between two runs by design (which run wrote the row, and when).
RUN_COLUMNS = ("_run_id", "quarantined_at")


def defects(project: Path) -> dict[str, Any]:
    """The generator's list of what it injected into the project's data."""
    return json.loads((project / "data" / "defects.json").read_text())


def warehouse_path(project: Path) -> Path:
    """The DuckDB warehouse file of a project on the default warehouse."""
    return project / "warehouse" / "retailhub.duckdb"


def reader(project: Path) -> Warehouse:
    """The project's warehouse, read-only: the default DuckDB file, or the one
    ``RETAILHUB_WAREHOUSE__URL`` names. It does not read ``retailhub.yaml``, so tests that
    break the configuration on purpose can still look at what the warehouse holds."""
    default = f"duckdb:///{warehouse_path(project)}"
    url = os.environ.get("RETAILHUB_WAREHOUSE__URL", default)
    return open_warehouse(WarehouseConfig(url=url), project, read_only=True)


def uses_duckdb(project: Path) -> bool:
    """Whether the project's warehouse is DuckDB (the default) rather than PostgreSQL."""
    return os.environ.get("RETAILHUB_WAREHOUSE__URL", "duckdb:").startswith("duckdb:")


def has_warehouse(project: Path) -> bool:
    return "RETAILHUB_WAREHOUSE__URL" in os.environ or warehouse_path(project).exists()


def fetch(project: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (portable SQL, ``?`` parameters) on the project's warehouse."""
    with reader(project) as wh:
        return [tuple(r) for r in wh.query(sql, params or []).rows]


def frame(project: Path, sql: str) -> pd.DataFrame:
    """``sql`` on the project's warehouse as a DataFrame."""
    with reader(project) as wh:
        result = wh.query(sql)
    return pd.DataFrame([tuple(r) for r in result.rows], columns=result.columns)


def tables_in(project: Path, *schemas: str) -> int:
    """How many published tables the schemas hold (0 when nothing was ever published).

    A run's staging tables (built in the warehouse, published by a rename) do not count.
    """
    marks = ", ".join("?" for _ in schemas)
    rows = fetch(
        project,
        "select table_name from information_schema.tables where table_type = 'BASE TABLE' "
        f"and table_schema in ({marks})",
        list(schemas),
    )
    return sum(1 for (name,) in rows if not is_staging_table(name))


def staging_tables(project: Path) -> list[str]:
    """The staging tables runs left in the warehouse (unpublished builds of failed runs)."""
    rows = fetch(
        project,
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' order by 1, 2",
    )
    return [f"{schema}.{name}" for schema, name in rows if is_staging_table(name)]


def table_fingerprints(
    project: Path, schemas: tuple[str, ...] = ("core", "raw", "quarantine")
) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content digest of every table in ``schemas``.

    Values are normalised (decimals and floats to 9 significant digits, timestamps to ISO)
    before hashing, so the same contents give the same digest on DuckDB and PostgreSQL.
    """
    if not has_warehouse(project):
        return {}
    with reader(project) as wh:
        marks = ", ".join("?" for _ in schemas)
        tables = wh.query(
            "select table_schema, table_name from information_schema.tables "
            f"where table_type = 'BASE TABLE' and table_schema in ({marks}) order by 1, 2",
            list(schemas),
        ).rows
        out = {}
        for schema, name in tables:
            if is_staging_table(name):
                continue  # a failed run's unpublished build, not published content
            result = wh.query(f"select * from {schema}.{name}")
            keep = [i for i, c in enumerate(result.columns) if c not in RUN_COLUMNS]
            lines = sorted("|".join(_normalise(row[i]) for i in keep) for row in result.rows)
            digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
            out[f"{schema}.{name}"] = (len(lines), digest)
        return out


def _normalise(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (Decimal, float)):
        return f"{float(value):.9g}"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_normalise(v) for v in value) + "]"
    return str(value)
