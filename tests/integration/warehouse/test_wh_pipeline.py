"""The whole pipeline into either warehouse: same contents on both, incremental runs, SCD2.

These run ``Project.run`` on generated demo data, once per engine (the ``warehouse_engine``
fixture), and compare what lands in the warehouse.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase

from retailhub.errors import EXIT_OK
from retailhub.pipeline.project import Project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "test-pseudonym-key-0123456789abcdef"
# Columns that legitimately differ between two runs of the same inputs.
RUN_COLUMNS = {
    "_run_id",
    "_unit_id",
    "quarantined_at",
    "run_id",
    "recorded_at",
    "checked_at",
    "arrived_at",
}


def warehouse_url(request: pytest.FixtureRequest, engine: str, project: Path) -> str:
    if engine == "postgres":
        db: PgDatabase = request.getfixturevalue("pg_db")
        return db.url
    return f"duckdb:///{project / 'warehouse' / 'test.duckdb'}"


def read_table(project: Project, table: str) -> pa.Table:
    with project.open_warehouse(read_only=True) as wh:
        return wh.read_arrow(f"select * from {table}")


def normalised(table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows without run-dependent columns, in a canonical order."""
    keep = sorted(c for c in table.column_names if c not in RUN_COLUMNS)
    rows = [tuple(_plain(r[c]) for c in keep) for r in table.select(keep).to_pylist()]
    return sorted(rows, key=repr)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, float):
        # Parallel float sums may differ in the last bits from one run to the next.
        return float(f"{value:.12g}")
    return value


def published_tables(project: Project) -> list[str]:
    with project.open_warehouse(read_only=True) as wh:
        if wh.engine == "postgres":
            rows = wh.query(
                "select table_schema || '.' || table_name from information_schema.tables "
                "where table_schema in ('core', 'marts', 'quarantine', 'raw') "
                "and table_type = 'BASE TABLE' and table_name not like '%\\_\\_%' order by 1"
            ).rows
        else:
            rows = wh.query(
                "select schema_name || '.' || table_name from duckdb_tables() "
                "where schema_name in ('core', 'marts', 'quarantine', 'raw') order by 1"
            ).rows
    return [r[0] for r in rows]


def test_duckdb_and_postgres_publish_identical_tables(
    demo_project: Path, pg_db: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETAILHUB_PSEUDONYM_KEY", KEY)
    # One project folder, two warehouses: each keeps its own ledger, so both ingest every file
    # (and the lineage columns, which hold file paths, agree).
    duck_url = f"duckdb:///{demo_project / 'warehouse' / 'x.duckdb'}"
    duck = Project.load(demo_project, warehouse_url=duck_url)
    pg = Project.load(demo_project, warehouse_url=pg_db.url)
    for project in (duck, pg):
        report = project.run()
        assert report.exit_code == EXIT_OK, report.error
    tables = published_tables(duck)
    assert "core.fct_sales" in tables and "core.dim_customer_history" in tables
    assert published_tables(pg) == tables
    for table in tables:
        left, right = read_table(duck, table), read_table(pg, table)
        if table == "marts.mart_insights":
            # Each insight's backing query is written in its warehouse's dialect on purpose;
            # that both run and reproduce their numbers is tests/e2e/test_marts_demo.py's job.
            left, right = left.drop_columns(["query"]), right.drop_columns(["query"])
        assert left.num_rows == right.num_rows, table
        assert normalised(left) == normalised(right), table
    # Personal columns are pseudonymised on both, identically.
    names = read_table(pg, "core.dim_customer").column("customer_name").to_pylist()
    assert all(n is None or len(n) == 64 for n in names)
    # PostgreSQL enforces (and indexes) the grain of the marts grouped by a key.
    keyed = pg.query(
        "select c.conrelid::regclass::text, pg_get_constraintdef(c.oid) from pg_constraint c "
        "where c.contype = 'p' and c.connamespace = 'marts'::regnamespace order by 1"
    ).rows
    assert [tuple(r) for r in keyed] == [
        ("marts.mart_customer_360", "PRIMARY KEY (source_system, customer_key)"),
        ("marts.mart_forecast", "PRIMARY KEY (source_system, freq, period_start)"),
        ("marts.mart_insights", "PRIMARY KEY (rank)"),
        ("marts.mart_kpi_daily", "PRIMARY KEY (source_system, date)"),
        ("marts.mart_product_performance", "PRIMARY KEY (source_system, product_key, month)"),
    ]
    # The marts without such a grain are indexed on what dashboards filter them by.
    indexed = pg.query(
        "select tablename, indexdef from pg_indexes where schemaname = 'marts' "
        "and indexname like '%\\_idx' order by 1"
    ).rows
    assert [(r[0], r[1].split(" USING ")[1]) for r in indexed] == [
        ("mart_anomalies", "btree (source_system, date)"),
        ("mart_category_trends", "btree (source_system, month)"),
        ("mart_model_evaluation", "btree (source_system, model)"),
    ]


def test_incremental_run_loads_only_new_rows(
    request: pytest.FixtureRequest,
    warehouse_engine: str,
    demo_project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETAILHUB_PSEUDONYM_KEY", KEY)
    monthly = sorted((demo_project / "data" / "online_retail").glob("*.csv"))
    held_back = monthly[-1]
    parked = demo_project / held_back.name
    shutil.move(held_back, parked)
    url = warehouse_url(request, warehouse_engine, demo_project)
    project = Project.load(demo_project, warehouse_url=url)

    first = project.run()
    assert first.exit_code == EXIT_OK, first.error
    before = read_table(project, "core.fct_sales")

    shutil.move(parked, held_back)
    second = project.run()
    assert second.exit_code == EXIT_OK, second.error
    new_input = {d.dataset: d.input_rows for d in second.datasets}
    assert new_input["online_retail"] > 0 and new_input["superstore"] == 0
    after = read_table(project, "core.fct_sales")
    keys = after.column("sales_key").to_pylist()
    assert len(keys) == len(set(keys)), "a fact row was duplicated"
    added = set(keys) - set(before.column("sales_key").to_pylist())
    files = set(
        after.filter(pa.compute.is_in(after.column("sales_key"), pa.array(sorted(added))))
        .column("_source_file")
        .to_pylist()
    )
    assert files == {held_back.relative_to(demo_project).as_posix()}, (
        "only the new file's rows are new"
    )
    assert after.num_rows == before.num_rows + len(added)

    # SCD2 invariants: one current version per member, equal to the dimension.
    history = read_table(project, "core.dim_customer_history").to_pylist()
    current = [h for h in history if h["is_current"]]
    dim = read_table(project, "core.dim_customer")
    assert sorted(h["customer_key"] for h in current) == sorted(
        dim.column("customer_key").to_pylist()
    )
    assert all(h["valid_to"] is None for h in current)
    assert all(h["valid_to"] is not None for h in history if not h["is_current"])

    # Re-running the same inputs changes nothing; a full refresh rebuilds the same facts.
    third = project.run()
    assert third.exit_code == EXIT_OK
    assert normalised(read_table(project, "core.fct_sales")) == normalised(after)
    refreshed = project.run(full_refresh=True)
    assert refreshed.exit_code == EXIT_OK, refreshed.error
    assert normalised(read_table(project, "core.fct_sales")) == normalised(after)
