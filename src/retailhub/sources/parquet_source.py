"""Parquet files, streamed row group by row group with the types stored in the file."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from retailhub.config.sources import ParquetSourceConfig
from retailhub.errors import SourceError
from retailhub.sources.base import InputUnit
from retailhub.sources.files import FileSource, open_unit_file

BATCH_ROWS = 65_536


class ParquetSource(FileSource[ParquetSourceConfig]):
    """Reads the Parquet files matched by ``path``; columns keep their Parquet types."""

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        handle = open_unit_file(unit)
        try:
            parquet = pq.ParquetFile(handle)
        except Exception as exc:
            handle.close()
            raise self._error(unit, exc) from exc

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from parquet.iter_batches(batch_size=BATCH_ROWS)
            except Exception as exc:
                raise self._error(unit, exc) from exc
            finally:
                handle.close()

        return pa.RecordBatchReader.from_batches(parquet.schema_arrow, batches())

    def _error(self, unit: InputUnit, exc: Exception) -> SourceError:
        return SourceError(
            f"source {self.name!r}: cannot read Parquet file {unit.uri}: {exc}",
            source=self.name,
            path=unit.uri,
        )
