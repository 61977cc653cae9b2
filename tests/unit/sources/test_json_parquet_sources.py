"""JSON documents, NDJSON and Parquet: streaming, text typing, and errors naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retailhub.errors import SourceError
from retailhub.sources import SourceState

EXPECTED = [
    ("1", "85123A", "6", "2.55", "true", '["home", "light"]'),
    ("2", "71053", "6", "3.39", "false", "[]"),
    ("3", "84406B", None, "2.75", "true", None),
]


def _rows(con) -> list[tuple]:
    return con.sql("SELECT id, sku, qty, price, paid, tags FROM raw ORDER BY _line").fetchall()


def test_json_document_with_records_path(fixtures_dir, make_source, land_source) -> None:
    src = make_source(
        type="json", path=str(fixtures_dir / "orders.json"), records_path="data.items"
    )
    con, (unit,) = land_source(src)
    assert _rows(con) == EXPECTED
    assert unit.rows == 3
    types = {r[0]: r[1] for r in con.sql("DESCRIBE raw").fetchall()}
    assert types["qty"] == "VARCHAR"


def test_ndjson_by_extension(fixtures_dir, make_source, land_source) -> None:
    src = make_source(type="json", path=str(fixtures_dir / "orders.ndjson"))
    con, _ = land_source(src)
    assert _rows(con) == EXPECTED
    assert con.sql("SELECT _line FROM raw ORDER BY _line").fetchall() == [(1,), (2,), (3,)]


def test_top_level_json_list_with_bom(tmp_path, make_source, land_source) -> None:
    (tmp_path / "l.json").write_bytes(
        b"\xef\xbb\xbf" + json.dumps([{"a": 1}, {"a": 2.50}]).encode()
    )
    con, _ = land_source(make_source(type="json", path="l.json"))
    assert con.sql("SELECT a FROM raw ORDER BY _line").fetchall() == [("1",), ("2.5",)]


def test_large_json_document_streams_in_batches(tmp_path, make_source) -> None:
    records = [{"i": i, "s": f"v{i}"} for i in range(25_000)]
    (tmp_path / "big.json").write_text(json.dumps({"data": records}))
    src = make_source(type="json", path="big.json", records_path="data")
    sizes = [b.num_rows for b in src.open(src.discover(SourceState())[0])]
    assert sum(sizes) == 25_000 and len(sizes) >= 3


def test_ndjson_numbers_keep_every_digit(tmp_path, make_source, land_source) -> None:
    """As in JSON documents (ijson): a float would turn 12345678901234567.89 into ...568e+16."""
    (tmp_path / "n.ndjson").write_text('{"amount": 12345678901234567.89, "rate": 0.1}\n')
    con, _ = land_source(make_source(type="json", path="n.ndjson"))
    assert con.sql("SELECT amount, rate FROM raw").fetchall() == [("12345678901234567.89", "0.1")]


def test_ndjson_bad_line_names_file_and_line(tmp_path, make_source, land_source) -> None:
    (tmp_path / "e.ndjson").write_text('{"a": 1}\n{"a": 2}\n{"a": 3,,}\n')
    with pytest.raises(SourceError, match=r"invalid JSON in .*e\.ndjson at line 3, column 9"):
        land_source(make_source(type="json", path="e.ndjson"))


def test_truncated_ndjson_says_truncated(tmp_path, make_source, land_source) -> None:
    (tmp_path / "t.ndjson").write_text('{"a": 1}\n{"a": 2, "b": "xy')
    with pytest.raises(SourceError, match=r"line 2.*truncated"):
        land_source(make_source(type="json", path="t.ndjson"))


def test_truncated_json_document(tmp_path, fixtures_dir, make_source, land_source) -> None:
    text = (fixtures_dir / "orders.json").read_text()
    (tmp_path / "t.json").write_text(text[: text.index('"84406B"')])
    with pytest.raises(SourceError, match=r"invalid or truncated JSON in .*t\.json"):
        land_source(make_source(type="json", path="t.json", records_path="data.items"))


def test_wrong_records_path_is_an_error(fixtures_dir, make_source, land_source) -> None:
    src = make_source(type="json", path=str(fixtures_dir / "orders.json"), records_path="data.rows")
    with pytest.raises(SourceError, match=r"no list at records_path 'data\.rows'"):
        land_source(src)


def test_a_json_object_without_records_path_says_to_set_it(
    tmp_path, make_source, land_source
) -> None:
    """It landed nothing and failed later, at validation, for want of columns."""
    (tmp_path / "o.json").write_text('{"items": [{"id": 1}]}')
    with pytest.raises(
        SourceError, match=r"o\.json has no top-level list of records .*records_path"
    ):
        land_source(make_source(type="json", path="o.json"))
    (tmp_path / "e.json").write_text("[]")
    _, landed = land_source(make_source(type="json", path="e.json"))
    assert landed[0].rows == 0


def test_field_appearing_late_fails_unless_fields_listed(
    tmp_path, make_source, land_source
) -> None:
    lines = [json.dumps({"a": i}) for i in range(10_500)] + [json.dumps({"a": 1, "late": "x"})]
    (tmp_path / "l.ndjson").write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError, match=r"\['late'\] first appear .* `fields:`"):
        land_source(make_source(type="json", path="l.ndjson"))
    con, _ = land_source(make_source(type="json", path="l.ndjson", fields=["a", "late"]))
    assert con.sql("SELECT count(*), count(late) FROM raw").fetchall() == [(10_501, 1)]


def test_non_object_record_is_an_error(tmp_path, make_source, land_source) -> None:
    (tmp_path / "s.json").write_text("[1, 2]")
    with pytest.raises(SourceError, match="record 1 is a JSON number, expected a JSON object"):
        land_source(make_source(type="json", path="s.json"))


def test_parquet_keeps_types_and_unions_files(tmp_path, make_source, land_source) -> None:
    pq.write_table(
        pa.table(
            {"id": [1, 2], "amount": [2.5, None], "day": pa.array([19000, 19001], pa.date32())}
        ),
        tmp_path / "p1.parquet",
        row_group_size=1,
    )
    pq.write_table(
        pa.table({"day": pa.array([19002], pa.date32()), "id": [3]}), tmp_path / "p2.parquet"
    )
    con, landed = land_source(make_source(type="parquet", path="*.parquet"))
    types = {r[0]: r[1] for r in con.sql("DESCRIBE raw").fetchall()}
    assert (types["id"], types["amount"], types["day"]) == ("BIGINT", "DOUBLE", "DATE")
    assert con.sql("SELECT id, amount, _line FROM raw ORDER BY id").fetchall() == [
        (1, 2.5, 1), (2, None, 2), (3, None, 1),
    ]  # fmt: skip
    assert [u.rows for u in landed] == [2, 1]


def test_corrupt_parquet_names_the_file(tmp_path, make_source, land_source) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match=r"cannot read Parquet file .*bad\.parquet"):
        land_source(make_source(type="parquet", path="bad.parquet"))


def test_parquet_glob_relative_to_project(tmp_path, make_source) -> None:
    (tmp_path / "lake" / "d=1").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), tmp_path / "lake" / "d=1" / "part-0.parquet")
    shutil.copy(tmp_path / "lake" / "d=1" / "part-0.parquet", tmp_path / "lake" / "again.parquet")
    units = make_source(type="parquet", path="lake/**/*.parquet").discover(SourceState())
    assert len(units) == 1  # identical bytes are one unit
    assert Path(units[0].uri).is_absolute()
