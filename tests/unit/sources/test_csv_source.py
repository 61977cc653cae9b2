"""CSV source: encodings, quoting, structure errors that name file and line, checksum skipping."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from retailhub.errors import SourceError
from retailhub.sources import SourceState


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_bom_crlf_quotes_and_embedded_newline(fixtures_dir, make_source, land_source) -> None:
    src = make_source(type="csv", path=str(fixtures_dir / "bom_crlf_quoted.csv"))
    con, landed = land_source(src)
    cols = [r[0] for r in con.sql("DESCRIBE raw").fetchall()]
    assert cols[:6] == ["Row ID", "Order ID", "Order Date", "Product Name", "Sales", "Quantity"]
    rows = con.sql('SELECT "Product Name", "Sales", _line FROM raw ORDER BY _line').fetchall()
    assert rows == [
        ("Bush Somerset Collection Bookcase", "261.96", 1),
        ("Hon Deluxe Fabric Upholstered Stacking Chairs, Rounded Back", "731.94", 2),
        ('Self-Adhesive Address Labels for Typewriters by Universal "Wide"', "14.62", 3),
        ("Bretford CR4500 Series Slim Rectangular Table,\r\ntwo lines", "957.5775", 4),
        ("Eldon Fold 'N Roll Cart System", "22.368", 5),
    ]
    assert landed[0].rows == 5
    assert landed[0].checksum is not None and len(landed[0].checksum) == 64


def test_every_column_lands_as_text(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "a.csv", b"qty,price,when\n6,2.55,2010-12-01 08:26:00\n")
    con, _ = land_source(make_source(type="csv", path="a.csv"))
    types = {r[0]: r[1] for r in con.sql("DESCRIBE raw").fetchall()}
    assert types["qty"] == types["price"] == types["when"] == "VARCHAR"
    assert types["_line"] == "BIGINT"


def test_cp1252_file_decodes_with_encoding_key(tmp_path, make_source, land_source) -> None:
    _write(
        tmp_path / "w.csv", "name,city\nCaf\xe9 \u201cNo\u00a01\u201d,K\xf6ln\n".encode("cp1252")
    )
    con, _ = land_source(make_source(type="csv", path="w.csv", encoding="cp1252"))
    assert con.sql("SELECT name, city FROM raw").fetchall() == [
        ("Caf\xe9 \u201cNo\u00a01\u201d", "K\xf6ln")
    ]


def test_utf16_with_bom(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "u.csv", "a,b\n1,caf\xe9\n".encode("utf-16"))
    con, _ = land_source(make_source(type="csv", path="u.csv", encoding="utf-16"))
    assert con.sql("SELECT a, b FROM raw").fetchall() == [("1", "caf\xe9")]


def test_utf8_bom_stripped_even_with_explicit_utf8_sig(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "b.csv", b"\xef\xbb\xbfid,v\r\n1,x\r\n")
    con, _ = land_source(make_source(type="csv", path="b.csv", encoding="utf-8-sig"))
    assert [r[0] for r in con.sql("DESCRIBE raw").fetchall()][:2] == ["id", "v"]


def test_utf8_bom_stripped_when_declared_cp1252(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "b.csv", b"\xef\xbb\xbfid,v\r\n1,x\r\n")
    con, _ = land_source(make_source(type="csv", path="b.csv", encoding="cp1252"))
    assert [r[0] for r in con.sql("DESCRIBE raw").fetchall()][:2] == ["id", "v"]


def test_cp1252_read_as_utf8_names_file_offset_line_and_fix(
    tmp_path, make_source, land_source
) -> None:
    body = b"a,b\n" + b"1,x\n" * 200_000 + b"2,caf\xe9\n"  # bad byte far beyond the header peek
    path = _write(tmp_path / "latin.csv", body)
    with pytest.raises(SourceError) as err:
        land_source(make_source(type="csv", path="latin.csv"))
    msg = str(err.value)
    assert str(path) in msg
    assert "utf-8" in msg and "encoding" in msg
    assert f"byte {4 + 4 * 200_000 + 5}" in msg
    assert "line 200002" in msg
    assert err.value.context["line"] == 200_002


def test_invalid_byte_for_cp1252_is_reported(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "c.csv", b"a,b\n1,x\n1,caf\x81\n")
    with pytest.raises(SourceError, match=r"not valid cp1252 at byte 13 \(line 3"):
        land_source(make_source(type="csv", path="c.csv", encoding="cp1252"))


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"a,b\n1,2\n3,4,5\n6,7\n", 3, "expected 2 fields, found 3"),
        (b"a,b\n1,2\n3\n", 3, "expected 2 fields, found 1"),
        (b'a,b\n1,"x\n2,3\n4,5\n', 2, "unterminated quoted field"),
    ],
    ids=["too-many-fields", "too-few-fields", "unterminated-quote"],
)
def test_malformed_line_names_file_and_line(
    tmp_path, make_source, land_source, data, line, reason
) -> None:
    path = _write(tmp_path / "bad.csv", data)
    with pytest.raises(SourceError) as err:
        land_source(make_source(type="csv", path="bad.csv"))
    assert str(path) in str(err.value)
    assert f"line {line}" in str(err.value)
    assert reason in str(err.value)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_truncated_mid_quote_is_an_error(
    tmp_path, fixtures_dir, make_source, land_source, encoding
) -> None:
    whole = (fixtures_dir / "bom_crlf_quoted.csv").read_bytes()
    cut = whole[: whole.index(b"Rounded Back") + 4]  # cut inside a quoted field
    _write(tmp_path / "cut.csv", cut)
    with pytest.raises(SourceError, match="line 3: unterminated quoted field"):
        land_source(make_source(type="csv", path="cut.csv", encoding=encoding))


def test_truncated_mid_line_is_an_error(tmp_path, make_source, land_source) -> None:
    rows = b"".join(b"%d,CA-%d,x,1.5\n" % (i, i) for i in range(1, 50_001))
    whole = b"id,order,name,price\n" + rows
    _write(tmp_path / "cut.csv", whole[: len(whole) - 9])  # last line loses its last fields
    with pytest.raises(SourceError, match="line 50001: expected 4 fields, found 2"):
        land_source(make_source(type="csv", path="cut.csv"))


def test_a_file_cut_inside_its_last_field_is_reported(
    tmp_path, make_source, land_source, caplog
) -> None:
    """Cut inside the last field, the last record still has every field: only the missing
    final line break gives it away (a warning: some exporters omit it)."""
    whole = b"id,country\n1,United Kingdom\n2,United Kingdom\n"
    _write(tmp_path / "whole.csv", whole)
    _write(tmp_path / "cut.csv", whole[:-5])  # "United Kin"
    with caplog.at_level(logging.WARNING, logger="retailhub.sources.csv_source"):
        land_source(make_source(type="csv", path="whole.csv"))
        assert not caplog.records
        land_source(make_source(type="csv", path="cut.csv"))
    (record,) = caplog.records
    assert "cut.csv does not end with a line break" in record.getMessage()
    assert "last record (row 2) is incomplete" in record.getMessage()


def test_error_surfaces_before_anything_is_kept(tmp_path, make_source) -> None:
    """The failing unit's rows are rolled back: nothing half-landed is left to publish."""
    import duckdb

    from retailhub.sources import land

    _write(tmp_path / "ok.csv", b"a,b\n1,2\n")
    _write(tmp_path / "zbad.csv", b"a,b\n" + b"1,2\n" * 100_000 + b"3\n")
    src = make_source(type="csv", path="*.csv")
    con = duckdb.connect()
    with pytest.raises(SourceError, match=r"zbad\.csv"):
        land(con, src, src.discover(SourceState()), "raw")
    assert con.sql("SELECT count(*) FROM raw").fetchall() == [(0,)]


def test_missing_file_names_the_path(tmp_path, make_source) -> None:
    src = make_source(type="csv", path="nope/orders.csv")
    with pytest.raises(SourceError, match=r"file not found: .*nope/orders\.csv"):
        src.discover(SourceState())


def test_empty_glob_names_the_pattern(tmp_path, make_source) -> None:
    src = make_source(type="csv", path="incoming/**/*.csv")
    with pytest.raises(SourceError, match=r"no file matches .*incoming/\*\*/\*\.csv"):
        src.discover(SourceState())


def test_a_folder_where_files_are_expected_is_named(tmp_path, make_source, caplog) -> None:
    """A folder as the path said 'file not found'; one matching the pattern was skipped
    without a word."""
    (tmp_path / "in" / "2024-03.csv").mkdir(parents=True)
    _write(tmp_path / "in" / "2024-02.csv", b"x\n1\n")
    with pytest.raises(SourceError, match=r"in is a folder: give a pattern .*in/\*\.csv"):
        make_source(type="csv", path="in").discover(SourceState())
    with caplog.at_level("WARNING"):
        units = make_source(type="csv", path="in/*.csv").discover(SourceState())
    assert [Path(u.uri).name for u in units] == ["2024-02.csv"]
    assert "2024-03.csv matches" in caplog.text and "is a folder, not read" in caplog.text


def test_a_compressed_file_is_named_as_such(tmp_path, make_source, land_source) -> None:
    """Read as text, a gzip file was 'not valid utf-8: set encoding', which misleads."""
    import gzip

    _write(tmp_path / "a.csv.gz", gzip.compress(b"x\n1\n"))
    with pytest.raises(SourceError, match=r"a\.csv\.gz is gzip-compressed: decompress it first"):
        land_source(make_source(type="csv", path="*.gz"))


def test_a_folder_that_cannot_be_listed_is_named(
    tmp_path, make_source, monkeypatch, caplog
) -> None:
    """glob skips a folder it cannot list without a word: its files went missing from the
    run (or it read "no file matches"). An error when nothing else matched, a warning when
    other folders had files (a root-owned lost+found, say, must not stop every run). The
    tests run as root, whom permissions do not stop, so a mode-000 folder is also denied in
    os.access, which is what a non-root user meets."""
    for sub in ("a", "b", "c", "lost+found"):
        (tmp_path / "incoming" / sub).mkdir(parents=True)
    _write(tmp_path / "incoming" / "a" / "1.csv", b"x\n1\n")
    _write(tmp_path / "incoming" / "b" / "2.csv", b"x\n2\n")
    locked = {tmp_path / "incoming" / n for n in ("b", "c", "lost+found")}
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) in locked:
            return False
        return real_access(path, mode, *args, **kwargs)

    for folder in locked:
        folder.chmod(0)
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "access", access)
    try:
        src = make_source(type="csv", path="incoming/**/*.csv")
        with caplog.at_level(logging.WARNING, logger="retailhub.sources.files"):
            found = src.discover(SourceState())
        assert len(found) == (2 if os.geteuid() == 0 else 1)  # root's glob still reads b/
        (warning,) = caplog.records
        folders = f"{tmp_path / 'incoming' / 'b'}, {tmp_path / 'incoming' / 'c'}"
        assert f"cannot list the folder {folders} (permission" in warning.getMessage()
        assert "lost+found" not in warning.getMessage()
        only_locked = make_source(type="csv", path="incoming/c/*.csv")
        with pytest.raises(SourceError, match=r"cannot list the folder .*incoming/c \(perm"):
            only_locked.discover(SourceState())
    finally:
        for folder in locked:
            folder.chmod(0o755)


def test_a_link_to_a_missing_file_is_an_error(tmp_path, make_source) -> None:
    """A delivery that is a link to nowhere never arrived: glob skipped it and the run read
    as a success with 0 new rows."""
    (tmp_path / "in").mkdir()
    _write(tmp_path / "in" / "2024-01.csv", b"x\n1\n")
    (tmp_path / "in" / "2024-02.csv").symlink_to(tmp_path / "nowhere" / "2024-02.csv")
    src = make_source(type="csv", path="in/*.csv")
    with pytest.raises(SourceError, match=r"2024-02\.csv is a link to .*nowhere.* does not exist"):
        src.discover(SourceState())


def test_empty_file_is_an_error(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "e.csv", b"")
    with pytest.raises(SourceError, match=r"e\.csv is empty"):
        land_source(make_source(type="csv", path="e.csv"))


def test_header_only_file_lands_zero_rows(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "h.csv", b"a,b\n")
    con, landed = land_source(make_source(type="csv", path="h.csv"))
    assert landed[0].rows == 0
    assert con.sql("SELECT count(*) FROM raw").fetchall() == [(0,)]


@pytest.mark.parametrize("data", [b"a,b", b"\xef\xbb\xbfa,b", b"a,b\r"])
def test_a_header_without_a_final_line_break_lands_zero_rows(
    tmp_path, make_source, land_source, data
) -> None:
    """Valid CSV either way; without the line break pyarrow could not tell the columns."""
    _write(tmp_path / "h.csv", data)
    con, landed = land_source(make_source(type="csv", path="h.csv"))
    assert landed[0].rows == 0
    assert [r[0] for r in con.sql("DESCRIBE raw").fetchall()][:2] == ["a", "b"]


def test_carriage_return_line_ends_are_read(tmp_path, make_source, land_source) -> None:
    """Old Mac and Excel "CSV (Macintosh)" files end lines with a lone CR: the header peek
    failed on them with the csv module's message and no file name."""
    _write(tmp_path / "m.csv", b'a,b\r1,"x\ry"\r3,4\r')
    con, landed = land_source(make_source(type="csv", path="m.csv"))
    assert landed[0].rows == 2
    assert con.sql("SELECT a, b, _line FROM raw ORDER BY _line").fetchall() == [
        ("1", "x\ry", 1),
        ("3", "4", 2),
    ]


def test_recursive_glob_relative_to_project_dir(tmp_path, make_source) -> None:
    (tmp_path / "in" / "2024" / "01").mkdir(parents=True)
    _write(tmp_path / "in" / "2024" / "01" / "a.csv", b"x\n1\n")
    _write(tmp_path / "in" / "b.csv", b"x\n2\n")
    units = make_source(type="csv", path="in/**/*.csv").discover(SourceState())
    assert [Path(u.uri).name for u in units] == ["a.csv", "b.csv"]
    assert all(Path(u.uri).is_absolute() for u in units)
    assert [u.recorded_as for u in units] == ["in/2024/01/a.csv", "in/b.csv"]
    assert all(u.modified_at is not None and u.modified_at.tzinfo is not None for u in units)


def test_already_ingested_and_duplicate_files_are_skipped(tmp_path, make_source) -> None:
    _write(tmp_path / "a.csv", b"x\n1\n")
    _write(tmp_path / "b.csv", b"x\n2\n")
    shutil.copy(tmp_path / "a.csv", tmp_path / "c.csv")  # same bytes as a.csv
    src = make_source(type="csv", path="*.csv")
    first = src.discover(SourceState())
    assert [Path(u.uri).name for u in first] == ["a.csv", "b.csv"]
    again = src.discover(SourceState(ingested_checksums={u.checksum for u in first}))
    assert again == []
    _write(tmp_path / "b.csv", b"x\n2\n3\n")  # changed in place: new checksum, new unit
    changed = src.discover(SourceState(ingested_checksums={u.checksum for u in first}))
    assert [Path(u.uri).name for u in changed] == ["b.csv"]


def test_a_file_is_new_when_its_bytes_differ_from_its_latest_version(tmp_path, make_source) -> None:
    """Put back as it was first ingested, a corrected file differs from its latest version."""
    _write(tmp_path / "a.csv", b"x\n1\n")
    src = make_source(type="csv", path="*.csv")
    (v1,) = src.discover(SourceState())
    _write(tmp_path / "a.csv", b"x\n1\n2\n")
    (v2,) = src.discover(SourceState(ingested_checksums={v1.checksum}))
    seen = {v1.checksum, v2.checksum}
    latest = {v2.recorded_as: str(v2.checksum)}
    assert src.discover(SourceState(ingested_checksums=seen, latest_checksums=latest)) == []
    _write(tmp_path / "a.csv", b"x\n1\n")  # the first version's bytes again
    (back,) = src.discover(SourceState(ingested_checksums=seen, latest_checksums=latest))
    assert back.checksum == v1.checksum
    # a new name for bytes already ingested is still the same input, not a new file
    shutil.copy(tmp_path / "a.csv", tmp_path / "b.csv")
    latest = {v1.recorded_as: str(v1.checksum)}
    assert src.discover(SourceState(ingested_checksums=seen, latest_checksums=latest)) == []


def test_files_are_named_as_the_pattern_names_them(tmp_path, make_source) -> None:
    """Relative patterns record project-relative names (a moved project knows its files);
    absolute patterns record absolute ones; a source whose history holds absolute names (as
    recorded before names were relative) keeps recording absolute names."""
    project, data = tmp_path / "proj", tmp_path / "shared" / "data"
    (project / "in").mkdir(parents=True)
    data.mkdir(parents=True)
    _write(project / "in" / "a.csv", b"x\n1\n")
    _write(data / "b.csv", b"x\n2\n")
    (unit,) = make_source(type="csv", path="in/*.csv", project_dir=project).discover(SourceState())
    assert (unit.recorded_as, unit.uri) == ("in/a.csv", str((project / "in" / "a.csv").resolve()))
    (outside,) = make_source(type="csv", path="../shared/data/*.csv", project_dir=project).discover(
        SourceState()
    )
    assert outside.recorded_as == "../shared/data/b.csv"
    (absolute,) = make_source(type="csv", path=str(data / "*.csv"), project_dir=project).discover(
        SourceState()
    )
    assert absolute.recorded_as == str((data / "b.csv").resolve())

    # the project moves: the same names, so nothing is new and a changed file is a correction
    moved = tmp_path / "moved"
    project.rename(moved)
    src = make_source(type="csv", path="in/*.csv", project_dir=moved)
    known = SourceState(
        ingested_checksums={str(unit.checksum)}, latest_checksums={"in/a.csv": str(unit.checksum)}
    )
    assert src.discover(known) == []
    _write(moved / "in" / "a.csv", b"x\n1\n3\n")
    (changed,) = src.discover(known)
    assert (changed.recorded_as, changed.replaces) == ("in/a.csv", "in/a.csv")

    # a history recorded by absolute path: its names stay absolute, new files' too, so a
    # correction replaces the rows of the name they were recorded under
    legacy = str((moved / "in" / "a.csv").resolve())
    old = SourceState(
        ingested_checksums={str(unit.checksum)}, latest_checksums={legacy: str(unit.checksum)}
    )
    _write(moved / "in" / "c.csv", b"x\n4\n")
    corrected, new = src.discover(old)
    assert (corrected.recorded_as, corrected.replaces) == (legacy, legacy)
    assert (new.recorded_as, new.replaces) == (str((moved / "in" / "c.csv").resolve()), None)


def test_a_link_and_the_file_it_points_to_are_one_file(tmp_path, make_source) -> None:
    """A "current" link beside the deliveries is named by its target: pointing it at the next
    delivery is a new file, not a change of the link's file (which would replace or refuse)."""
    (tmp_path / "data").mkdir()
    jan = _write(tmp_path / "data" / "jan.csv", b"x\n1\n")
    (tmp_path / "data" / "current.csv").symlink_to(jan)
    src = make_source(type="csv", path="data/*.csv")
    (first,) = src.discover(SourceState())
    assert first.recorded_as == "data/jan.csv"
    feb = _write(tmp_path / "data" / "feb.csv", b"x\n2\n")
    (tmp_path / "data" / "current.csv").unlink()
    (tmp_path / "data" / "current.csv").symlink_to(feb)
    history = SourceState(
        ingested_checksums={str(first.checksum)},
        latest_checksums={"data/jan.csv": str(first.checksum)},
    )
    (second,) = src.discover(history)
    assert (second.recorded_as, second.replaces) == ("data/feb.csv", None)


def test_a_changed_file_and_its_copy_are_ingested_once(tmp_path, make_source) -> None:
    a = _write(tmp_path / "a.csv", b"x\n1\n")
    src = make_source(type="csv", path="*.csv")
    (first,) = src.discover(SourceState())
    history = SourceState(
        ingested_checksums={str(first.checksum)}, latest_checksums={"a.csv": str(first.checksum)}
    )
    a.write_bytes(b"x\n1\n2\n")
    shutil.copy(a, tmp_path / "0.csv")  # a new name that sorts first: the correction wins
    (only,) = src.discover(history)
    assert (only.recorded_as, only.replaces) == ("a.csv", "a.csv")


def test_file_changed_after_discovery_is_refused(tmp_path, make_source, land_source) -> None:
    import duckdb

    from retailhub.sources import land

    path = _write(tmp_path / "a.csv", b"x\n1\n")
    src = make_source(type="csv", path="a.csv")
    units = src.discover(SourceState())
    path.write_bytes(b"x\n1\n2\n")
    with pytest.raises(SourceError, match="changed between discovery and reading"):
        land(duckdb.connect(), src, units, "raw")


def test_no_header_delimiter_and_null_values(tmp_path, make_source, land_source) -> None:
    _write(tmp_path / "n.csv", b"1;NA;'a;b'\n2;;x\n")
    src = make_source(
        type="csv", path="n.csv", header=False, delimiter=";", quote="'", null_values=["NA"]
    )
    con, _ = land_source(src)
    assert con.sql("SELECT column0, column1, column2 FROM raw ORDER BY _line").fetchall() == [
        ("1", None, "a;b"),
        ("2", "", "x"),
    ]


def test_open_is_lazy_and_streams_in_batches(tmp_path, make_source) -> None:
    rows = b"".join(b"%d,%d\n" % (i, i * 2) for i in range(400_000))
    _write(tmp_path / "big.csv", b"a,b\n" + rows)
    src = make_source(type="csv", path="big.csv")
    reader = src.open(src.discover(SourceState())[0])
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 400_000
    assert len(sizes) > 1  # several blocks, never the whole file at once
