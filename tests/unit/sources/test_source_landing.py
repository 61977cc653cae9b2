"""Landing: union by name, lineage columns, progress, name cleaning, errors keep their class."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from retailhub.config.sources import parse_source_config
from retailhub.errors import SourceError, SourceUnavailable
from retailhub.sources import InputUnit, SourceState, clean_column_names, land


def test_union_by_name_across_files_with_different_column_order(
    tmp_path, make_source, land_source
) -> None:
    (tmp_path / "d1.csv").write_bytes(b"a,b\n1,x\n2,y\n")
    (tmp_path / "d2.csv").write_bytes(b"b,a,c\nz,3,new\n")
    (tmp_path / "d3.csv").write_bytes(b"a,b\n4,w\n")
    con, landed = land_source(make_source(type="csv", path="d*.csv"))
    rows = con.sql("SELECT a, b, c, _line, _source_file FROM raw ORDER BY a").fetchall()
    assert rows == [
        ("1", "x", None, 1, "d1.csv"),
        ("2", "y", None, 2, "d1.csv"),
        ("3", "z", "new", 1, "d2.csv"),
        ("4", "w", None, 1, "d3.csv"),
    ]
    assert [u.rows for u in landed] == [2, 1, 1]
    by_unit = dict(con.sql("SELECT _unit_id, count(*) FROM raw GROUP BY 1").fetchall())
    assert by_unit == {u.unit_id: u.rows for u in landed}


def test_landed_unit_metadata_and_source_column(tmp_path, make_source, land_source) -> None:
    (tmp_path / "a.csv").write_bytes(b"x\n1\n2\n3\n")
    before = datetime.now(UTC)
    con, (unit,) = land_source(make_source(name="shop", type="csv", path="a.csv"))
    assert unit.source == "shop" and unit.rows == 3 and unit.bytes == 8
    # recorded as the source's pattern names it: relative to the project
    assert unit.uri == "a.csv"
    assert unit.arrived_at >= before and unit.modified_at is not None
    assert con.sql("SELECT DISTINCT _source FROM raw").fetchall() == [("shop",)]
    types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())
    assert {k: types[k] for k in ("_source", "_source_file", "_line", "_unit_id")} == {
        "_source": "VARCHAR", "_source_file": "VARCHAR", "_line": "BIGINT", "_unit_id": "VARCHAR",
    }  # fmt: skip


def test_line_numbers_continue_across_batches(tmp_path, make_source, land_source) -> None:
    body = b"".join(b"%d\n" % i for i in range(1, 700_001))
    (tmp_path / "n.csv").write_bytes(b"n\n" + body)
    con, _ = land_source(make_source(type="csv", path="n.csv"))
    mismatches = con.sql("SELECT count(*) FROM raw WHERE CAST(n AS BIGINT) <> _line").fetchall()
    assert mismatches == [(0,)]
    assert con.sql("SELECT max(_line), count(*) FROM raw").fetchall() == [(700_000, 700_000)]


def test_progress_reports_rows_per_batch(tmp_path, make_source) -> None:
    (tmp_path / "a.csv").write_bytes(b"x\n" + b"1\n" * 1000)
    (tmp_path / "b.csv").write_bytes(b"x\n" + b"2\n" * 500)
    src = make_source(type="csv", path="*.csv")
    seen: list[int] = []
    land(duckdb.connect(), src, src.discover(SourceState()), "raw", progress=seen.append)
    assert sum(seen) == 1500


def test_existing_table_gets_new_columns(tmp_path, make_source) -> None:
    con = duckdb.connect()
    (tmp_path / "a.csv").write_bytes(b"x\n1\n")
    src = make_source(type="csv", path="a.csv")
    con.execute("CREATE SCHEMA landing")
    land(con, src, src.discover(SourceState()), "landing.raw_orders")
    (tmp_path / "b.csv").write_bytes(b"x,y\n2,3\n")
    src2 = make_source(type="csv", path="b.csv")
    land(con, src2, src2.discover(SourceState()), "landing.raw_orders")
    assert con.sql("SELECT x, y FROM landing.raw_orders ORDER BY x").fetchall() == [
        ("1", None),
        ("2", "3"),
    ]


def test_clean_column_names() -> None:
    assert clean_column_names(["\ufeffid", "", "Qty", "qty", "_line", "a", "ï»¿b"]) == [
        "id", "column1", "Qty", "qty_2", "_line_2", "a", "b",
    ]  # fmt: skip


def test_blank_and_duplicate_headers_land(tmp_path, make_source, land_source) -> None:
    (tmp_path / "i.csv").write_bytes(b",name,Name\n0,a,b\n")
    con, _ = land_source(make_source(type="csv", path="i.csv"))
    assert con.sql('SELECT column0, name, "Name_2" FROM raw').fetchall() == [("0", "a", "b")]


class _FailingSource:
    """A source whose second batch fails, like an API dying mid-extraction."""

    def __init__(self, error: Exception) -> None:
        self.config = parse_source_config(
            "flaky", {"type": "http", "layout": "none", "url": "http://h/x"}
        )
        self._error = error

    @property
    def name(self) -> str:
        return "flaky"

    def discover(self, state: SourceState) -> list[InputUnit]:
        return [InputUnit("flaky", "http://h/x", None, None, None)]

    def new_watermark(self) -> str | None:
        return None

    def read_checksum(self) -> str | None:
        return None

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        schema = pa.schema([("v", pa.string())])

        def batches() -> Iterator[pa.RecordBatch]:
            yield pa.record_batch({"v": ["1", "2"]}, schema=schema)
            raise self._error

        return pa.RecordBatchReader.from_batches(schema, batches())


@pytest.mark.parametrize("error", [SourceError("page 2 broke"), SourceUnavailable("gone")])
def test_error_during_streaming_keeps_its_class_and_rolls_back(error) -> None:
    con = duckdb.connect()
    src = _FailingSource(error)
    with pytest.raises(type(error)) as raised:
        land(con, src, src.discover(SourceState()), "raw")  # type: ignore[arg-type]
    assert raised.value is error
    assert con.sql("SELECT count(*) FROM raw").fetchall() == [(0,)]


def test_foreign_error_during_streaming_becomes_source_error() -> None:
    con = duckdb.connect()
    src = _FailingSource(ValueError("decoder exploded"))
    with pytest.raises(SourceError, match=r"landing http://h/x into raw failed: decoder exploded"):
        land(con, src, src.discover(SourceState()), "raw")  # type: ignore[arg-type]


_MEMORY_SCRIPT = """
import sys, duckdb, pyarrow as pa
from pathlib import Path
from retailhub.config.sources import parse_source_config
from retailhub.sources import build_source, land, SourceState
cfg = parse_source_config("m", {"type": "csv", "layout": "none", "path": sys.argv[1]})
src = build_source(cfg, Path("/"))
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
(unit,) = land(con, src, src.discover(SourceState()), "raw")
print("RESULT", unit.rows, pa.default_memory_pool().max_memory())
"""


def _arrow_peak(path: Path) -> tuple[int, int]:
    """(rows, Arrow peak bytes) of landing ``path`` in a fresh process (a clean high-water mark)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT"))
    rows, peak = map(int, result.split()[1:])
    return rows, peak


@pytest.mark.slow
def test_landing_memory_does_not_grow_with_input(tmp_path) -> None:
    """Landing 4x more rows must not need materially more Arrow memory (streaming, not loading)."""
    header = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    line = b"536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n"
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_bytes(header + line * 400_000)
    with big.open("wb") as fh:
        fh.write(header)
        for _ in range(4):
            fh.write(line * 400_000)
    small_rows, small_peak = _arrow_peak(small)
    big_rows, big_peak = _arrow_peak(big)
    assert (small_rows, big_rows) == (400_000, 1_600_000)
    assert big_peak < 1.5 * small_peak, f"Arrow peak {small_peak} -> {big_peak} bytes for 4x input"
    assert big_peak < big.stat().st_size / 2


def test_input_unit_is_immutable_and_hashable() -> None:
    unit = InputUnit("s", "/x.csv", "ab" * 32, 10, datetime.now(UTC))
    with pytest.raises(AttributeError):
        unit.uri = "/y.csv"  # type: ignore[misc]
    assert {unit} == {unit}
    assert Path(unit.uri).name == "x.csv"


def test_landing_gives_the_connection_its_insertion_order_setting_back(
    tmp_path, make_source
) -> None:
    """Landing lets DuckDB write unordered (faster); a caller's setting survives, also when
    the landing fails."""
    (tmp_path / "a.csv").write_bytes(b"x\n" + b"1\n" * 10)
    src = make_source(type="csv", path="a.csv")
    setting = "SELECT current_setting('preserve_insertion_order')"
    con = duckdb.connect()
    land(con, src, src.discover(SourceState()), "raw")
    assert con.sql(setting).fetchall() == [(True,)]
    con.execute("SET preserve_insertion_order = false")
    land(con, src, src.discover(SourceState()), "raw2")
    assert con.sql(setting).fetchall() == [(False,)]
    con.execute("SET preserve_insertion_order = true")
    failing = _FailingSource(SourceError("page 2 broke"))
    with pytest.raises(SourceError):
        land(con, failing, failing.discover(SourceState()), "raw3")  # type: ignore[arg-type]
    assert con.sql(setting).fetchall() == [(True,)]
