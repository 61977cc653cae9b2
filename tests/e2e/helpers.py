"""Small helpers to read a DuckDB warehouse in tests (read-only, closed after use)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb


def defects(project: Path) -> dict[str, Any]:
    """The generator's list of what it injected into the project's data."""
    return json.loads((project / "data" / "defects.json").read_text())


def warehouse_path(project: Path) -> Path:
    return project / "warehouse" / "retailhub.duckdb"


def fetch(project: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse_path(project)), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table_fingerprints(project: Path, schemas: tuple[str, ...] = ("core", "raw", "quarantine")) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of every table in ``schemas``."""
    path = warehouse_path(project)
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in "
            f"({', '.join(repr(s) for s in schemas)}) order by 1, 2"
        ).fetchall()
        out = {}
        for schema, name in tables:
            cols = [
                r[0]
                for r in con.execute(f"describe {schema}.{name}").fetchall()
                if r[0] not in ("_run_id", "quarantined_at")
            ]
            collist = ", ".join(f'"{c}"' for c in cols)
            count, digest = con.execute(
                f"select count(*), coalesce(sum(hash({collist}))::varchar, '0') "
                f"from (select {collist} from {schema}.{name})"
            ).fetchone()
            out[f"{schema}.{name}"] = (count, digest)
        return out
    finally:
        con.close()
