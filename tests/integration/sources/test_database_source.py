"""Database source against real MariaDB and PostgreSQL: table, query, watermark, failures."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import duckdb
import pytest

from retailhub.config.sources import parse_source_config
from retailhub.errors import ConfigError, SourceError, SourceUnavailable
from retailhub.sources import SourceState, build_source, land

pytestmark = pytest.mark.integration

ROWS = [
    (1, "85123A", 6, "2.55", "2024-01-01 10:00:00"),
    (2, "71053", 6, "3.39", "2024-01-01 10:05:00"),
    (3, "84406B", 8, "2.75", "2024-01-02 09:00:00"),
]


def _create_orders(db, rows=ROWS) -> str:
    table = f"{db.prefix}_orders"
    ts_type = "DATETIME(6)" if db.kind == "mysql" else "TIMESTAMP(6)"
    db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, sku VARCHAR(20), qty INTEGER, "
        f"price DECIMAL(10,2), updated_at {ts_type})"
    )
    if rows:
        _insert(db, table, rows)
    return table


def _insert(db, table: str, rows) -> None:
    values = ", ".join(f"({i}, '{s}', {q}, {p}, '{t}')" for i, s, q, p, t in rows)
    db.execute(f"INSERT INTO {table} VALUES {values}")


def _source(db, **raw):
    raw.setdefault("layout", "none")
    return build_source(
        parse_source_config("erp", {"type": "database", "url": db.url, **raw}), None
    )  # type: ignore[arg-type]


def _land(src, state: SourceState | None = None):
    con = duckdb.connect()
    units = src.discover(state or SourceState())
    return con, units, land(con, src, units, "raw")


def test_table_extraction_keeps_types(db) -> None:
    table = _create_orders(db)
    con, (unit,), (landed,) = _land(_source(db, table=table))
    assert landed.rows == 3
    assert unit.uri.endswith(f"#{table}") and unit.checksum is None
    rows = con.sql("SELECT id, sku, qty, price, updated_at FROM raw ORDER BY id").fetchall()
    assert rows[0] == (
        1,
        "85123A",
        6,
        Decimal("2.55") if db.kind == "mysql" else "2.55",
        dt.datetime(2024, 1, 1, 10, 0),
    )
    assert [r[0] for r in rows] == [1, 2, 3]
    assert con.sql("SELECT _line, _source FROM raw ORDER BY _line").fetchall() == [
        (1, "erp"),
        (2, "erp"),
        (3, "erp"),
    ]


def test_query_extraction(db) -> None:
    table = _create_orders(db)
    con, _, (landed,) = _land(_source(db, query=f"SELECT id, sku FROM {table} WHERE qty > 6;"))
    assert landed.rows == 1
    assert con.sql("SELECT id, sku FROM raw").fetchall() == [(3, "84406B")]


def test_query_ending_in_a_line_comment(db) -> None:
    table = _create_orders(db)
    query = f"SELECT id, sku FROM {table}\nWHERE qty > 6 -- only the big orders"
    con, _, (landed,) = _land(_source(db, query=query))
    assert landed.rows == 1
    assert con.sql("SELECT id, sku FROM raw").fetchall() == [(3, "84406B")]


def test_small_batches_stream(db) -> None:
    table = _create_orders(db)
    src = _source(db, table=table, batch_size=1)
    reader = src.open(src.discover(SourceState())[0])
    assert sum(b.num_rows for b in reader) == 3


def test_incremental_watermark_only_new_rows(db) -> None:
    table = _create_orders(db)
    src = _source(db, table=table, watermark_column="updated_at")
    _, (unit1,), (first,) = _land(src)
    assert unit1.watermark_from is None and first.rows == 3
    mark = src.new_watermark()
    assert mark == "2024-01-02 09:00:00"
    assert first.watermark_to == mark

    _insert(
        db,
        table,
        [
            (4, "22423", 1, "12.75", "2024-01-03 08:00:00"),
            (5, "POST", 1, "18.00", "2024-01-03 08:00:01"),
        ],
    )
    con, (unit2,), (second,) = _land(src, SourceState(last_watermark=mark, watermark_uri=unit1.uri))
    assert unit2.watermark_from == mark
    assert second.rows == 2
    assert con.sql("SELECT id FROM raw ORDER BY id").fetchall() == [(4,), (5,)]
    assert src.new_watermark() == "2024-01-03 08:00:01"

    _, _, (third,) = _land(src, SourceState(last_watermark=src.new_watermark()))
    assert third.rows == 0
    assert src.new_watermark() == "2024-01-03 08:00:01"  # unchanged when nothing is new


def test_integer_watermark_on_a_query(db) -> None:
    table = _create_orders(db)
    src = _source(db, query=f"SELECT id, sku FROM {table}", watermark_column="id")
    _, _, (first,) = _land(src, SourceState(last_watermark="1"))
    assert first.rows == 2 and src.new_watermark() == "3"


def test_a_watermark_is_not_reused_for_another_column_or_query(db) -> None:
    """A timestamp stored for `updated_at` compared with `id` would skip every id up to 2024."""
    table = _create_orders(db)
    by_time = _source(db, table=table, watermark_column="updated_at")
    (unit,) = by_time.discover(SourceState())
    assert unit.uri.endswith(f"#{table}?watermark=updated_at")
    stored = SourceState(last_watermark="2024-01-02 09:00:00", watermark_uri=unit.uri)
    assert by_time.discover(stored)[0].watermark_from == "2024-01-02 09:00:00"
    by_id = _source(db, table=table, watermark_column="id")
    with pytest.raises(ConfigError, match=r"taken on .*\?watermark=updated_at.*now reads") as err:
        by_id.discover(stored)
    assert err.value.exit_code == 2
    query = _source(db, query=f"SELECT * FROM {table}", watermark_column="updated_at")
    other = _source(db, query=f"SELECT * FROM {table} WHERE qty > 1", watermark_column="updated_at")
    (q_unit,) = query.discover(SourceState())
    q_stored = SourceState(last_watermark="2024-01-02 09:00:00", watermark_uri=q_unit.uri)
    with pytest.raises(ConfigError, match="now reads"):
        other.discover(q_stored)
    # a watermark recorded before units named their column is still honoured
    legacy = SourceState(last_watermark="3", watermark_uri=unit.uri.split("?")[0])
    assert by_id.discover(legacy)[0].watermark_from == "3"


def test_a_numeric_watermark_is_compared_as_a_number(db) -> None:
    """PostgreSQL numeric arrives as text: its maximum must be 10, not '9'."""
    table = f"{db.prefix}_seq"
    db.execute(f"CREATE TABLE {table} (id NUMERIC(20,0), note VARCHAR(10))")
    db.execute(f"INSERT INTO {table} VALUES (9, 'a'), (10, 'b'), (2, 'c')")
    src = _source(db, table=table, watermark_column="id")
    _, _, (first,) = _land(src)
    assert first.rows == 3 and src.new_watermark() == "10"
    db.execute(f"INSERT INTO {table} VALUES (11, 'd')")
    _, _, (second,) = _land(src, SourceState(last_watermark="10"))
    assert second.rows == 1 and src.new_watermark() == "11"


def _next_state(src, unit) -> SourceState:
    """What the ledger hands the next extraction after ``src`` read ``unit``."""
    return SourceState(
        last_watermark=src.new_watermark(),
        watermark_uri=unit.uri,
        watermark_window=src.watermark_window(),
    )


def test_rows_at_the_stored_watermark_are_read_once(db) -> None:
    """A row committed after an extraction with the watermark it had reached (the same
    second) used to be skipped for good; read from the watermark inclusive, the rows read
    before are recognised by their fingerprints and dropped."""
    table = _create_orders(db)
    src = _source(db, table=table, watermark_column="updated_at")
    _, (unit,), (first,) = _land(src)
    assert first.rows == 3 and src.new_watermark() == "2024-01-02 09:00:00"
    assert len(src.watermark_window().fingerprints) == 1  # row 3, alone at the highest value
    _insert(
        db,
        table,
        [
            (4, "22423", 1, "12.75", "2024-01-02 09:00:00"),  # same second as row 3
            (5, "POST", 1, "18.00", "2024-01-02 09:30:00"),
        ],
    )
    state = _next_state(src, unit)
    assert ">= '2024-01-02 09:00:00'" in src.extraction_sql(
        state.last_watermark, state.watermark_window
    )
    con, (unit,), (second,) = _land(src, state)
    assert con.sql("SELECT id FROM raw ORDER BY id").fetchall() == [(4,), (5,)]
    assert second.rows == 2 and second.watermark_to == "2024-01-02 09:30:00"
    _insert(db, table, [(6, "M", 2, "1.00", "2024-01-02 09:30:00")])
    con, (unit,), (third,) = _land(src, _next_state(src, unit))
    assert con.sql("SELECT id FROM raw").fetchall() == [(6,)] and third.rows == 1
    # nothing new: row 5 and 6 are read again and dropped, the watermark stays
    state = _next_state(src, unit)
    assert state.watermark_window is not None
    assert len(state.watermark_window.fingerprints) == 2
    _, _, (fourth,) = _land(src, state)
    assert fourth.rows == 0 and src.new_watermark() == "2024-01-02 09:30:00"


def test_a_lookback_reads_rows_that_committed_late_with_an_older_value(db) -> None:
    table = _create_orders(db)
    src = _source(db, table=table, watermark_column="updated_at", watermark_lookback="1h")
    _, (unit,), _ = _land(src)
    # the window is every row within an hour of the highest value: row 3 only (09:00)
    assert len(src.watermark_window().fingerprints) == 1
    _insert(db, table, [(7, "LATE", 1, "9.99", "2024-01-02 08:30:00")])
    state = _next_state(src, unit)
    assert ">= '2024-01-02 08:00:00'" in src.extraction_sql(
        state.last_watermark, state.watermark_window
    )
    con, (unit,), (second,) = _land(src, state)
    assert con.sql("SELECT id FROM raw").fetchall() == [(7,)] and second.rows == 1
    assert src.new_watermark() == "2024-01-02 09:00:00"  # row 3, read again, is still the top
    assert len(src.watermark_window().fingerprints) == 2  # rows 3 and 7
    _, _, (third,) = _land(src, _next_state(src, unit))
    assert third.rows == 0


def test_adding_a_lookback_later_reads_no_row_twice(db) -> None:
    """The window stored without a lookback holds only the top rows: the rows the new
    lookback reaches below it were read without fingerprints, so they are not read again."""
    table = _create_orders(db)
    plain = _source(db, table=table, watermark_column="updated_at")
    _, (unit,), _ = _land(plain)
    state = _next_state(plain, unit)
    wider = _source(db, table=table, watermark_column="updated_at", watermark_lookback="2d")
    assert ">= '2024-01-02 09:00:00'" in wider.extraction_sql(
        state.last_watermark, state.watermark_window
    )
    _insert(db, table, [(8, "NEW", 1, "1.00", "2024-01-02 10:00:00")])
    con, (unit,), (second,) = _land(wider, state)
    assert con.sql("SELECT id FROM raw").fetchall() == [(8,)] and second.rows == 1
    # the window now reaches back to where that run began reading, not two days
    assert wider.watermark_window().start == "2024-01-02 09:00:00"
    _, _, (third,) = _land(wider, _next_state(wider, unit))
    assert third.rows == 0


def test_a_watermark_column_named_in_another_case(db) -> None:
    """Found whatever its case on the first run; PostgreSQL's quoted names are
    case-sensitive, so the next run's WHERE must spell it as the table does."""
    table = _create_orders(db)
    src = _source(db, table=table, watermark_column="Updated_At")
    _, (unit,), (first,) = _land(src)
    assert first.rows == 3
    _insert(db, table, [(9, "CASE", 1, "1.00", "2024-01-05 00:00:00")])
    con, _, (second,) = _land(src, _next_state(src, unit))
    assert con.sql("SELECT id FROM raw").fetchall() == [(9,)] and second.rows == 1


def test_a_text_watermark_is_refused(db) -> None:
    table = _create_orders(db)
    with pytest.raises(SourceError, match="watermark_column 'sku' is text"):
        _land(_source(db, table=table, watermark_column="sku"))


def test_a_numeric_lookback_on_an_integer_watermark(db) -> None:
    table = _create_orders(db)
    src = _source(
        db, query=f"SELECT id, sku FROM {table}", watermark_column="id", watermark_lookback=2
    )
    _, (unit,), _ = _land(src)
    assert len(src.watermark_window().fingerprints) == 3  # ids 1..3 are within 2 of 3
    db.execute(f"DELETE FROM {table} WHERE id = 1")
    _insert(db, table, [(2 + 100, "X", 1, "1.00", "2024-01-05 00:00:00")])
    con, _, (second,) = _land(src, _next_state(src, unit))
    assert con.sql("SELECT id FROM raw").fetchall() == [(102,)] and second.rows == 1


def test_a_lookback_of_the_wrong_kind_names_the_column(db) -> None:
    table = _create_orders(db)
    src = _source(db, table=table, watermark_column="id", watermark_lookback="15m")
    with pytest.raises(SourceError, match="watermark_lookback as a number"):
        _land(src)


def test_null_watermarks_are_read_once_with_a_warning(db, caplog) -> None:
    table = f"{db.prefix}_nulls"
    db.execute(f"CREATE TABLE {table} (id INTEGER, changed INTEGER)")
    db.execute(f"INSERT INTO {table} VALUES (1, 5), (2, NULL), (3, NULL)")
    src = _source(db, table=table, watermark_column="changed")
    with caplog.at_level("WARNING", logger="retailhub.sources.watermark"):
        _, _, (first,) = _land(src)
    assert first.rows == 3 and src.new_watermark() == "5"
    assert "2 row(s) have no changed (NULL, NaN or infinite)" in caplog.text


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_postgres_numeric_nan_and_infinite_watermarks_are_read_once(db, caplog) -> None:
    """PostgreSQL numeric holds NaN and ±Infinity, which no Arrow decimal can, and sorts NaN
    and Infinity above every number: they stopped the extraction, and an infinite maximum
    would have hidden every later row. They are read once, like NULLs."""
    table = f"{db.prefix}_nan"
    db.execute(f"CREATE TABLE {table} (id INTEGER, seq NUMERIC)")
    db.execute(
        f"INSERT INTO {table} VALUES (1, 1.5), (2, 'NaN'), (3, 'Infinity'), (4, '-Infinity'), "
        "(5, 2)"
    )
    src = _source(db, table=table, watermark_column="seq")
    with caplog.at_level("WARNING", logger="retailhub.sources.watermark"):
        con, _, (first,) = _land(src)
    assert first.rows == 5 and src.new_watermark() == "2"
    assert "3 row(s) have no seq (NULL, NaN or infinite)" in caplog.text
    db.execute(f"INSERT INTO {table} VALUES (6, 'NaN'), (7, 3), (8, 2)")
    con, _, (second,) = _land(src, _next_state(src, first))
    assert sorted(con.sql("SELECT id FROM raw").fetchall()) == [(7,), (8,)]
    assert second.rows == 2 and src.new_watermark() == "3"


@pytest.mark.parametrize("db", ["mysql"], indirect=True)
def test_mariadb_zero_dates_and_wide_decimals_land(db, caplog) -> None:
    """MariaDB hands invalid dates over as text and DECIMAL(65,30) exceeds Arrow's 38 digits:
    both crashed the extraction without naming the column."""
    table = f"{db.prefix}_odd"
    db.execute(
        f"CREATE TABLE {table} (id INT, shipped DATE, big DECIMAL(65,30), "
        "wide DECIMAL(40,0), price DECIMAL(10,2) UNSIGNED)"
    )
    db.execute(
        f"INSERT INTO {table} VALUES (1, '0000-00-00', 123456789.123456789012345678901234567890, "
        "1234567890123456789012345678901234567890, 12.50), (2, '2024-03-01', NULL, 7, 0.05)"
    )
    caplog.set_level("WARNING")
    con, _, (landed,) = _land(_source(db, table=table))
    assert landed.rows == 2
    rows = con.sql("SELECT id, shipped, big, wide, price FROM raw ORDER BY id").fetchall()
    assert rows == [
        (
            1,
            None,
            "123456789.123456789012345678901234567890",
            "1234567890123456789012345678901234567890",
            Decimal("12.50"),
        ),
        (2, dt.date(2024, 3, 1), None, "7", Decimal("0.05")),
    ]
    assert "1 value(s) of column shipped are not valid dates" in caplog.text


def test_unknown_table_is_a_source_error(db) -> None:
    with pytest.raises(SourceError) as err:
        _land(_source(db, table=f"{db.prefix}_missing"))
    assert not isinstance(err.value, SourceUnavailable)
    assert f"{db.prefix}_missing" in str(err.value)


def test_missing_watermark_column(db) -> None:
    table = _create_orders(db)
    with pytest.raises(SourceError, match="watermark_column 'changed_at' is not in the extracted"):
        _land(_source(db, table=table, watermark_column="changed_at"))


def test_wrong_credentials_never_show_the_password(db, monkeypatch) -> None:
    secret = "pw-must-not-leak-42"
    monkeypatch.setenv("ERP_PASSWORD", secret)
    url = db.url.replace("://root@", "://rh_no_such_user@")
    src = build_source(
        parse_source_config(
            "erp",
            {
                "type": "database",
                "layout": "none",
                "url": url,
                "table": "t",
                "password_env": "ERP_PASSWORD",
            },
        ),
        None,  # type: ignore[arg-type]
    )
    with pytest.raises(SourceError) as err:
        _land(src)
    assert not isinstance(err.value, SourceUnavailable)
    assert secret not in str(err.value) and secret not in repr(err.value.context)
    assert "rh_no_such_user" in str(err.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["mysql", "postgresql"])
def test_unreachable_server_is_unavailable_naming_host_port(scheme, monkeypatch) -> None:
    secret = "pw-must-not-leak-42"
    monkeypatch.setenv("ERP_PASSWORD", secret)
    port = _free_port()
    src = build_source(
        parse_source_config(
            "erp",
            {
                "type": "database",
                "layout": "none",
                "url": f"{scheme}://app@127.0.0.1:{port}/erp",
                "table": "orders",
                "password_env": "ERP_PASSWORD",
            },
        ),
        None,  # type: ignore[arg-type]
    )
    with pytest.raises(SourceUnavailable) as err:
        _land(src)
    assert f"127.0.0.1:{port}" in str(err.value)
    assert secret not in str(err.value)
    assert err.value.context["host"] == f"127.0.0.1:{port}"
    assert err.value.transient is True


@pytest.mark.parametrize("warehouse", ["duckdb", "postgres"])
def test_incremental_runs_through_the_pipeline_and_its_ledger(
    db, warehouse, tmp_path, request
) -> None:
    """Two runs read only the new rows, by the watermark the ledger stored (a row committed
    late at that watermark included); changing the watermark column then stops the run
    (exit 2) instead of comparing ids with a timestamp."""
    from retailhub.pipeline.project import Project

    table = _create_orders(db)
    project_file = tmp_path / "retailhub.yaml"
    target = ""
    if warehouse == "postgres":
        target = f"warehouse:\n  url: {request.getfixturevalue('pg_db').url}\n"

    def write(column: str) -> Project:
        project_file.write_text(
            f"project: t\n{target}sources:\n  erp:\n    type: database\n    url: {db.url}\n"
            f"    table: {table}\n    layout: none\n    dataset: orders\n"
            f"    watermark_column: {column}\n",
            encoding="utf-8",
        )
        return Project.load(tmp_path)

    first = write("updated_at").run()
    assert first.ok, first.error
    _insert(
        db,
        table,
        [
            (4, "22423", 1, "12.75", "2024-01-03 08:00:00"),
            (5, "TIE", 2, "1.00", "2024-01-02 09:00:00"),  # committed late, at the watermark
        ],
    )
    second = write("updated_at").run()
    assert second.ok, second.error
    nothing_new = write("updated_at").run()
    assert nothing_new.ok, nothing_new.error
    project = write("updated_at")
    with project.open_warehouse(read_only=True) as wh:
        per_run = wh.query(
            "select f.rows, f.watermark, w.rows from meta.ingested_files f "
            "left join meta.watermark_windows w using (run_id, source) where f.source = 'erp' "
            "order by f.arrived_at"
        ).rows
        windows = wh.query("select run_id from meta.watermark_windows").rows
        pruned = wh.query(
            "select run_id, rows_affected from meta.audit_log "
            "where operation = 'delete' and object_name = 'meta.watermark_windows'"
        ).rows
        ids = wh.query("select id from raw.orders order by id").rows
    # the run that found nothing recorded nothing: its watermark and window stay in force;
    # the second run's window replaced the first's, which nothing reads any more
    assert [
        tuple(v if k == 1 or v is None else int(v) for k, v in enumerate(r)) for r in per_run
    ] == [
        (3, "2024-01-02 09:00:00", None),
        (2, "2024-01-03 08:00:00", 1),
    ]
    assert windows == [(second.run_id,)]
    assert [(run, int(n)) for run, n in pruned] == [(second.run_id, 1)]
    assert [int(i) for (i,) in ids] == [1, 2, 3, 4, 5]
    third = write("id").run()
    assert not third.ok
    assert "stored watermark '2024-01-03 08:00:00' was taken on" in (third.error or "")


def test_an_empty_table_publishes_empty_tables_named_after_the_source(db, tmp_path) -> None:
    """A pass-through source without ``dataset`` feeds the dataset of its own name (it
    landed in a dataset called 'none'), and a first run over an empty table publishes
    ``raw.<name>`` empty beside ``quarantine.<name>``, so queries of it work at once."""
    from retailhub.pipeline.project import Project

    table = _create_orders(db, rows=[])
    (tmp_path / "retailhub.yaml").write_text(
        f"project: t\nsources:\n  erp_orders:\n    type: database\n    url: {db.url}\n"
        f"    table: {table}\n    layout: none\n    watermark_column: id\n",
        encoding="utf-8",
    )
    project = Project.load(tmp_path)
    assert project.run().ok
    _insert(db, table, ROWS[:2])
    assert Project.load(tmp_path).run().ok
    with project.open_warehouse(read_only=True) as wh:
        tables = wh.query(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'quarantine') order by 1, 2"
        ).rows
        ids = wh.query("select id from raw.erp_orders order by id").rows
    assert [tuple(t) for t in tables] == [("quarantine", "erp_orders"), ("raw", "erp_orders")]
    assert [int(i) for (i,) in ids] == [1, 2]
