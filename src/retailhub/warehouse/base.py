"""The warehouse adapter contract.

The pipeline computes every table in a local DuckDB *compute* connection (fast, embedded,
spills to disk) and hands the results to a warehouse adapter that publishes them
atomically. Each engine gets one adapter; the pipeline asks capability flags instead of
comparing engine names, so a new engine is a new adapter, not a new ``if``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

SCHEMAS = ("raw", "core", "marts", "quarantine", "meta")
#: Name prefix of a run's staging tables (``Warehouse.staging_table``): never published
#: content, whatever schema they sit in.
STAGE_PREFIX = "_rh_stage_"


def is_staging_table(name: str) -> bool:
    """Whether table ``name`` (bare or qualified) is a run's staging table."""
    return name.rsplit(".", 1)[-1].strip('"').startswith(STAGE_PREFIX)


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do; the pipeline branches on these, never on the engine's name."""

    transactional_ddl: bool
    concurrent_readers_during_publish: bool
    zero_copy_compute: bool  # warehouse tables are readable in the compute connection as-is
    advisory_locks: bool


@dataclass(frozen=True)
class StagedTable:
    """A table built in the warehouse's own storage under a staging name (see
    ``Warehouse.staging_table``), and constant columns to add when it is published."""

    table: str
    constants: dict[str, str] = field(default_factory=dict)


@dataclass
class PublishBatch:
    """Everything one run makes visible, applied in one transaction.

    ``replace`` maps a warehouse table (``core.fct_sales``) to the compute relation whose rows
    become its new content; ``append`` adds the relation's rows to the table (created if
    missing); ``rows`` appends small Python records (ledger tables); ``delete`` first removes
    from an existing table the rows of the given files (``(_source, _source_file)`` pairs:
    the earlier versions of corrected files); ``supersede`` removes from a ledger table the
    rows of the given sources before ``rows`` adds theirs (state only the newest row of a
    source is read from, such as ``meta.watermark_windows``, so it does not grow every run).
    """

    replace: dict[str, str] = field(default_factory=dict)
    append: dict[str, str] = field(default_factory=dict)
    delete: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    supersede: dict[str, list[str]] = field(default_factory=dict)
    # An ``append`` target that does not exist yet may instead take over this staged table
    # (from ``Warehouse.staging_table``) with constant columns added: no copy of the rows.
    adoptable: dict[str, StagedTable] = field(default_factory=dict)
    # Called after each table is written; tests inject failures here to prove atomicity.
    after_table: Callable[[str], None] | None = None


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class Warehouse(ABC):
    """A place where published tables live, plus the run ledger in its ``meta`` schema."""

    engine: str
    capabilities: Capabilities

    @property
    @abstractmethod
    def display_url(self) -> str:
        """The URL with any secret removed, safe for logs and the ledger."""

    @property
    @abstractmethod
    def compute(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection in which the pipeline builds tables."""

    @abstractmethod
    def init_schema(self) -> None:
        """Create schemas and ledger tables if missing (idempotent)."""

    @abstractmethod
    def table_exists(self, table: str) -> bool: ...

    @abstractmethod
    def history_relation(self, table: str) -> str | None:
        """A compute-side relation holding the warehouse table's rows, or None if absent."""

    def staging_table(self, target: str, run_id: str) -> str | None:
        """Where the compute connection may build the future content of ``target`` in the
        warehouse's own storage, invisible until published; None (the default) means build in
        the scratch database and copy at publish time.

        A warehouse that returns a name publishes such a table by renaming it (no second
        write of its rows) and drops the staged tables a run leaves unpublished.
        """
        return None

    @abstractmethod
    def publish(self, batch: PublishBatch) -> None:
        """Apply ``batch`` atomically: all of it becomes visible, or none of it."""

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement in its own transaction (ledger bookkeeping)."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        """Run a read query against the warehouse."""

    @abstractmethod
    def read_arrow(self, sql: str) -> pa.Table: ...

    @abstractmethod
    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def active_writer(self) -> str | None:
        """The run id of the run writing this warehouse now ("" when a writer holds it but
        does not say which run), or None when nobody writes it."""

    @abstractmethod
    def confine_to_warehouse(self) -> None:
        """From now on, SQL on this connection may not write: for users' ad-hoc SQL.

        DuckDB: no file or other database either. PostgreSQL: the server's own privileges
        decide what a login may reach beyond its tables (a superuser can read and write the
        server's files), so ad-hoc SQL belongs to the analyst or loader role."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sources_predicate(sources: list[str]) -> str:
    """SQL (both engines) true for the ledger rows of ``sources`` (its ``source`` column)."""
    return "source in (" + ", ".join(sql_literal(s) for s in sources) + ")"


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (both engines)."""
    return "'" + text.replace("'", "''") + "'"


def files_predicate(files: list[tuple[str, str]]) -> str:
    """SQL (both engines) true for the rows of ``files``, ``(_source, _source_file)`` pairs."""
    return " or ".join(
        f"(_source = {sql_literal(source)} and _source_file = {sql_literal(uri)})"
        for source, uri in files
    )
