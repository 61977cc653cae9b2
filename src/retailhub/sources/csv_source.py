"""Delimited text files, streamed with pyarrow's CSV reader, every column as text.

Reading everything as VARCHAR is deliberate: type decisions (and the per-field reasons when a value
does not parse) belong to the layout's staging SQL, where a bad value becomes a quarantined row
instead of a failed file. What *does* fail the file here is structure: wrong encoding, a record
with the wrong number of fields, an unterminated quote (a truncated file), a file rewritten while
being read. Those errors name the file, the line or byte offset, and the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from retailhub.config.sources import CsvSourceConfig
from retailhub.errors import SourceError
from retailhub.sources.base import InputUnit
from retailhub.sources.csv_diagnose import find_bad_record, find_decode_error
from retailhub.sources.files import (
    FileSource,
    VerifyingStream,
    check_unchanged,
    open_unit_file,
)

log = logging.getLogger(__name__)

BLOCK_SIZE = 4 << 20  # bytes pyarrow parses at a time: bounds memory per batch
_UTF8_NAMES = ("utf-8", "utf-8-sig")
_ASCII_COMPATIBLE_PROBE = 'a,"\n'
# magic numbers of compressed files (binary: no text header starts with them)
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"\x28\xb5\x2f\xfd", "zstd"))


class CsvSource(FileSource[CsvSourceConfig]):
    """Reads the files matched by ``path`` as text columns; see the module docstring."""

    def __init__(self, config: CsvSourceConfig, project_dir: Path) -> None:
        super().__init__(config, project_dir)
        self._codec = codecs.lookup(config.encoding).name

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        path = Path(unit.uri)
        header = self._peek_header(path, unit)
        names = header if self.config.header else [f"column{i}" for i in range(len(header))]
        stream = VerifyingStream(open_unit_file(unit), count_byte=self._quote_byte())
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(
                    encoding=self._arrow_encoding(),
                    block_size=BLOCK_SIZE,
                    column_names=None if self.config.header else names,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.config.delimiter,
                    quote_char=self.config.quote,
                    double_quote=True,
                    newlines_in_values=True,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    null_values=self.config.null_values,
                    strings_can_be_null=bool(self.config.null_values),
                    quoted_strings_can_be_null="" in self.config.null_values,
                ),
            )
        except Exception as exc:
            stream.close()
            if self.config.header and "Empty CSV file or block" in str(exc):
                # the header line without a line break after it, and no rows: pyarrow cannot
                # tell its columns, the peeked header can
                schema = pa.schema([(name, pa.string()) for name in names])
                return pa.RecordBatchReader.from_batches(schema, iter(()))
            raise self._translate(exc, unit, len(names)) from exc
        return pa.RecordBatchReader.from_batches(
            reader.schema, self._batches(reader, stream, unit, len(names))
        )

    # -- streaming -------------------------------------------------------------------------

    def _batches(
        self,
        reader: pacsv.CSVStreamingReader,
        stream: VerifyingStream,
        unit: InputUnit,
        n_fields: int,
    ) -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except Exception as exc:
                    raise self._translate(exc, unit, n_fields) from exc
                rows += batch.num_rows
                yield batch
            check_unchanged(unit, stream)
            if stream.counted % 2 == 1:
                # An odd number of quote bytes usually means a quoted field never closed:
                # pyarrow silently runs such a field to the end of the file.
                self._raise_if_unterminated(unit, n_fields)
            self._warn_if_unterminated_last_line(unit, stream, rows)
        finally:
            stream.close()

    def _warn_if_unterminated_last_line(
        self, unit: InputUnit, stream: VerifyingStream, rows: int
    ) -> None:
        """Warn when the file does not end with a line break.

        A copy or download cut inside the last field leaves a record with every field, so
        nothing else notices it ("United Kingdom" lands as "United Kin", 12 as 1). It is a
        warning, not an error: some exporters omit the final line break (two of the public
        datasets' 314 files do), and the file is otherwise well formed.
        """
        if not rows or self._quote_byte() is None or stream.last_byte in (b"\n", b"\r"):
            return  # no rows to doubt; a multi-byte encoding (UTF-16) ends in a NUL byte
        log.warning(
            "source %r: %s does not end with a line break: if it was cut short (an interrupted "
            "copy or download), its last record (row %d) is incomplete; compare the file with "
            "its sender's",
            self.name,
            unit.uri,
            rows,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _arrow_encoding(self) -> str:
        # pyarrow strips a UTF-8 BOM itself and decodes UTF-8 natively (no Python transcoding).
        return "utf8" if self._codec in _UTF8_NAMES else self._codec

    def _text_encoding(self) -> str:
        # For Python-side peeking/diagnosis: always strip a UTF-8 BOM like pyarrow does.
        return "utf-8-sig" if self._codec in _UTF8_NAMES else self._codec

    def _quote_byte(self) -> bytes | None:
        """The quote as one byte if the encoding is ASCII-compatible (parity check), else None."""
        codec = "utf-8" if self._codec in _UTF8_NAMES else self._codec  # utf-8-sig adds a BOM
        try:
            probe = _ASCII_COMPATIBLE_PROBE.encode(codec)
            quote = self.config.quote.encode(codec)
        except UnicodeError:
            return None
        if probe != _ASCII_COMPATIBLE_PROBE.encode("ascii") or len(quote) != 1:
            return None  # e.g. UTF-16: a quote is two bytes, counting single bytes is meaningless
        return quote

    def _peek_header(self, path: Path, unit: InputUnit) -> list[str]:
        """The first record's field names, decoded like the reader will (BOM stripped)."""
        try:
            with open(path, "rb") as raw:
                magic = raw.read(4)
        except OSError:
            magic = b""  # reported below, with the reason
        for signature, kind in _COMPRESSED:
            if magic.startswith(signature):
                # read as text it would be "not valid utf-8: set encoding", which misleads
                raise SourceError(
                    f"source {self.name!r}: {path} is {kind}-compressed: decompress it first "
                    "(CSV sources read plain text)",
                    source=self.name,
                    path=str(path),
                )
        try:
            with open(path, encoding=self._text_encoding(), newline="") as fh:
                head = fh.read(1 << 16)
                while head and not _has_complete_record(head, self.config.quote):
                    more = fh.read(1 << 16)
                    if not more:
                        break
                    head += more
        except UnicodeDecodeError as exc:
            raise self._encoding_error(unit, exc) from exc
        except OSError as exc:
            raise SourceError(
                f"source {self.name!r}: cannot open {path}: {exc.strerror or exc}",
                source=self.name,
                path=str(path),
            ) from exc
        # newline="": records end at \n, \r\n or a lone \r (old Mac and Excel "CSV (Macintosh)"
        # exports), as pyarrow reads them
        rows = csv.reader(
            io.StringIO(head, newline=""),
            delimiter=self.config.delimiter,
            quotechar=self.config.quote,
        )
        try:
            first = next(rows, None)
        except csv.Error as exc:
            raise SourceError(
                f"source {self.name!r}: malformed CSV header in {path}: {exc}",
                source=self.name,
                path=str(path),
            ) from None
        if not first:
            raise SourceError(
                f"source {self.name!r}: {path} is empty (no header line)",
                source=self.name,
                path=str(path),
            )
        if first[0].startswith("\ufeff") or first[0].startswith("\u00ef\u00bb\u00bf"):
            log.warning(
                "source %s: %s starts with a UTF-8 byte-order mark but encoding is %s",
                self.name,
                path,
                self.config.encoding,
            )
        return first

    def _translate(self, exc: BaseException, unit: InputUnit, n_fields: int) -> SourceError:
        """Turn a pyarrow/codec failure into a SourceError that says where and what to do."""
        if isinstance(exc, SourceError):
            return exc
        text = str(exc)
        if isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in text or "UTF8" in text:
            return self._encoding_error(unit, exc)
        if "CSV parse error" in text:
            problem = find_bad_record(
                Path(unit.uri),
                self._text_encoding(),
                self.config.delimiter,
                self.config.quote,
                expected_fields=n_fields,
            )
            where = f" at line {problem.line}: {problem.reason}" if problem else f": {text}"
            return SourceError(
                f"source {self.name!r}: malformed CSV in {unit.uri}{where}",
                source=self.name,
                path=unit.uri,
                line=problem.line if problem else None,
            )
        if isinstance(exc, OSError):
            return SourceError(
                f"source {self.name!r}: cannot read {unit.uri}: {exc}",
                source=self.name,
                path=unit.uri,
            )
        return SourceError(
            f"source {self.name!r}: cannot read {unit.uri}: {text}", source=self.name, path=unit.uri
        )

    def _encoding_error(self, unit: InputUnit, exc: BaseException) -> SourceError:
        problem = find_decode_error(Path(unit.uri), self._text_encoding())
        where = (
            f" at byte {problem.offset} (line {problem.line}, bytes {problem.bad_bytes.hex(' ')}: "
            f"{problem.reason})"
            if problem
            else f" ({exc})"
        )
        hint = (
            "set `encoding:` for this source (Windows exports are often cp1252)"
            if self._codec in _UTF8_NAMES
            else "check the `encoding:` key of this source (utf-8, cp1252, latin-1, utf-16 ...)"
        )
        return SourceError(
            f"source {self.name!r}: {unit.uri} is not valid {self.config.encoding}{where}; {hint}",
            source=self.name,
            path=unit.uri,
            encoding=self.config.encoding,
            offset=problem.offset if problem else None,
            line=problem.line if problem else None,
        )

    def _raise_if_unterminated(self, unit: InputUnit, n_fields: int) -> None:
        problem = find_bad_record(
            Path(unit.uri),
            self._text_encoding(),
            self.config.delimiter,
            self.config.quote,
            expected_fields=n_fields,
        )
        if problem is not None:
            raise SourceError(
                f"source {self.name!r}: malformed CSV in {unit.uri} at line {problem.line}: "
                f"{problem.reason}",
                source=self.name,
                path=unit.uri,
                line=problem.line,
            )


def _has_complete_record(text: str, quote: str) -> bool:
    """True once ``text`` holds a full first record (a line break outside quotes)."""
    for end in ("\n", "\r"):
        start = 0
        while (idx := text.find(end, start)) != -1:
            if text.count(quote, 0, idx) % 2 == 0:
                return True
            start = idx + 1
    return False
