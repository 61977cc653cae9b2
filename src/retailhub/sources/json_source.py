"""JSON files: a document with a list of records (streamed with ijson) or NDJSON (line by line).

Neither form is loaded whole: a JSON document is parsed incrementally down to ``records_path``
and NDJSON is read a line at a time, so memory is bounded by the batch size, not the file size.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from retailhub.config.sources import JsonSourceConfig
from retailhub.errors import SourceError
from retailhub.sources.base import InputUnit
from retailhub.sources.csv_diagnose import find_decode_error
from retailhub.sources.files import FileSource, VerifyingStream, check_unchanged, open_unit_file
from retailhub.sources.records import TextBatcher

BATCH_ROWS = 10_000
_BOM = b"\xef\xbb\xbf"


class JsonSource(FileSource[JsonSourceConfig]):
    """Reads JSON/NDJSON files as text columns (see :mod:`retailhub.sources.records`)."""

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        stream = VerifyingStream(open_unit_file(unit))
        buffered = io.BufferedReader(stream, buffer_size=1 << 20)
        if buffered.peek(3)[:3] == _BOM:
            buffered.read(3)
        batcher = TextBatcher(self.name, self.config.fields)
        if self.config.resolved_format == "ndjson":
            batches = self._ndjson_batches(buffered, unit, batcher)
        else:
            batches = self._document_batches(buffered, unit, batcher)
        try:
            first = next(batches, None)
        except BaseException:
            buffered.close()
            raise
        if first is None:  # no records: schema from `fields`, or no columns at all
            buffered.close()
            names = self.config.fields or []
            schema = pa.schema([(n, pa.string()) for n in names])
            return pa.RecordBatchReader.from_batches(schema, iter(()))

        def all_batches() -> Iterator[pa.RecordBatch]:
            try:
                yield first
                yield from batches
                check_unchanged(unit, stream)
            finally:
                buffered.close()

        return pa.RecordBatchReader.from_batches(batcher.schema, all_batches())

    # -- NDJSON --------------------------------------------------------------------------------

    def _ndjson_batches(
        self, raw: IO[bytes], unit: InputUnit, batcher: TextBatcher
    ) -> Iterator[pa.RecordBatch]:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline=None)
        pending: list[Any] = []
        first_line = 1
        line_no = 0
        try:
            for line_no, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                try:
                    pending.append(json.loads(line, parse_float=Decimal))
                except json.JSONDecodeError as exc:
                    raise SourceError(
                        f"source {self.name!r}: invalid JSON in {unit.uri} at line {line_no}, "
                        f"column {exc.colno}: {exc.msg}"
                        + (" (the file looks truncated)" if not line.endswith("\n") else ""),
                        source=self.name,
                        path=unit.uri,
                        line=line_no,
                    ) from exc
                if len(pending) >= BATCH_ROWS:
                    yield batcher.batch(pending, f"{unit.uri} lines {first_line}-{line_no}")
                    pending = []
                    first_line = line_no + 1
        except UnicodeDecodeError as exc:
            raise self._encoding_error(unit, exc) from exc
        if pending:
            yield batcher.batch(pending, f"{unit.uri} lines {first_line}-{line_no}")

    # -- JSON document --------------------------------------------------------------------------

    def _document_batches(
        self, raw: IO[bytes], unit: InputUnit, batcher: TextBatcher
    ) -> Iterator[pa.RecordBatch]:
        import ijson

        path = self.config.records_path
        prefix = f"{path}.item" if path else "item"
        items = ijson.items(raw, prefix, use_float=False)
        produced = 0
        try:
            while chunk := list(itertools.islice(items, BATCH_ROWS)):
                yield batcher.batch(
                    chunk, f"{unit.uri} records {produced + 1}-{produced + len(chunk)}"
                )
                produced += len(chunk)
        except ijson.JSONError as exc:
            raise SourceError(
                f"source {self.name!r}: invalid or truncated JSON in {unit.uri} after "
                f"{produced} records: {str(exc).strip()}",
                source=self.name,
                path=unit.uri,
            ) from exc
        except UnicodeDecodeError as exc:
            raise self._encoding_error(unit, exc) from exc
        if produced == 0 and not _has_array_at(Path(unit.uri), path or ""):
            what = (
                f"no list at records_path {path!r}"
                if path
                else "no top-level list of records (for a JSON object, set records_path to "
                "the key of its list, such as 'data' or 'results.items')"
            )
            raise SourceError(
                f"source {self.name!r}: {unit.uri} has {what}", source=self.name, path=unit.uri
            )

    def _encoding_error(self, unit: InputUnit, exc: UnicodeDecodeError) -> SourceError:
        problem = find_decode_error(Path(unit.uri), "utf-8-sig")
        where = f" at byte {problem.offset} (line {problem.line})" if problem else ""
        return SourceError(
            f"source {self.name!r}: {unit.uri} is not valid UTF-8{where}: JSON must be UTF-8",
            source=self.name,
            path=unit.uri,
            offset=problem.offset if problem else None,
        )


def _has_array_at(path: Path, dotted: str) -> bool:
    """Whether the JSON document at ``path`` has a list at ``dotted`` (only after 0 records)."""
    import ijson

    with path.open("rb") as fh:
        head = fh.read(3)
        if head != _BOM:
            fh.seek(0)
        try:
            for prefix, event, _ in ijson.parse(fh):
                if prefix == dotted and event == "start_array":
                    return True
        except ijson.JSONError:
            return False
    return False
