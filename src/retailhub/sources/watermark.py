"""Incremental extraction by a watermark column without losing the rows at its boundary.

Reading only the rows *strictly above* the stored watermark loses rows for good: a row
committed after the previous extraction with the value that extraction had reached (two
orders in the same second), or a row whose transaction began before the extraction and
committed after it, with an older timestamp. So once a watermark is stored, the next
extraction reads from it *inclusive*, less an optional ``watermark_lookback``, and drops the
rows it has read before. To know them, the ledger keeps with each stored watermark a
fingerprint of every row in its **window**: the rows whose watermark is at least the highest
value less the lookback (without a lookback, the rows at the highest value). This is how
dlt's incremental cursors work (``unique_hashes`` at the last value, plus a ``lag``).

A fingerprint is the MD5 of the row's non-NULL values by column name, so a column added to
the table later (NULL in the old rows) does not make the window's rows look new. Only the
rows of the final window and the rows read again are hashed, in Python; the comparisons
that pick them are Arrow kernels, so a first extraction of millions of rows costs a few
vectorised comparisons per batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retailhub.config.sources import Lookback
from retailhub.errors import SourceError
from retailhub.sources.base import StoredWindow

log = logging.getLogger(__name__)


def watermark_text(value: Any) -> str:
    """How a watermark is stored in the ledger and written into the extraction's WHERE."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 10, not 1E+1 or 10.000 (one value, one text)
    return str(value)


def row_fingerprint(row: dict[str, Any]) -> str:
    """MD5 of the row's non-NULL values by name (see the module docstring)."""
    present = {k: v for k, v in row.items() if v is not None}
    text = json.dumps(present, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def lower_bound(stored: str, lookback: Lookback | None, window_start: str | None = None) -> str:
    """The inclusive lower bound of the next extraction: the stored watermark less the
    lookback, but not below the start of the stored window (the rows under it were read
    without their fingerprints kept: a lookback added or raised takes effect as the windows
    grow, not at once), as text both servers coerce to the column's type."""
    if lookback is None or not lookback or window_start is None:
        return stored
    if isinstance(lookback, timedelta):
        try:
            moment = datetime.fromisoformat(stored)
            start = datetime.fromisoformat(window_start)
        except ValueError:
            raise SourceError(
                f"watermark_lookback is a duration, but the stored watermark {stored!r} is not "
                "a date or time: give a number for a numeric watermark column"
            ) from None
        if (start.tzinfo is None) != (moment.tzinfo is None):  # a date start, a timestamp
            start = start.replace(tzinfo=moment.tzinfo)
        bound = max(moment - lookback, start)
        return bound.date().isoformat() if len(stored) == 10 else watermark_text(bound)
    try:
        number = Decimal(stored)
        bound = max(number - lookback, Decimal(window_start))
    except InvalidOperation:
        raise SourceError(
            f"watermark_lookback is a number, but the stored watermark {stored!r} is not: give "
            "a duration (such as 15m) for a time watermark column"
        ) from None
    if number == number.to_integral_value():
        bound = bound.to_integral_value(rounding=ROUND_FLOOR)  # '4', not '4.5', for an integer
    return watermark_text(bound)


class WatermarkWindow:
    """Tracks one extraction's watermark: its maximum, the rows of its window, the rows to drop.

    ``previous`` is the window the ledger stored with the watermark read from: its rows, read
    again, are dropped (``skipped``), as many times as they were read. ``None`` means the
    watermark was stored without a window (by an older retailhub) and is read strictly above.
    """

    def __init__(
        self,
        column: str,
        *,
        stored: str | None,
        previous: StoredWindow | None,
        lookback: Lookback | None,
        convert: Callable[[pa.Array], pa.Array] | None = None,
        source: str = "",
    ) -> None:
        """``convert`` types a column of text (an API's values) for comparison; the stored
        watermark is then the highest value's own text, in the format the API gave it."""
        self.column = column
        self.stored = stored
        self.previous = previous
        self.lookback = lookback
        self.source = source
        self._convert = convert
        self._seen = Counter(previous.fingerprints) if previous is not None else Counter()
        self._maximum_text: str | None = None
        self.maximum: Any = None
        self.skipped = 0
        self.nulls = 0
        # rows that may be in the final window, with their watermark values
        self._candidates: list[tuple[pa.RecordBatch, pa.Array]] = []
        self._typed: dict[str, Any] = {}

    @property
    def watermark(self) -> str | None:
        """The highest watermark read so far, as text (the stored one if none was read)."""
        if self._maximum_text is not None:
            return self._maximum_text
        return watermark_text(self.maximum) if self.maximum is not None else self.stored

    def window(self) -> StoredWindow | None:
        """The window to store with the new watermark: every row read whose watermark is at
        least its start, which is the highest value less the lookback, but not below where
        this extraction began reading (rows under that were not read now) and, after a
        watermark stored without a window (read strictly above it), the highest value."""
        if self.maximum is None:
            return None
        start = self._threshold(self.maximum)
        if self.stored is not None and self.previous is None:
            start = self.maximum
        elif self.stored is not None and self.previous is not None and self._candidates:
            read_from = lower_bound(self.stored, self.lookback, self.previous.start)
            start = max(start, self._value(read_from, self._candidates[0][1].type))
        fingerprints: list[str] = []
        for part, values in self._candidates:
            rows = part.filter(_at_least(values, start)).to_pylist()
            fingerprints.extend(row_fingerprint(r) for r in rows)
        text = self._maximum_text if start == self.maximum and self._maximum_text else None
        return StoredWindow(text or watermark_text(start), tuple(sorted(fingerprints)))

    def stream(self, batches: Iterator[pa.RecordBatch], index: int) -> Iterator[pa.RecordBatch]:
        """The batches less the rows read before (``filter`` each), then a log line of what
        was skipped and, on a first extraction, of the rows without a watermark."""
        try:
            for batch in batches:
                kept = self.filter(batch, index)
                if kept.num_rows:
                    yield kept
        finally:
            # on an error here the driver's stream must end now, not when collected: an
            # unfinished MariaDB result keeps the table locked against DDL meanwhile
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        if self.skipped:
            log.info(
                "source %s: %d row(s) at or below the stored watermark %s were read before "
                "and are skipped",
                self.source,
                self.skipped,
                self.stored,
            )
        if self.nulls and self.stored is None:
            log.warning(
                "source %s: %d row(s) have no %s (NULL, NaN or infinite): this first extraction "
                "reads them, later ones cannot tell new such rows from old and do not read them",
                self.source,
                self.nulls,
                self.column,
            )

    def filter(self, batch: pa.RecordBatch, index: int) -> pa.RecordBatch:
        """The batch less the rows read before; tracks the maximum and the window's rows."""
        if batch.num_rows == 0:
            return batch
        column = batch.column(index)
        values = self._convert(column) if self._convert else _comparable(column)
        if self._convert is None and (
            pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        ):
            raise SourceError(
                f"source {self.source!r}: watermark_column {self.column!r} is text: the database "
                "orders text by its collation, which retailhub cannot follow, so rows would be "
                "read twice or never; use a timestamp, date or number column (or a query that "
                "casts it)",
                source=self.source,
            )
        batch, values = self._without_nonfinite(batch, values, _nonfinite(column, values))
        if pa.types.is_null(values.type):
            # no value to compare (only NULL, NaN or infinite watermarks in this batch: Arrow
            # typed the decimals it could not build as null)
            self.nulls += len(values)
            return batch
        self.nulls += values.null_count
        top = _maximum(values)
        if top is not None and (self.maximum is None or top > self.maximum):
            self.maximum = top
            if self._convert is not None:
                at = pc.index(values, _scalar(top, values.type)).as_py()
                self._maximum_text = column[at].as_py()
            self._prune()
        if self.maximum is not None:
            # kept as Arrow slices and hashed at the end: in a sorted extraction most rows
            # are near the running maximum when read, and only the last window's count
            in_window = _at_least(values, self._threshold(self.maximum))
            if pc.any(in_window).as_py():
                self._candidates.append((batch.filter(in_window), values.filter(in_window)))
        if not self._seen or self.stored is None:
            return batch
        # rows at or below the stored watermark may have been read before
        stored = self._value(self.stored, values.type)
        again = pc.indices_nonzero(_at_most(values, stored)).to_pylist()
        if not again:
            return batch
        records = batch.take(pa.array(again)).to_pylist()
        drop = []
        for i, record in zip(again, records, strict=True):
            fingerprint = row_fingerprint(record)
            if self._seen[fingerprint] > 0:  # identical rows: drop as many as were read
                self._seen[fingerprint] -= 1
                drop.append(i)
        if not drop:
            return batch
        self.skipped += len(drop)
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[drop] = False
        return batch.filter(pa.array(keep))

    def _without_nonfinite(
        self, batch: pa.RecordBatch, values: pa.Array, nonfinite: pa.Array | None
    ) -> tuple[pa.RecordBatch, pa.Array]:
        """NaN and infinite watermarks are read once, like NULLs: PostgreSQL sorts NaN and
        Infinity above every number, so such a row would come back on every later run (and an
        infinite maximum would hide every later row), while no Arrow decimal can hold them."""
        if nonfinite is None or not pc.any(nonfinite).as_py():
            return batch, values
        if self.stored is None:  # the first extraction keeps them, counted with the NULLs
            return batch, pc.if_else(nonfinite, pa.scalar(None, values.type), values)
        keep = pc.invert(nonfinite)
        return batch.filter(keep), values.filter(keep)

    def _prune(self) -> None:
        """Drop the candidate rows the risen maximum has left behind (vectorised)."""
        if not self._candidates or self.maximum is None:
            return
        threshold = self._threshold(self.maximum)
        kept = []
        for part, values in self._candidates:
            mask = _at_least(values, threshold)
            if pc.all(mask).as_py():
                kept.append((part, values))
            elif pc.any(mask).as_py():
                kept.append((part.filter(mask), values.filter(mask)))
        self._candidates = kept

    def _threshold(self, top: Any) -> Any:
        if self.lookback is None or not self.lookback:
            return top
        if isinstance(self.lookback, timedelta):
            if isinstance(top, datetime):
                return top - self.lookback
            if isinstance(top, date):
                return top - timedelta(days=-(-self.lookback.total_seconds() // 86400))
            raise SourceError(
                f"watermark_column {self.column!r} holds {type(top).__name__} values: give "
                "watermark_lookback as a number, not a duration"
            )
        if isinstance(top, int | float | Decimal):
            return type(top)(Decimal(str(top)) - self.lookback)
        raise SourceError(
            f"watermark_column {self.column!r} holds {type(top).__name__} values: give "
            "watermark_lookback as a duration (such as 15m), not a number"
        )

    def _value(self, text: str, typ: pa.DataType) -> Any:
        """A watermark's text as a value of the column's type (cached)."""
        if text not in self._typed:
            if self._convert is not None:
                value = self._convert(pa.array([text]))[0].as_py()
            elif pa.types.is_decimal(typ):
                value = Decimal(text)
            elif pa.types.is_floating(typ):
                value = float(text)
            else:
                value = pa.scalar(text).cast(typ).as_py()
            self._typed[text] = value
        return self._typed[text]


# ADBC writes them nan, inf, -inf; psql and COPY write NaN, Infinity, -Infinity
_NONFINITE_TEXT = pa.array(["nan", "inf", "-inf", "infinity", "-infinity"])


def _is_pg_numeric(column: pa.Array) -> bool:
    return (
        isinstance(column.type, pa.BaseExtensionType)
        and getattr(column.type, "type_name", None) == "numeric"
    )


def _comparable(column: pa.Array) -> pa.Array:
    """The column as values that compare as the database compares them. PostgreSQL
    ``numeric`` arrives as an opaque extension type over its text, whose largest string is not
    the largest number ('9' > '10'): it becomes decimals (NaN and infinities, which no decimal
    holds, become NULL; ``_nonfinite`` finds them)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column.type, pa.BaseExtensionType):
        numeric = _is_pg_numeric(column)
        column = column.storage
        if numeric:
            texts = column.to_pylist()
            return pa.array(
                [
                    Decimal(v) if v is not None and v.lower() not in _NONFINITE_NAMES else None
                    for v in texts
                ]
            )
    return column


_NONFINITE_NAMES = frozenset(_NONFINITE_TEXT.to_pylist())


def _nonfinite(column: pa.Array, values: pa.Array) -> pa.Array | None:
    """Where the watermark is NaN or infinite (a float, or PostgreSQL numeric's text)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if _is_pg_numeric(column):
        return pc.fill_null(pc.is_in(pc.utf8_lower(column.storage), _NONFINITE_TEXT), False)
    if pa.types.is_floating(values.type):
        return pc.fill_null(pc.invert(pc.is_finite(values)), False)
    return None


def _maximum(values: pa.Array) -> Any:
    return pc.max(values).as_py() if len(values) else None


def _scalar(value: Any, typ: pa.DataType) -> pa.Scalar:
    if pa.types.is_unsigned_integer(typ) and value < 0:
        value = 0  # a lookback reaching below zero: every value is above it
    if pa.types.is_decimal(typ):
        return pa.scalar(Decimal(str(value)))  # its own precision: Arrow compares across them
    if pa.types.is_floating(typ):
        return pa.scalar(float(value))
    return pa.scalar(value, type=typ)


def _at_least(values: pa.Array, bound: Any) -> pa.Array:
    return pc.fill_null(pc.greater_equal(values, _scalar(bound, values.type)), False)


def _at_most(values: pa.Array, bound: Any) -> pa.Array:
    return pc.fill_null(pc.less_equal(values, _scalar(bound, values.type)), False)


class TextValues:
    """Types an API's watermark field, given as text, for comparison: as numbers when the
    first values read are numbers, else as timestamps when they are ISO 8601, else as text.
    The kind is fixed by the first values, so every batch compares alike."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.kind: pa.DataType | None = None

    def __call__(self, column: pa.Array) -> pa.Array:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if self.kind is None:
            present = column.drop_null()
            if len(present) == 0:
                return column
            for kind in _TEXT_KINDS:
                try:
                    pc.cast(present, kind)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
                self.kind = kind
                break
            else:
                self.kind = pa.string()
        try:
            return pc.cast(column, self.kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise SourceError(
                f"watermark field {self.field!r} holds a value that is not a {self.kind} like "
                "the ones before it: the API's values must be of one kind to be compared"
            ) from None


_TEXT_KINDS = (pa.decimal128(38, 9), pa.timestamp("us", tz="UTC"), pa.timestamp("us"))
