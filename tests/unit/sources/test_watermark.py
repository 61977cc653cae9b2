"""The watermark window on hand-built Arrow batches: lookback grammar, bounds, fingerprints."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from retailhub.config.sources import parse_lookback, parse_source_config
from retailhub.errors import ConfigError, SourceError
from retailhub.sources.base import StoredWindow
from retailhub.sources.watermark import WatermarkWindow, lower_bound, row_fingerprint


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("15m", dt.timedelta(minutes=15)),
        ("2h", dt.timedelta(hours=2)),
        (" 1d ", dt.timedelta(days=1)),
        ("90s", dt.timedelta(seconds=90)),
        ("0.5H", dt.timedelta(minutes=30)),
        (100, Decimal("100")),
        ("2.5", Decimal("2.5")),
        (None, None),
    ],
)
def test_lookback_grammar(raw, parsed) -> None:
    assert parse_lookback(raw) == parsed


@pytest.mark.parametrize("raw", ["soon", "15 minutes ago", "-3", -1, True])
def test_a_bad_lookback_is_refused(raw) -> None:
    with pytest.raises(ValueError):
        parse_lookback(raw)


def test_lookback_config_errors_name_the_key() -> None:
    base = {"type": "database", "url": "postgresql://u@h/db", "table": "t", "layout": "none"}
    with pytest.raises(ConfigError, match=r"sources\.erp.*watermark_lookback needs a "):
        parse_source_config("erp", {**base, "watermark_lookback": "1h"})
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_source_config(
            "erp", {**base, "watermark_column": "ts", "watermark_lookback": "an hour"}
        )
    cfg = parse_source_config("erp", {**base, "watermark_column": "ts", "watermark_lookback": 5})
    assert cfg.lookback == Decimal("5")


def test_lower_bound() -> None:
    hours = dt.timedelta(hours=10)
    assert lower_bound("2024-01-02 09:00:00", None, "2024-01-01") == "2024-01-02 09:00:00"
    assert lower_bound("2024-01-02 09:00:00", hours, "2024-01-01") == "2024-01-01 23:00:00"
    # not below the stored window's start: those rows were read without fingerprints
    assert lower_bound("2024-01-02 09:00:00", hours, "2024-01-02 08:00:00") == (
        "2024-01-02 08:00:00"
    )
    assert lower_bound("2024-01-02 09:00:00", hours, None) == "2024-01-02 09:00:00"
    assert lower_bound("2024-01-02", dt.timedelta(hours=1), "2023-12-01") == "2024-01-01"
    assert (
        lower_bound("2024-01-02 09:00:00+00:00", dt.timedelta(minutes=1), "2024-01-01")
        == "2024-01-02 08:59:00+00:00"
    )
    assert lower_bound("10", Decimal("2.0"), "0") == "8"
    assert lower_bound("10", Decimal("0.5"), "0") == "9"  # an integer column: '9', not '9.5'
    assert lower_bound("2.55", Decimal("1"), "0") == "1.55"
    with pytest.raises(SourceError, match="not a date or time"):
        lower_bound("17", dt.timedelta(minutes=5), "1")
    with pytest.raises(SourceError, match="is not"):
        lower_bound("2024-01-02", Decimal("1"), "2024-01-01")


def test_fingerprints_ignore_nulls_and_column_order() -> None:
    row = {"id": 1, "ts": dt.datetime(2024, 1, 1), "note": None}
    assert row_fingerprint(row) == row_fingerprint({"ts": dt.datetime(2024, 1, 1), "id": 1})
    assert row_fingerprint(row) != row_fingerprint({"id": 2, "ts": dt.datetime(2024, 1, 1)})


def _batch(ids, values, typ) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array(values, typ)], ["id", "wm"])


def _prints(*rows) -> tuple[str, ...]:
    return tuple(sorted(row_fingerprint({"id": i, "wm": w}) for i, w in rows))


def test_window_without_lookback_holds_the_rows_at_the_top_across_batches() -> None:
    window = WatermarkWindow("wm", stored=None, previous=None, lookback=None)
    out1 = window.filter(_batch([1, 2, 3], [5, 9, 9], pa.int64()), 1)
    out2 = window.filter(_batch([4, 5], [9, None], pa.int64()), 1)
    assert out1.num_rows == 3 and out2.num_rows == 2  # a first extraction drops nothing
    assert window.watermark == "9" and window.nulls == 1
    assert window.window() == StoredWindow("9", _prints((2, 9), (3, 9), (4, 9)))
    # the maximum rises in a later batch: the old top falls out of the window
    window.filter(_batch([6], [12], pa.int64()), 1)
    assert window.window() == StoredWindow("12", _prints((6, 12)))


def test_window_drops_only_the_rows_read_before() -> None:
    previous = StoredWindow("9", _prints((2, 9), (3, 9)))
    window = WatermarkWindow("wm", stored="9", previous=previous, lookback=None)
    # read again from wm >= 9: rows 2 and 3 were read, 7 committed late at 9, 8 is new
    out = window.filter(_batch([2, 7, 3, 8], [9, 9, 9, 10], pa.int64()), 1)
    assert out.column(0).to_pylist() == [7, 8]
    assert window.skipped == 2 and window.watermark == "10"


def test_identical_rows_are_dropped_as_many_times_as_they_were_read() -> None:
    first = WatermarkWindow("wm", stored=None, previous=None, lookback=None)
    first.filter(_batch([1, 1], [5, 5], pa.int64()), 1)
    previous = first.window()
    assert previous is not None and len(previous.fingerprints) == 2
    again = WatermarkWindow("wm", stored="5", previous=previous, lookback=None)
    out = again.filter(_batch([1, 1, 1, 2], [5, 5, 5, 5], pa.int64()), 1)
    assert out.column(0).to_pylist() == [1, 2]  # the third copy is new


def test_a_changed_row_at_the_boundary_is_new() -> None:
    previous = StoredWindow("9", _prints((2, 9)))
    window = WatermarkWindow("wm", stored="9", previous=previous, lookback=None)
    batch = pa.record_batch(
        [pa.array([2]), pa.array([9]), pa.array(["corrected"])], ["id", "wm", "note"]
    )
    assert window.filter(batch, 1).num_rows == 1


def test_time_lookback_window_and_dates() -> None:
    ts = pa.timestamp("us")
    hour = dt.timedelta(hours=1)
    window = WatermarkWindow("wm", stored=None, previous=None, lookback=hour)
    times = [dt.datetime(2024, 1, 2, h, m) for h, m in ((7, 0), (8, 0), (8, 30), (9, 0))]
    window.filter(_batch([1, 2, 3, 4], times, ts), 1)
    assert window.watermark == "2024-01-02 09:00:00"
    stored = window.window()
    assert stored is not None and stored.start == "2024-01-02 08:00:00"
    assert len(stored.fingerprints) == 3  # 08:00, 08:30 and 09:00 are within the hour
    days = WatermarkWindow("wm", stored=None, previous=None, lookback=dt.timedelta(hours=30))
    dates = [dt.date(2024, 1, d) for d in (1, 2, 3, 4)]
    days.filter(_batch([1, 2, 3, 4], dates, pa.date32()), 1)
    assert days.watermark == "2024-01-04"
    assert days.window() == StoredWindow(
        "2024-01-02", _prints(*zip((2, 3, 4), dates[1:], strict=True))
    )  # 30 h: two days back


def test_a_watermark_stored_without_a_window_starts_one_at_the_top() -> None:
    """Read strictly above a watermark an older retailhub stored: the rows within the
    lookback below it were not read now, so the new window starts at the highest value."""
    window = WatermarkWindow("wm", stored="5", previous=None, lookback=Decimal("10"))
    window.filter(_batch([6, 7], [6, 7], pa.int64()), 1)
    assert window.window() == StoredWindow("7", _prints((7, 7)))


def test_an_inclusive_read_starts_the_window_where_it_began_reading() -> None:
    previous = StoredWindow("5", _prints((5, 5)))
    window = WatermarkWindow("wm", stored="5", previous=previous, lookback=Decimal("10"))
    # read from max(5 - 10, 5) = 5: rows under 5 were not read, so the window starts at 5
    window.filter(_batch([5, 6, 7], [5, 6, 7], pa.int64()), 1)
    assert window.window() == StoredWindow("5", _prints((5, 5), (6, 6), (7, 7)))


def test_decimal_float_and_unsigned_watermarks() -> None:
    previous = StoredWindow("2.50", ("x",))
    dec = WatermarkWindow("wm", stored="2.50", previous=previous, lookback=Decimal("1"))
    values = [Decimal("1.25"), Decimal("2.50"), Decimal("3.75")]
    dec.filter(_batch([1, 2, 3], values, pa.decimal128(10, 2)), 1)
    assert dec.watermark == "3.75"
    assert dec.window() == StoredWindow("2.75", _prints((3, Decimal("3.75"))))
    flt = WatermarkWindow("wm", stored=None, previous=None, lookback=None)
    flt.filter(_batch([1, 2], [0.5, 1.5], pa.float64()), 1)
    assert flt.watermark == "1.5"
    unsigned = WatermarkWindow("wm", stored=None, previous=None, lookback=Decimal("1000"))
    unsigned.filter(_batch([1, 2], [3, 5], pa.uint64()), 1)  # 5 - 1000 is below zero
    window = unsigned.window()
    assert window is not None and len(window.fingerprints) == 2


def test_text_watermark_columns_are_refused() -> None:
    window = WatermarkWindow("code", stored=None, previous=None, lookback=None, source="erp")
    with pytest.raises(SourceError, match="'code' is text: the database orders text by its"):
        window.filter(_batch([1], ["a"], pa.string()), 1)


def test_a_duration_lookback_on_numbers_is_an_error_naming_the_column() -> None:
    lookback = dt.timedelta(minutes=5)
    window = WatermarkWindow("seq", stored=None, previous=None, lookback=lookback)
    with pytest.raises(SourceError, match="'seq' holds int values"):
        window.filter(_batch([1], [1], pa.int64()), 1)


def test_nan_watermarks_are_read_once_like_nulls() -> None:
    nan = float("nan")
    first = WatermarkWindow("wm", stored=None, previous=None, lookback=None)
    out = first.filter(_batch([1, 2], [nan, 1.5], pa.float64()), 1)
    assert out.num_rows == 2 and first.watermark == "1.5" and first.nulls == 1
    later = WatermarkWindow("wm", stored="1.5", previous=first.window(), lookback=None)
    # PostgreSQL answers `wm >= 1.5` with the NaN row too: it was read already
    out = later.filter(_batch([1, 2, 3], [nan, 1.5, 2.5], pa.float64()), 1)
    assert out.column(0).to_pylist() == [3]


def test_infinite_float_watermarks_are_read_once_and_never_become_the_maximum() -> None:
    inf = float("inf")
    first = WatermarkWindow("wm", stored=None, previous=None, lookback=None)
    out = first.filter(_batch([1, 2, 3], [inf, 1.5, -inf], pa.float64()), 1)
    assert out.num_rows == 3 and first.watermark == "1.5" and first.nulls == 2
    later = WatermarkWindow("wm", stored="1.5", previous=first.window(), lookback=None)
    out = later.filter(_batch([1, 2, 4], [inf, 1.5, 2.5], pa.float64()), 1)
    assert out.column(0).to_pylist() == [4]


def test_a_batch_of_only_nan_and_infinite_numeric_watermarks_is_read_past() -> None:
    """PostgreSQL returns NaN and Infinity for every later `>= stored` query; a batch of
    nothing else (ADBC splits results, the row at the maximum was deleted) typed as Arrow's
    null type and failed the comparison with the stored watermark."""
    from retailhub.sources.base import StoredWindow

    numeric = _pg_numeric(["nan", "inf"])
    later = WatermarkWindow(
        "seq", stored="2", previous=StoredWindow("2", ("f" * 32,)), lookback=None
    )
    out = later.filter(pa.RecordBatch.from_arrays([pa.array([1, 2]), numeric], ["id", "seq"]), 1)
    assert out.num_rows == 0 and later.watermark == "2"
    first = WatermarkWindow("seq", stored=None, previous=None, lookback=None)
    out = first.filter(pa.RecordBatch.from_arrays([pa.array([1, 2]), numeric], ["id", "seq"]), 1)
    assert out.num_rows == 2 and first.nulls == 2 and first.watermark is None


def _pg_numeric(texts: list[str]) -> pa.Array:
    """A column as ADBC's PostgreSQL driver delivers numeric: opaque extension over text."""
    typ = pa.opaque(pa.string(), type_name="numeric", vendor_name="PostgreSQL")
    return pa.ExtensionArray.from_storage(typ, pa.array(texts))
