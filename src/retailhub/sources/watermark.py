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
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retailhub.config.sources import Lookback
from retailhub.errors import SourceError


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


def lower_bound(stored: str, lookback: Lookback | None) -> str:
    """The inclusive lower bound of the next extraction: the stored watermark less the
    lookback, as text both servers coerce to the column's type."""
    if lookback is None or not lookback:
        return stored
    if isinstance(lookback, timedelta):
        try:
            moment = datetime.fromisoformat(stored)
        except ValueError:
            raise SourceError(
                f"watermark_lookback is a duration, but the stored watermark {stored!r} is not "
                "a date or time: give a number for a numeric watermark column"
            ) from None
        bound = moment - lookback
        return bound.date().isoformat() if len(stored) == 10 else watermark_text(bound)
    try:
        return watermark_text(Decimal(stored) - lookback)
    except InvalidOperation:
        raise SourceError(
            f"watermark_lookback is a number, but the stored watermark {stored!r} is not: give "
            "a duration (such as 15m) for a time watermark column"
        ) from None


class WatermarkWindow:
    """Tracks one extraction's watermark: its maximum, the rows of its window, the rows to drop.

    ``seen`` is the window the ledger stored with the previous watermark; the rows read again
    from it are dropped (``skipped``). ``None`` means the previous watermark was stored
    without a window (by an older retailhub, read exclusively): nothing to drop.
    """

    def __init__(
        self,
        column: str,
        *,
        stored: str | None,
        seen: frozenset[str] | None,
        lookback: Lookback | None,
        convert: Callable[[pa.Array], pa.Array] | None = None,
    ) -> None:
        """``convert`` types a column of text (an API's values) for comparison; the stored
        watermark is then the highest value's own text, in the format the API gave it."""
        self.column = column
        self.stored = stored
        self.seen = seen or frozenset()
        self.lookback = lookback
        self._convert = convert
        self._maximum_text: str | None = None
        self.maximum: Any = None
        self.skipped = 0
        self.nulls = 0
        # rows that may be in the final window, with their watermark values
        self._candidates: list[tuple[pa.RecordBatch, pa.Array]] = []
        self._stored_value: Any = None

    @property
    def watermark(self) -> str | None:
        """The highest watermark read so far, as text (the stored one if none was read)."""
        if self._maximum_text is not None:
            return self._maximum_text
        return watermark_text(self.maximum) if self.maximum is not None else self.stored

    def window(self) -> list[str]:
        """Fingerprints of the rows read whose watermark lies in the final window."""
        if self.maximum is None:
            return []
        self._prune()
        records = [r for part, _ in self._candidates for r in part.to_pylist()]
        return sorted({row_fingerprint(r) for r in records})

    def filter(self, batch: pa.RecordBatch, index: int) -> pa.RecordBatch:
        """The batch less the rows read before; tracks the maximum and the window's rows."""
        if batch.num_rows == 0:
            return batch
        column = batch.column(index)
        values = self._convert(column) if self._convert else _comparable(column)
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
        if not self.seen or self.stored is None:
            return batch
        # rows at or below the stored watermark may have been read before
        again = pc.indices_nonzero(_at_most(values, self._stored(values))).to_pylist()
        if not again:
            return batch
        records = batch.take(pa.array(again)).to_pylist()
        drop = [i for i, r in zip(again, records, strict=True) if row_fingerprint(r) in self.seen]
        if not drop:
            return batch
        self.skipped += len(drop)
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[drop] = False
        return batch.filter(pa.array(keep))

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

    def _stored(self, values: pa.Array) -> Any:
        if self._stored_value is None:
            assert self.stored is not None
            if self._convert is not None:
                self._stored_value = self._convert(pa.array([self.stored]))[0].as_py()
            elif pa.types.is_decimal(values.type):
                self._stored_value = Decimal(self.stored)
            elif pa.types.is_floating(values.type):
                self._stored_value = float(self.stored)
            else:
                self._stored_value = pa.scalar(self.stored).cast(values.type).as_py()
        return self._stored_value


def _comparable(column: pa.Array) -> pa.Array:
    """The column as values that compare as the database compares them. PostgreSQL
    ``numeric`` arrives as an opaque extension type over its text, whose largest string is not
    the largest number ('9' > '10'): it becomes decimals."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column.type, pa.BaseExtensionType):
        numeric = getattr(column.type, "type_name", None) == "numeric"
        column = column.storage
        if numeric:
            return pa.array([Decimal(v) if v is not None else None for v in column.to_pylist()])
    return column


def _maximum(values: pa.Array) -> Any:
    return pc.max(values).as_py() if len(values) else None


def _scalar(value: Any, typ: pa.DataType) -> pa.Scalar:
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
