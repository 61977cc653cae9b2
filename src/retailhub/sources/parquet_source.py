"""Parquet files, streamed row group by row group with the types stored in the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from retailhub.config.sources import ParquetSourceConfig
from retailhub.errors import SourceError
from retailhub.sources.base import InputUnit, SourceState
from retailhub.sources.files import discover_files, open_unit_file

BATCH_ROWS = 65_536


class ParquetSource:
    """Reads the Parquet files matched by ``path``; columns keep their Parquet types."""

    def __init__(self, config: ParquetSourceConfig, project_dir: Path) -> None:
        self.config = config
        self.project_dir = project_dir

    @property
    def name(self) -> str:
        return self.config.name

    def discover(self, state: SourceState) -> list[InputUnit]:
        return discover_files(self.config.path, self.project_dir, self.name, state)

    def new_watermark(self) -> str | None:
        return None

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
