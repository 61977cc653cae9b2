"""The watermark window on hand-built Arrow batches: lookback grammar, bounds, fingerprints."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from retailhub.config.sources import parse_lookback, parse_source_config
from retailhub.errors import ConfigError, SourceError
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
    assert lower_bound("2024-01-02 09:00:00", None) == "2024-01-02 09:00:00"
    assert lower_bound("2024-01-02 09:00:00", dt.timedelta(hours=10)) == "2024-01-01 23:00:00"
    assert lower_bound("2024-01-02", dt.timedelta(hours=1)) == "2024-01-01"
    assert (
        lower_bound("2024-01-02 09:00:00+00:00", dt.timedelta(minutes=1))
        == "2024-01-02 08:59:00+00:00"
    )
    assert lower_bound("10", Decimal("2.0")) == "8"
    assert lower_bound("2.55", Decimal("1")) == "1.55"
    with pytest.raises(SourceError, match="not a date or time"):
        lower_bound("17", dt.timedelta(minutes=5))
    with pytest.raises(SourceError, match="is not"):
        lower_bound("2024-01-02", Decimal("1"))


def test_fingerprints_ignore_nulls_and_column_order() -> None:
    row = {"id": 1, "ts": dt.datetime(2024, 1, 1), "note": None}
    assert row_fingerprint(row) == row_fingerprint({"ts": dt.datetime(2024, 1, 1), "id": 1})
    assert row_fingerprint(row) != row_fingerprint({"id": 2, "ts": dt.datetime(2024, 1, 1)})


def _batch(ids, values, typ) -> pa.RecordBatch:
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array(values, typ)], ["id", "wm"])


def test_window_without_lookback_holds_the_rows_at_the_top_across_batches() -> None:
    window = WatermarkWindow("wm", stored=None, seen=None, lookback=None)
    out1 = window.filter(_batch([1, 2, 3], [5, 9, 9], pa.int64()), 1)
    out2 = window.filter(_batch([4, 5], [9, None], pa.int64()), 1)
    assert out1.num_rows == 3 and out2.num_rows == 2  # a first extraction drops nothing
    assert window.watermark == "9" and window.nulls == 1
    expected = {row_fingerprint({"id": i, "wm": 9}) for i in (2, 3, 4)}
    assert set(window.window()) == expected
    # the maximum rises in a later batch: the old top falls out of the window
    window.filter(_batch([6], [12], pa.int64()), 1)
    assert window.window() == [row_fingerprint({"id": 6, "wm": 12})]


def test_window_drops_only_the_rows_read_before() -> None:
    seen = frozenset(row_fingerprint({"id": i, "wm": 9}) for i in (2, 3))
    window = WatermarkWindow("wm", stored="9", seen=seen, lookback=None)
    # read again from wm >= 9: rows 2 and 3 were read, 7 committed late at 9, 8 is new
    out = window.filter(_batch([2, 7, 3, 8], [9, 9, 9, 10], pa.int64()), 1)
    assert out.column(0).to_pylist() == [7, 8]
    assert window.skipped == 2 and window.watermark == "10"


def test_a_changed_row_at_the_boundary_is_new() -> None:
    seen = frozenset({row_fingerprint({"id": 2, "wm": 9})})
    window = WatermarkWindow("wm", stored="9", seen=seen, lookback=None)
    batch = pa.record_batch(
        [pa.array([2]), pa.array([9]), pa.array(["corrected"])], ["id", "wm", "note"]
    )
    assert window.filter(batch, 1).num_rows == 1


def test_time_lookback_window_and_dates() -> None:
    ts = pa.timestamp("us")
    window = WatermarkWindow("wm", stored=None, seen=None, lookback=dt.timedelta(hours=1))
    times = [dt.datetime(2024, 1, 2, h, m) for h, m in ((7, 0), (8, 0), (8, 30), (9, 0))]
    window.filter(_batch([1, 2, 3, 4], times, ts), 1)
    assert window.watermark == "2024-01-02 09:00:00"
    assert len(window.window()) == 3  # 08:00, 08:30 and 09:00 are within the hour
    days = WatermarkWindow("wm", stored=None, seen=None, lookback=dt.timedelta(hours=30))
    dates = [dt.date(2024, 1, d) for d in (1, 2, 3, 4)]
    days.filter(_batch([1, 2, 3, 4], dates, pa.date32()), 1)
    assert days.watermark == "2024-01-04" and len(days.window()) == 3  # 30 h: two days back


def test_decimal_and_float_watermarks() -> None:
    dec = WatermarkWindow("wm", stored="2.50", seen=frozenset({"x"}), lookback=Decimal("1"))
    values = [Decimal("1.25"), Decimal("2.50"), Decimal("3.75")]
    dec.filter(_batch([1, 2, 3], values, pa.decimal128(10, 2)), 1)
    assert dec.watermark == "3.75" and len(dec.window()) == 1  # only 3.75 is >= 2.75
    flt = WatermarkWindow("wm", stored=None, seen=None, lookback=None)
    flt.filter(_batch([1, 2], [0.5, 1.5], pa.float64()), 1)
    assert flt.watermark == "1.5"


def test_a_duration_lookback_on_numbers_is_an_error_naming_the_column() -> None:
    window = WatermarkWindow("seq", stored=None, seen=None, lookback=dt.timedelta(minutes=5))
    with pytest.raises(SourceError, match="'seq' holds int values"):
        window.filter(_batch([1], [1], pa.int64()), 1)
