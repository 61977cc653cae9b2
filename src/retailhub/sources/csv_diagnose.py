"""Pinpoint why a CSV file failed: the byte offset of a bad character, the line of a bad record.

pyarrow's fast reader says *that* a file is broken but not always *where* (it does not know line
numbers once it parses blocks in parallel). These slow, exact checks run only after a failure, so
the happy path stays fast and the error message can still name the line a person must fix.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class DecodeProblem:
    offset: int  # 0-based byte offset of the first byte that does not decode
    line: int  # 1-based physical line holding that byte
    bad_bytes: bytes
    reason: str


@dataclass(frozen=True)
class RecordProblem:
    line: int  # 1-based physical line where the offending record starts
    reason: str


def find_decode_error(path: Path, encoding: str) -> DecodeProblem | None:
    """First byte sequence of ``path`` that ``encoding`` cannot decode, or None."""
    carry = b""  # an incomplete multi-byte sequence cut by the chunk boundary
    base = 0  # file offset of data[0]
    newlines = 0  # newlines before base
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            data = carry + chunk
            carry = b""
            try:
                data.decode(encoding)
            except UnicodeDecodeError as exc:
                cut_at_end = exc.end == len(data) and exc.reason in (
                    "unexpected end of data",
                    "truncated data",
                )
                if final or not cut_at_end:
                    return DecodeProblem(
                        offset=base + exc.start,
                        line=newlines + data[: exc.start].count(b"\n") + 1,
                        bad_bytes=data[exc.start : exc.end],
                        reason=exc.reason,
                    )
                carry = data[exc.start :]
            if final:
                return None
            done = len(data) - len(carry)
            base += done
            newlines += data[:done].count(b"\n")


def find_bad_record(
    path: Path,
    encoding: str,
    delimiter: str,
    quote: str,
    *,
    expected_fields: int | None,
) -> RecordProblem | None:
    """First record with the wrong number of fields or an unterminated quote, or None.

    ``expected_fields`` None means "as many as the first record" (header or not).
    """
    old_limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # an unterminated quote swallows the rest of the file
    try:
        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            return _scan(fh, delimiter, quote, expected_fields)
    finally:
        csv.field_size_limit(old_limit)


def _scan(
    fh: io.TextIOBase, delimiter: str, quote: str, expected: int | None
) -> RecordProblem | None:
    reader = csv.reader(fh, delimiter=delimiter, quotechar=quote, strict=True)
    last_line = 0
    while True:
        start = last_line + 1
        try:
            record = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            why = str(exc)
            if "unexpected end of data" in why:
                why = (
                    "unterminated quoted field (the file looks truncated or a quote is not closed)"
                )
            return RecordProblem(start, why)
        last_line = reader.line_num
        if not record:  # blank line: pyarrow skips these too
            continue
        if expected is None:
            expected = len(record)
        elif len(record) != expected:
            return RecordProblem(start, f"expected {expected} fields, found {len(record)}")
