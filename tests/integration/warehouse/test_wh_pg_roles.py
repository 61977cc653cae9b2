"""``warehouse init`` roles: connect as each one and check what it may do and what it may not."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from tests.integration.warehouse.wh_helpers import PgDatabase, open_postgres

from retailhub.warehouse.base import PublishBatch
from retailhub.warehouse.pg_roles import init_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def init(db: PgDatabase):
    with psycopg.connect(db.admin.conninfo(), autocommit=True) as conn:
        return init_warehouse(conn, db.roles)


def publish_as_loader(db: PgDatabase, tmp: Path, run: str) -> None:
    wh = open_postgres(db, tmp, target=db.as_role(db.roles.loader), label=run)
    try:
        wh.init_schema()
        con = wh.compute
        for schema in ("core", "marts", "acc"):
            con.execute(f"create schema if not exists work.{schema}")
        con.execute("create or replace table work.core.dim_x as select 1 as x_key, 'a' as name")
        con.execute("create or replace table work.marts.mart_x as select 1 as x_key, 2 as n")
        con.execute(
            f"create or replace table work.acc.x as select 'secret@example.com' as email, "
            f"'{run}' as _run_id"
        )
        wh.publish(
            PublishBatch(
                replace={"core.dim_x": "work.core.dim_x", "marts.mart_x": "work.marts.mart_x"},
                append={"raw.x": "work.acc.x", "quarantine.x": "work.acc.x"},
                rows={"meta.lineage": [{"run_id": run, "source_table": "a", "target_table": "b"}]},
            )
        )
    finally:
        wh.close()


def denied(conn: psycopg.Connection, sql: str) -> bool:
    try:
        conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_init_is_idempotent_and_creates_non_superuser_roles(pg_db: PgDatabase) -> None:
    first = init(pg_db)
    assert set(first.created_roles) == {pg_db.roles.loader, pg_db.roles.analyst}
    second = init(pg_db)
    assert second.created_roles == []
    assert second.created_schemas == []
    rows = pg_db.sql(
        "select rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin from pg_roles "
        "where rolname = any(%s) order by rolname",
        ([pg_db.roles.analyst, pg_db.roles.loader],),
    )
    assert [r[1:] for r in rows] == [(False, False, False, True)] * 2
    grants = pg_db.sql(
        "select count(*) from meta.audit_log where operation = 'grant' and db_role = current_user"
    )
    assert grants[0][0] > 0


def test_loader_publishes_but_cannot_tamper(pg_db: PgDatabase, tmp_path: Path) -> None:
    init(pg_db)
    publish_as_loader(pg_db, tmp_path, "run-1")
    publish_as_loader(pg_db, tmp_path, "run-2")  # replaces tables the loader owns
    assert pg_db.sql("select count(*) from raw.x") == [(2,)]
    loader = pg_db.as_role(pg_db.roles.loader)
    with psycopg.connect(loader.conninfo(), autocommit=True) as conn:
        assert conn.execute(
            "select rolsuper from pg_roles where rolname = current_user"
        ).fetchone() == (False,)
        assert conn.execute("select count(*) from raw.x").fetchone() == (2,)
        # the loader may add audit rows, but not say they are another role's or backdate them
        conn.execute(
            "insert into meta.audit_log (logged_at, operation, object_name, db_role) "
            "values (now() - interval '1 year', 'load', 'forged', 'postgres')"
        )
        # ... nor by shadowing the catalog names the stamping trigger uses: a temporary
        # pg_class (pg_temp comes first in a default search path), or a pg_has_role of its
        # own in meta, where it may create objects
        conn.execute(
            "create temp table pg_class as select 'meta.audit_log'::regclass::oid as oid, "
            "(select oid from pg_roles where rolname = current_user) as relowner"
        )
        conn.execute(
            "create function meta.pg_has_role(name, oid, text) returns boolean "
            "language sql as 'select true'"
        )
        conn.execute("set search_path = meta, pg_catalog")
        conn.execute(
            "insert into meta.audit_log (logged_at, operation, object_name, db_role) "
            "values (now() - interval '1 year', 'load', 'shadowed', 'postgres')"
        )
        conn.execute("reset search_path")
        assert conn.execute(
            "select db_role, logged_at > now() at time zone 'utc' - interval '1 hour' "
            "from meta.audit_log where object_name in ('forged', 'shadowed') "
            "group by 1, 2"
        ).fetchall() == [(pg_db.roles.loader, True)]
        assert denied(conn, "update meta.audit_log set detail = 'rewritten'")
        assert denied(conn, "delete from meta.audit_log")
        assert denied(conn, "drop table meta.audit_log")
        assert denied(conn, "drop schema core cascade")
        assert denied(conn, "create role sneaky")


def test_analyst_reads_core_and_marts_only(pg_db: PgDatabase, tmp_path: Path) -> None:
    init(pg_db)
    publish_as_loader(pg_db, tmp_path, "run-1")
    analyst = pg_db.as_role(pg_db.roles.analyst)
    with psycopg.connect(analyst.conninfo(), autocommit=True) as conn:
        assert conn.execute("select name from core.dim_x").fetchall() == [("a",)]
        assert conn.execute("select n from marts.mart_x").fetchall() == [(2,)]
        for table in ("raw.x", "quarantine.x", "meta.pipeline_runs", "meta.audit_log"):
            assert denied(conn, f"select * from {table}"), table
        assert denied(conn, "insert into core.dim_x values (2, 'b')")
        assert denied(conn, "update core.dim_x set name = 'b'")
        assert denied(conn, "create table core.mine (id int)")
        assert denied(conn, "drop table core.dim_x")
        assert denied(conn, "truncate marts.mart_x")
        assert denied(conn, "create temp table scratch (id int)")  # PUBLIC's TEMP revoked
    # A later publish swaps in new tables: the analyst keeps reading them.
    publish_as_loader(pg_db, tmp_path, "run-2")
    with psycopg.connect(analyst.conninfo(), autocommit=True) as conn:
        assert conn.execute("select count(*) from core.dim_x").fetchone() == (1,)
        assert conn.execute("select count(*) from marts.mart_x").fetchone() == (1,)
        assert denied(conn, "select * from raw.x")


def meta_indexes(db: PgDatabase) -> set[str]:
    rows = db.sql("select indexname from pg_indexes where schemaname = 'meta'")
    return {r[0] for r in rows}


def test_ledger_indexes_come_with_init_and_return_where_the_role_may(
    pg_db: PgDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A ledger indexed before the indexes existed gets them from the next run's owner."""
    from retailhub.warehouse.ledger_schema import LEDGER_INDEXES

    init(pg_db)
    assert set(LEDGER_INDEXES) <= meta_indexes(pg_db)

    # An older warehouse: two indexes missing, one on a table the loader owns, one on the
    # audit log, which stays the administrator's.
    pg_db.sql("drop index meta.task_runs_run_id_idx; drop index meta.audit_log_logged_at_idx")
    wh = open_postgres(pg_db, tmp_path, target=pg_db.as_role(pg_db.roles.loader))
    try:
        wh.init_schema()
    finally:
        wh.close()
    assert "task_runs_run_id_idx" in meta_indexes(pg_db)
    assert "audit_log_logged_at_idx" not in meta_indexes(pg_db)
    assert "audit_log_logged_at_idx" in caplog.text
    assert "retailhub warehouse init" in caplog.text

    init(pg_db)
    assert set(LEDGER_INDEXES) <= meta_indexes(pg_db)


def test_a_swap_keeps_what_a_dba_set_on_the_table_it_replaces(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    """Column grants, row-level security with its policies, and comments went with the
    dropped table: a BI role lost its access, and the analyst saw rows a policy hid."""
    init(pg_db)
    publish_as_loader(pg_db, tmp_path, "run-1")
    bi = f"{pg_db.name}_bi"
    pg_db.sql(f"create role {bi} login")
    try:
        pg_db.sql(f"grant usage on schema marts to {bi}")
        pg_db.sql(f"grant select (x_key) on marts.mart_x to {bi}")
        pg_db.sql("alter table marts.mart_x enable row level security")
        pg_db.sql(
            f"create policy only_big on marts.mart_x for select to {pg_db.roles.analyst} "
            "using (n > 5)"
        )
        pg_db.sql("comment on table marts.mart_x is 'KPIs, one row per key'")
        pg_db.sql("comment on column marts.mart_x.n is 'the count''s value'")
        publish_as_loader(pg_db, tmp_path, "run-2")
        assert pg_db.sql(
            "select relrowsecurity, obj_description(oid, 'pg_class'), "
            "col_description(oid, 2) from pg_class where oid = 'marts.mart_x'::regclass"
        ) == [(True, "KPIs, one row per key", "the count's value")]
        assert pg_db.sql(
            "select policyname, roles::text, qual from pg_policies where tablename = 'mart_x'"
        ) == [("only_big", "{" + pg_db.roles.analyst + "}", "(n > 5)")]
        assert pg_db.sql(
            f"select has_column_privilege('{bi}', 'marts.mart_x', 'x_key', 'select'), "
            f"has_column_privilege('{bi}', 'marts.mart_x', 'n', 'select')"
        ) == [(True, False)]
        with psycopg.connect(pg_db.as_role(bi).conninfo(), autocommit=True) as conn:
            assert conn.execute("select x_key from marts.mart_x").fetchall() == []  # no policy
            assert denied(conn, "select n from marts.mart_x")
        with psycopg.connect(pg_db.as_role(pg_db.roles.analyst).conninfo()) as conn:
            assert conn.execute("select count(*) from marts.mart_x").fetchone() == (0,)
    finally:
        pg_db.sql(f"drop owned by {bi}")
        pg_db.sql(f"drop role {bi}")
