"""The adapter contract, one body for both warehouses (DuckDB and PostgreSQL).

Known answers: small hand-built tables with every column type the pipeline uses, including
the awkward values (NULL, empty string, quotes, non-ASCII, negative decimals, list columns).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from retailhub.warehouse.base import PublishBatch, StagedTable, Warehouse, is_staging_table
from retailhub.warehouse.ledger_schema import LEDGER_TABLES

pytestmark = [pytest.mark.integration]

TYPED = """
    select * from (values
        (1, 10, 1.5, cast(12.3456 as decimal(18,4)), 'plain', true, date '2011-01-31',
         timestamp '2011-01-31 08:26:00', ['web', 'store']),
        (2, -20, -0.25, cast(-0.0001 as decimal(18,4)), '', false, date '1999-12-31',
         timestamp '1999-12-31 23:59:59.123456', []),
        (3, null, null, null, null, null, null, null, null),
        (4, 0, 1e300, cast(99999999999999.9999 as decimal(18,4)), 'quote '' "dq" ? % é ü 中',
         true, date '2024-02-29', timestamp '2024-02-29 00:00:00', ['a,b', 'c"d'])
    ) as t (id, qty, ratio, amount, label, flag, sale_day, sold_at, tags)
"""
TYPED_CAST = f"""
    select cast(id as bigint) as id, cast(qty as integer) as qty, cast(ratio as double) as ratio,
           amount, cast(label as varchar) as label, flag, sale_day, sold_at,
           cast(tags as varchar[]) as tags
    from ({TYPED})
"""


def build(wh: Warehouse, name: str, sql: str) -> str:
    schema, table = name.split(".")
    wh.compute.execute(f"create schema if not exists work.{schema}")
    wh.compute.execute(f"create or replace table work.{schema}.{table} as {sql}")
    return f"work.{schema}.{table}"


def test_init_schema_is_idempotent(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    wh.init_schema()
    for table in LEDGER_TABLES:
        assert wh.table_exists(table), table
    assert not wh.table_exists("core.nothing_here")


def test_publish_round_trip_keeps_values_and_types(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    rel = build(wh, "core.typed", TYPED_CAST)
    raw = build(wh, "accepted.typed", f"select *, 'run-1' as _run_id from {rel}")
    wh.publish(
        PublishBatch(
            replace={"core.typed": rel},
            append={"raw.typed": raw},
            rows={"meta.lineage": [{"run_id": "run-1", "source_table": "a", "target_table": "b"}]},
        )
    )
    assert wh.query("select count(*) from core.typed").rows == [(4,)]
    assert wh.query("select count(*) from raw.typed").rows == [(4,)]
    assert wh.query("select source_table from meta.lineage").rows == [("a",)]
    got = wh.query("select id, amount, label, tags from core.typed order by id").rows
    assert got[0][1] == Decimal("12.3456")
    assert got[1][2] == ""
    assert got[2][2] is None
    assert got[3][2] == 'quote \' "dq" ? % é ü 中'
    assert list(got[3][3]) == ["a,b", 'c"d']
    assert list(got[1][3]) == []

    # History comes back into the compute database with the types it was built with.
    con = wh.compute
    for table, original in (("core.typed", rel), ("raw.typed", raw)):
        hist = wh.history_relation(table)
        assert hist is not None
        want = [(r[0], r[1]) for r in con.execute(f"describe {original}").fetchall()]
        have = [(r[0], r[1]) for r in con.execute(f"describe {hist}").fetchall()]
        assert have == want, table
        diff = con.execute(
            f"select count(*) from ((select * from {hist} except all select * from {original}) "
            f"union all (select * from {original} except all select * from {hist}))"
        ).fetchall()
        assert diff == [(0,)], table
    assert wh.history_relation("raw.absent") is None


def test_read_arrow_returns_decimals(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    wh.publish(PublishBatch(replace={"core.typed": build(wh, "core.typed", TYPED_CAST)}))
    table = wh.read_arrow("select id, amount from core.typed order by id")
    assert str(table.schema.field("amount").type) == "decimal128(18, 4)"
    assert table.column("amount").to_pylist()[3] == Decimal("99999999999999.9999")


def test_append_adds_rows_and_new_columns(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    first = build(wh, "accepted.a1", "select 1 as id, 'x' as v, 'run-1' as _run_id")
    wh.publish(PublishBatch(append={"raw.items": first}))
    second = build(wh, "accepted.a2", "select 2 as id, 'y' as v, 'run-2' as _run_id")
    wh.publish(PublishBatch(append={"raw.items": second}))
    rows = wh.query("select id, v, _run_id from raw.items order by id").rows
    assert rows == [(1, "x", "run-1"), (2, "y", "run-2")]


def staged_build(wh: Warehouse, target: str, run_id: str, sql: str) -> str:
    """Build ``target``'s next content where the adapter wants it (its staging table, or the
    scratch database when it has none), as the pipeline does."""
    staged = wh.staging_table(target, run_id)
    if staged is None:
        return build(wh, target, sql)
    wh.compute.execute(f"create table {staged} as {sql}")
    return staged


def staging_left(wh: Warehouse) -> list[str]:
    rows = wh.query("select table_schema, table_name from information_schema.tables").rows
    return [f"{schema}.{name}" for schema, name in rows if is_staging_table(name)]


def test_staged_tables_publish_under_their_names_and_leave_none_behind(open_warehouse) -> None:
    """DuckDB builds big tables in its own file and publishes them by renaming; PostgreSQL has
    no staging table and copies. Either way the published tables are the same."""
    wh = open_warehouse()
    wh.init_schema()
    old_run = wh.staging_table("core.typed", "run-0")
    if old_run:  # a failed run's unpublished build: the next publish removes it
        wh.compute.execute(f"create table {old_run} as select 1 as x")
    for run, rows in (("run-1", 4), ("run-2", 8)):
        core = staged_build(wh, "core.typed", run, TYPED_CAST)
        raw = staged_build(wh, "raw.typed", run, TYPED_CAST)
        wh.publish(
            PublishBatch(
                replace={"core.typed": core},
                append={"raw.typed": f"(select *, '{run}' as _run_id from {raw})"},
                adoptable={"raw.typed": StagedTable(raw, {"_run_id": run})},
            )
        )
        assert wh.query("select count(*) from core.typed").rows == [(4,)]
        assert wh.query("select count(*), count(distinct _run_id) from raw.typed").rows == [
            (rows, rows // 4)
        ]
        assert staging_left(wh) == []
    columns = wh.query("select * from raw.typed where false").columns
    assert columns == ["id", "qty", "ratio", "amount", "label", "flag", "sale_day", "sold_at",
                       "tags", "_run_id"]  # fmt: skip
    got = wh.query("select id, amount, label, tags, _run_id from raw.typed order by _run_id, id")
    assert got.rows[3][2] == 'quote \' "dq" ? % é ü 中'
    assert got.rows[3][1] == Decimal("99999999999999.9999")
    assert [r[4] for r in got.rows] == ["run-1"] * 4 + ["run-2"] * 4
    # The constant column is an ordinary column afterwards: no default sneaks into later rows.
    default = wh.query(
        "select column_default from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'typed' and column_name = '_run_id'"
    )
    assert default.rows == [(None,)]


def test_failed_publish_keeps_previous_state(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    v1 = build(wh, "core.v1", "select range as id, range * 2 as val from range(100)")
    raw1 = build(wh, "accepted.r1", "select range as id, 'run-1' as _run_id from range(100)")
    wh.publish(PublishBatch(replace={"core.t1": v1, "core.t2": v1}, append={"raw.r": raw1}))

    v2 = build(wh, "core.v2", "select range as id, -1 as val from range(7)")
    raw2 = build(wh, "accepted.r2", "select range as id, 'run-2' as _run_id from range(7)")
    seen: list[str] = []

    def boom(table: str) -> None:
        seen.append(table)
        if len(seen) == 2:
            raise RuntimeError("injected failure between two table writes")

    with pytest.raises(RuntimeError, match="injected"):
        wh.publish(
            PublishBatch(
                replace={"core.t1": v2, "core.t2": v2},
                append={"raw.r": raw2},
                rows={
                    "meta.lineage": [{"run_id": "run-2", "source_table": "x", "target_table": "y"}]
                },
                after_table=boom,
            )
        )
    assert len(seen) == 2
    for table in ("core.t1", "core.t2"):
        assert wh.query(f"select count(*), sum(val) from {table}").rows == [(100, 9900)]
    assert wh.query("select count(*), min(_run_id) from raw.r").rows == [(100, "run-1")]
    assert wh.query("select count(*) from meta.lineage").rows == [(0,)]

    # And the warehouse is still writable afterwards.
    wh.publish(PublishBatch(replace={"core.t1": v2, "core.t2": v2}, append={"raw.r": raw2}))
    assert wh.query("select count(*) from core.t1").rows == [(7,)]
    assert wh.query("select count(*) from raw.r").rows == [(107,)]


def test_ledger_statements_take_qmark_parameters(open_warehouse) -> None:
    wh = open_warehouse()
    wh.init_schema()
    wh.insert_rows(
        "meta.lineage",
        [{"run_id": "r?1", "source_table": "50% off", "target_table": "t", "rows": 3}],
    )
    wh.execute("update meta.lineage set rows = ? where run_id = ?", [4, "r?1"])
    res = wh.query(
        "select rows, source_table, '?' as q, '100%' as pct from meta.lineage where run_id = ?",
        ["r?1"],
    )
    assert res.columns == ["rows", "source_table", "q", "pct"]
    assert res.rows == [(4, "50% off", "?", "100%")]
