"""Fast CSV assembly: whole chunks of lines are built with Arrow string kernels, never per row.

Why not ``pyarrow.csv.write_csv``: its "needed" quoting style quotes *every* string, which does
not look like the real files (UCI and Tableau quote only fields that need it). Instead, each
distinct field value (a product's ``code,description``, a customer's ``id,country\\n``...) is
CSV-escaped once in Python, and lines are assembled with ``take`` + ``binary_join_element_wise``.
The row terminator is part of the last field, so the concatenated values of the resulting
string array are exactly the file bytes and can be written straight from the Arrow buffer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

StrArray: TypeAlias = pa.StringArray


def csv_field(value: str) -> str:
    """RFC-4180 minimal quoting of one field (quotes only when needed, ``""`` escapes)."""
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def strings(values: Sequence[str]) -> StrArray:
    """A lookup table of pre-formatted field values."""
    return pa.array(list(values), type=pa.string())


def take(table: StrArray, idx: np.ndarray) -> StrArray:
    return table.take(pa.array(idx, type=pa.int64()))


def ints(values: np.ndarray) -> StrArray:
    """Decimal text of integers (Arrow's cast is vectorised and locale-free)."""
    return pc.cast(pa.array(values, type=pa.int64()), pa.string())


def floats(values: np.ndarray) -> StrArray:
    """Shortest round-trip text of doubles: ``0`` for 0.0, ``2.1``, ``957.5775``."""
    return pc.cast(pa.array(values, type=pa.float64()), pa.string())


_CENTS = strings([f".{i:02d}" for i in range(100)])


def money(cents: np.ndarray) -> StrArray:
    """Fixed two-decimal text from non-negative integer cents (``1234`` -> ``12.34``)."""
    cents = np.asarray(cents, dtype=np.int64)
    return join([ints(cents // 100), take(_CENTS, cents % 100)], "")


def join(columns: Sequence[StrArray | str], sep: str = ",") -> StrArray:
    """Element-wise concatenation of string columns (plain ``str`` = constant column)."""
    args = [pa.scalar(c, type=pa.string()) if isinstance(c, str) else c for c in columns]
    out = pc.binary_join_element_wise(*args, sep)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return out


def override(column: StrArray, positions: np.ndarray, values: StrArray) -> StrArray:
    """``column`` with ``column[positions[i]] = values[i]`` (positions unique)."""
    if len(positions) == 0:
        return column
    idx = np.arange(len(column), dtype=np.int64)
    idx[positions] = len(column) + np.arange(len(positions))
    return take(pa.concat_arrays([column, values]), idx)


def take_override(
    table: StrArray, idx: np.ndarray, positions: np.ndarray, values: StrArray
) -> StrArray:
    """``take(table, idx)`` with some positions replaced; one Arrow take instead of two."""
    if len(positions) == 0:
        return take(table, idx)
    full = np.asarray(idx, dtype=np.int64).copy()
    full[positions] = len(table) + np.arange(len(positions))
    return take(pa.concat_arrays([table, values]), full)


class CsvSink:
    """An output file that receives whole chunks of already terminated lines.

    Writes go through one background thread, so formatting the next chunk (Arrow and NumPy
    release the GIL) overlaps with the kernel copying / flushing the previous one. At most
    ``max_pending`` chunks wait, which bounds the extra memory. Counts data rows and bytes so
    the report and ``defects.json`` need not re-read files.
    """

    _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retailhub-demo-writer")

    def __init__(self, path: Path, header: str, *, bom: bool = False, max_pending: int = 2) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()/__exit__
        head = ("\ufeff" if bom else "") + header
        self._fh.write(head.encode("utf-8"))
        self._pending: deque[Future[None]] = deque()
        self._max_pending = max_pending
        self.rows = 0

    def _submit(self, data: memoryview, keep: object) -> None:
        while len(self._pending) >= self._max_pending:
            self._pending.popleft().result()

        def job() -> None:
            _ = keep  # keeps the Arrow buffer alive until written
            self._fh.write(data)

        self._pending.append(self._pool.submit(job))

    def write_lines(self, lines: StrArray) -> None:
        """Write the concatenated values of a string array (each value ends with its EOL)."""
        if len(lines) == 0:
            return
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        lo = int(offsets[lines.offset])
        hi = int(offsets[lines.offset + len(lines)])
        data = lines.buffers()[2]
        self._submit(memoryview(data)[lo:hi], lines)
        self.rows += len(lines)

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()  # re-raises a failed write
        finally:
            self._fh.close()

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
