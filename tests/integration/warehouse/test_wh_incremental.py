"""Incremental publishing on both warehouses: only new fact rows, SCD2 on a changed customer,
idempotent re-runs, and an explicit full refresh. Known answers on hand-built tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase, open_postgres

from retailhub.pipeline import incremental
from retailhub.warehouse.base import PublishBatch, Warehouse
from retailhub.warehouse.keys import ForeignKey, SupportsKeys, TableKeys

pytestmark = [pytest.mark.integration]

KEYS = {
    "core.dim_customer": TableKeys(primary_key=("customer_key",), is_dimension=True),
    "core.fct_sales": TableKeys(
        primary_key=("sales_key",),
        foreign_keys=(ForeignKey(("customer_key",), "core.dim_customer", ("customer_key",)),),
        is_fact=True,
    ),
}
T1 = datetime(2026, 1, 1, 6, 0)
T2 = datetime(2026, 1, 2, 6, 0)
T3 = datetime(2026, 1, 3, 6, 0)


@pytest.fixture
def pg_wh(pg_db: PgDatabase, tmp_path: Path) -> Iterator[Warehouse]:
    wh = open_postgres(pg_db, tmp_path)
    try:
        yield wh
    finally:
        wh.close()


def run(
    wh: Warehouse,
    customers: str,
    sales: str,
    now: datetime,
    *,
    full_refresh: bool = False,
    sales_columns: str = "sales_key, customer_key, amount",
) -> incremental.IncrementalSummary:
    con = wh.compute
    con.execute("create schema if not exists work.core")
    con.execute(
        "create or replace table work.core.dim_customer as select * from (values "
        f"{customers}) t (customer_key, customer_name, country, order_count)"
    )
    con.execute(
        "create or replace table work.core.fct_sales as select * from (values "
        f"{sales}) t ({sales_columns})"
    )
    batch = PublishBatch(
        replace={
            "core.dim_customer": "work.core.dim_customer",
            "core.fct_sales": "work.core.fct_sales",
        }
    )
    keys = dict(KEYS)
    summary = incremental.prepare(con, wh, batch, keys, now=now, full_refresh=full_refresh)
    if isinstance(wh, SupportsKeys):
        wh.declare_keys(keys)
    wh.publish(batch)
    return summary


def rows(wh: Warehouse, sql: str) -> list[tuple]:
    return [tuple(r) for r in wh.query(sql).rows]


def test_incremental_runs_scd2_and_full_refresh(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    first = run(wh, "(1, 'Ann', 'UK', 1), (2, 'Bob', 'FR', 1)", "(10, 1, 5.0), (11, 2, 7.0)", T1)
    assert first.mode["core.fct_sales"] == "full"

    # Ann moved, Bob ordered again (a measure, not an attribute), Cy is new; two new sales.
    customers = "(1, 'Ann', 'DE', 2), (2, 'Bob', 'FR', 5), (3, 'Cy', 'ES', 1)"
    sales = "(10, 1, 5.0), (11, 2, 7.0), (12, 3, 1.0), (13, 1, 2.0)"
    second = run(wh, customers, sales, T2)
    assert second.mode["core.fct_sales"] == "new_rows"
    assert second.rows["core.fct_sales"] == 2
    assert rows(wh, "select sales_key, customer_key from core.fct_sales order by 1") == [
        (10, 1),
        (11, 2),
        (12, 3),
        (13, 1),
    ]
    assert rows(
        wh, "select customer_key, country, order_count from core.dim_customer order by 1"
    ) == [(1, "DE", 2), (2, "FR", 5), (3, "ES", 1)]
    history = rows(
        wh,
        "select customer_key, country, valid_from, valid_to, is_current "
        "from core.dim_customer_history order by customer_key, valid_from",
    )
    assert history == [
        (1, "UK", datetime(1900, 1, 1), T2, False),
        (1, "DE", T2, None, True),
        (2, "FR", datetime(1900, 1, 1), None, True),
        (3, "ES", datetime(1900, 1, 1), None, True),
    ]
    # Bob's current version (no attribute changed) has his measures as they are now, not as
    # they were when it opened; Ann's closed version keeps hers of then
    assert rows(
        wh,
        "select customer_key, order_count from core.dim_customer_history "
        "where is_current or customer_key = 1 order by customer_key, valid_from",
    ) == [(1, 1), (1, 2), (2, 5), (3, 1)]

    # The same inputs again: nothing new is loaded, nothing changes.
    before = {
        t: rows(wh, f"select * from {t} order by 1, 2")
        for t in ("core.fct_sales", "core.dim_customer", "core.dim_customer_history")
    }
    third = run(wh, customers, sales, T3)
    assert third.rows["core.fct_sales"] == 0
    for table, content in before.items():
        assert rows(wh, f"select * from {table} order by 1, 2") == content, table

    # A full refresh replaces the facts with exactly what was built (here: one row revised).
    refreshed = run(
        wh, customers, sales.replace("(12, 3, 1.0)", "(12, 3, 9.0)"), T3, full_refresh=True
    )
    assert refreshed.mode["core.fct_sales"] == "full"
    assert rows(wh, "select amount from core.fct_sales where sales_key = 12") == [(9.0,)]
    assert rows(wh, "select count(*) from core.fct_sales") == [(4,)]
    assert rows(wh, "select count(*) from core.dim_customer_history") == [(4,)]


def test_facts_whose_published_keys_changed_are_replaced_not_appended(open_warehouse) -> None:
    """A new key definition (or renumbered lines) must not leave every line there twice."""
    wh = open_warehouse()
    wh.init_schema()
    customers = "(1, 'Ann', 'UK', 1), (2, 'Bob', 'FR', 1)"
    run(wh, customers, "(10, 1, 5.0), (11, 2, 7.0)", T1)

    # The same two lines under new keys, and one new line.
    rekeyed = run(wh, customers, "(110, 1, 5.0), (111, 2, 7.0), (112, 2, 1.0)", T2)
    assert rekeyed.mode["core.fct_sales"] == "full"
    assert rows(wh, "select sales_key, amount from core.fct_sales order by 1") == [
        (110, 5.0),
        (111, 7.0),
        (112, 1.0),
    ]

    # With the keys stable again, the next run appends as usual.
    later = run(wh, customers, "(110, 1, 5.0), (111, 2, 7.0), (112, 2, 1.0), (113, 1, 3.0)", T3)
    assert later.mode["core.fct_sales"] == "new_rows"
    assert later.rows["core.fct_sales"] == 1


def test_facts_whose_keys_moved_to_other_lines_are_replaced(open_warehouse) -> None:
    """Lines renumbered by a file that sorts first keep the published keys, on other lines:
    appending only the keys not yet published would duplicate old lines and lose new ones."""
    wh = open_warehouse()
    wh.init_schema()
    customers = "(1, 'Ann', 'UK', 1)"
    columns = "sales_key, customer_key, amount, _line"
    run(wh, customers, "(10, 1, 5.0, 1), (11, 1, 7.0, 2)", T1, sales_columns=columns)

    # A new line takes key 10; the published lines move on to keys 11 and 12.
    moved = "(10, 1, 9.0, 1), (11, 1, 5.0, 1), (12, 1, 7.0, 2)"
    summary = run(wh, customers, moved, T2, sales_columns=columns)
    assert summary.mode["core.fct_sales"] == "full"
    assert rows(wh, "select sales_key, amount from core.fct_sales order by 1") == [
        (10, 9.0),
        (11, 5.0),
        (12, 7.0),
    ]


@pytest.mark.postgres
def test_postgres_keeps_foreign_keys_while_upserting_dimensions(pg_wh: Warehouse) -> None:
    wh = pg_wh
    wh.init_schema()
    run(wh, "(1, 'Ann', 'UK', 1)", "(10, 1, 5.0)", T1)
    run(wh, "(1, 'Ann', 'DE', 1), (2, 'Bo', 'FR', 1)", "(10, 1, 5.0), (11, 2, 1.0)", T2)
    fks = rows(
        wh,
        "select conrelid::regclass::text, confrelid::regclass::text from pg_constraint "
        "where contype = 'f'",
    )
    assert fks == [("core.fct_sales", "core.dim_customer")]
    pk = rows(
        wh,
        "select count(*) from pg_constraint where contype = 'p' "
        "and conrelid = 'core.dim_customer_history'::regclass",
    )
    assert pk == [(1,)]
    fact_pk = rows(
        wh,
        "select count(*) from pg_constraint where contype = 'p' "
        "and conrelid = 'core.fct_sales'::regclass",
    )
    assert fact_pk == [(1,)]


@pytest.mark.postgres
def test_postgres_restores_a_foreign_key_dropped_with_its_dimension(pg_wh: Warehouse) -> None:
    """``drop table core.dim_customer cascade`` drops the fact's foreign key too; the next
    incremental run (which only appends facts) declares it again."""
    wh = pg_wh
    wh.init_schema()
    run(wh, "(1, 'Ann', 'UK', 1)", "(10, 1, 5.0)", T1)
    admin = psycopg.connect(wh.target.conninfo(), autocommit=True)  # type: ignore[attr-defined]
    admin.execute("drop table core.dim_customer cascade")
    fks = "select confrelid::regclass::text, convalidated from pg_constraint where contype = 'f'"
    assert rows(wh, fks) == []
    second = run(wh, "(1, 'Ann', 'UK', 1), (2, 'Bo', 'FR', 1)", "(10, 1, 5.0), (11, 2, 1.0)", T2)
    assert second.mode["core.fct_sales"] == "new_rows"
    assert rows(wh, fks) == [("core.dim_customer", False)]  # NOT VALID, as when first built
    assert rows(wh, "select count(*) from core.fct_sales") == [(2,)]
    # Enforced from now on: a fact row without its customer is refused.
    with admin, pytest.raises(psycopg.errors.ForeignKeyViolation):
        admin.execute("insert into core.fct_sales values (99, 42, 1.0)")


@pytest.mark.postgres
def test_postgres_audits_upserts_and_deleted_members(pg_wh: Warehouse) -> None:
    from retailhub.warehouse import audit

    wh = pg_wh
    wh.init_schema()
    run(wh, "(1, 'Ann', 'UK', 1), (2, 'Bob', 'FR', 1), (9, 'Gone', 'IT', 0)", "(10, 1, 5.0)", T1)
    con = wh.compute
    con.execute(
        "create or replace table work.core.dim_customer as select * from (values "
        "(1, 'Ann', 'DE', 1), (2, 'Bob', 'FR', 1)) t (customer_key, customer_name, country, "
        "order_count)"
    )
    con.execute(
        "create or replace table work.core.fct_sales as select 10 as sales_key, "
        "1 as customer_key, 5.0 as amount"
    )
    batch = PublishBatch(
        replace={
            "core.dim_customer": "work.core.dim_customer",
            "core.fct_sales": "work.core.fct_sales",
        }
    )
    keys = dict(KEYS)
    summary = incremental.prepare(con, wh, batch, keys, now=T2)
    wh.declare_keys(keys)
    audit.add_publish_entries(wh, batch, {}, run_id="run-2", incremental=summary.appended)
    wh.publish(batch)
    entries = rows(
        wh,
        "select operation, object_name, rows_affected, detail from meta.audit_log "
        "where object_name = 'core.dim_customer' order by operation",
    )
    assert entries == [
        ("delete", "core.dim_customer", 1, "members absent from the new build"),
        ("upsert", "core.dim_customer", 1, "0 inserted, 1 updated by primary key"),
    ]
    assert rows(wh, "select customer_key from core.dim_customer order by 1") == [(1,), (2,)]
