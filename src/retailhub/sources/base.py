"""The runtime contract every source implements, whatever it reads.

The pipeline asks a source for the *new* input units (``discover``), then streams each unit as
Arrow record batches (``open``) into the landing table. Keeping every reader behind this one
protocol is what lets the landing, quality and ledger code stay ignorant of files, APIs and
databases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from retailhub.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from retailhub.config.sources import SourceConfig


@dataclass(frozen=True)
class StoredWindow:
    """What the ledger keeps with a watermark (see :mod:`retailhub.sources.watermark`): the
    lowest watermark value the window covers and one fingerprint per row read in it
    (repeated for identical rows)."""

    start: str | None  # None: a window stored before windows recorded their start
    fingerprints: tuple[str, ...]


@dataclass(frozen=True)
class InputUnit:
    """One thing to ingest: a file, one extraction from an API, or one database extraction."""

    source: str
    uri: str  # absolute file path / URL / 'mysql://user@host:port/db#table' (never a secret)
    checksum: str | None  # sha256 hex of the file bytes; None for API and database units
    bytes: int | None
    modified_at: datetime | None  # file mtime (UTC)
    watermark_from: str | None = None  # database: the stored watermark this unit reads from
    #: The name the ledger and ``_source_file`` record, when it is not ``uri``: a file's real
    #: path relative to the project when its source's pattern is relative, so a project moved
    #: or cloned elsewhere still knows its files (see ``files.match_files``).
    key: str | None = None
    #: For a file ingested before whose bytes changed: the name its earlier version was
    #: recorded under (its rows are the ones a correction replaces).
    replaces: str | None = None
    #: database/API: the stored watermark's window (its rows are read again and dropped);
    #: None when the watermark was stored without one (then read strictly above it)
    watermark_window: StoredWindow | None = field(default=None, repr=False)

    @property
    def recorded_as(self) -> str:
        """The unit's name in the ledger and in the rows' ``_source_file``."""
        return self.key or self.uri


@dataclass
class SourceState:
    """What the run ledger remembers about a source from earlier runs."""

    ingested_checksums: set[str] = field(default_factory=set)
    last_watermark: str | None = None
    # the unit that stored last_watermark (None: not known): a watermark belongs to one
    # relation and column, and means nothing for another
    watermark_uri: str | None = None
    # the stored watermark's window (see sources.watermark)
    watermark_window: StoredWindow | None = None
    # recorded name -> checksum of the version of that file ingested last: a file whose bytes differ
    # from it is a changed file, even if those bytes were ingested once before (a revert)
    latest_checksums: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """A configured reader. ``open`` streams; errors surface during ``open`` or iteration."""

    @property
    def config(self) -> SourceConfig: ...

    @property
    def name(self) -> str: ...

    def discover(self, state: SourceState) -> list[InputUnit]:
        """Only the units not ingested yet (a file with an already seen checksum is skipped)."""
        ...

    def open(self, unit: InputUnit) -> pa.RecordBatchReader:
        """Stream the unit's rows with the source's own column names."""
        ...

    def new_watermark(self) -> str | None:
        """After ``open`` was drained: the highest watermark seen (database sources only)."""
        ...

    def read_checksum(self) -> str | None:
        """After ``open`` was drained: a checksum of what was read, for a unit that has none
        before it is read (an API's answer; a file's is taken at discovery)."""
        ...

    def watermark_window(self) -> StoredWindow | None:
        """After ``open`` was drained: the new watermark's window, to store with it (database
        and incremental API sources; see :mod:`retailhub.sources.watermark`)."""
        ...


def build_source(cfg: SourceConfig, project_dir: Path) -> Source:
    """Instantiate the reader for ``cfg``; drivers (httpx, pymysql, adbc) load lazily."""
    from retailhub.config.sources import (
        CsvSourceConfig,
        DatabaseSourceConfig,
        HttpSourceConfig,
        JsonSourceConfig,
        ParquetSourceConfig,
    )

    if not cfg.name:
        raise ConfigError("a source config needs a name (the key under sources:)", key="sources")
    if isinstance(cfg, CsvSourceConfig):
        from retailhub.sources.csv_source import CsvSource

        return CsvSource(cfg, project_dir)
    if isinstance(cfg, ParquetSourceConfig):
        from retailhub.sources.parquet_source import ParquetSource

        return ParquetSource(cfg, project_dir)
    if isinstance(cfg, JsonSourceConfig):
        from retailhub.sources.json_source import JsonSource

        return JsonSource(cfg, project_dir)
    if isinstance(cfg, HttpSourceConfig):
        from retailhub.sources.http_source import HttpSource

        return HttpSource(cfg)
    if isinstance(cfg, DatabaseSourceConfig):
        from retailhub.sources.database import DatabaseSource

        return DatabaseSource(cfg)
    raise ConfigError(
        f"source {cfg.name!r}: unknown type {getattr(cfg, 'type', '?')!r}",
        key=f"sources.{cfg.name}.type",
    )
