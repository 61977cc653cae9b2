"""Embedded DuckDB warehouse: the default, zero set-up.

The warehouse file is opened as the connection's main database and the run's scratch
database (``work``) is attached beside it, so building tables never touches published
state and publishing is one DuckDB transaction copying from ``work`` into the warehouse.
DuckDB's file lock serialises concurrent runs: the second one gets a clear message.

The big tables (the accepted batch that becomes raw history, the core star schema) are built
in the warehouse file itself under staging names (``core._rh_stage_<run>__fct_sales``) and
published by renaming them in the publishing transaction: writing 10M rows costs seconds,
renaming a table costs nothing. Until that commit they are invisible under the published
names; the run that publishes drops every staging table left by runs that never will.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from retailhub.errors import UsageError, WarehouseError, WarehouseUnavailable
from retailhub.warehouse.base import (
    SCHEMAS,
    STAGE_PREFIX,
    Capabilities,
    PublishBatch,
    QueryResult,
    StagedTable,
    Warehouse,
    files_predicate,
    is_staging_table,
    sources_predicate,
)
from retailhub.warehouse.ledger_schema import create_statements

log = logging.getLogger(__name__)

WORK = "work"


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"
    capabilities = Capabilities(
        transactional_ddl=True,
        concurrent_readers_during_publish=False,
        zero_copy_compute=True,
        advisory_locks=False,
    )

    def __init__(
        self,
        path: Path | None,
        *,
        work_db: Path | None = None,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._ad_hoc = False  # confine_to_warehouse(): a person's SQL, one statement
        target = ":memory:" if path is None else str(path)
        if path is not None and not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        if read_only and path is not None and not path.exists():
            raise WarehouseUnavailable(
                f"warehouse file {path} does not exist yet: run 'retailhub run' first",
                path=str(path),
            )
        if path is not None and not _is_duckdb_file(path):
            raise WarehouseError(
                f"warehouse file {path} is not a DuckDB database (key 'warehouse.url' names "
                "another kind of file); nothing was changed",
                path=str(path),
            )
        config: dict[str, Any] = {}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        try:
            self._con = duckdb.connect(target, read_only=read_only, config=config)
        except duckdb.IOException as exc:
            raise WarehouseUnavailable(_lock_message(target, exc), path=target) from None
        except duckdb.Error as exc:
            raise WarehouseUnavailable(
                f"cannot open warehouse {target}: {exc}", path=target
            ) from None
        # DuckDB's own progress bar writes to stdout; progress is the console's job.
        self._con.execute("set enable_progress_bar = false")
        if not read_only:
            work = ":memory:" if work_db is None else str(work_db)
            if work_db is not None:
                work_db.parent.mkdir(parents=True, exist_ok=True)
                self._con.execute(f"set temp_directory = '{work_db.parent / 'spill'}'")
            self._con.execute(f"attach '{work}' as {WORK}")

    # -- identity -------------------------------------------------------------------------
    @property
    def display_url(self) -> str:
        return f"duckdb:///{self.path}" if self.path else "duckdb:///:memory:"

    @property
    def compute(self) -> duckdb.DuckDBPyConnection:
        return self._con

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con

    # -- schema ---------------------------------------------------------------------------
    def init_schema(self) -> None:
        with self._damage_named():
            for schema in SCHEMAS:
                self._con.execute(f"create schema if not exists {schema}")
            for stmt in create_statements():
                self._con.execute(stmt)

    def table_exists(self, table: str) -> bool:
        schema, name = table.split(".", 1)
        row = self._con.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()
        return bool(row[0][0])

    def history_relation(self, table: str) -> str | None:
        # Catalog-qualified: views built in the attached ``work`` database would otherwise
        # resolve ``raw.x`` inside ``work`` instead of the warehouse.
        if not self.table_exists(table):
            return None
        catalog = self._con.execute("select current_database()").fetchall()[0][0]
        return f'"{catalog}".{table}'

    # -- publishing -----------------------------------------------------------------------
    def staging_table(self, target: str, run_id: str) -> str | None:
        if self.read_only:
            return None
        schema, name = target.split(".", 1)
        run = re.sub(r"[^a-z0-9]", "_", run_id.lower())
        return f"{schema}.{STAGE_PREFIX}{run}__{name}"

    def publish(self, batch: PublishBatch) -> None:
        con = self._con
        con.execute("begin transaction")
        try:
            for target, files in batch.delete.items():
                if files and self.table_exists(target):
                    con.execute(f"delete from {target} where {files_predicate(files)}")
            for target, rel in batch.append.items():
                staged = batch.adoptable.get(target)
                if staged is not None and not self.table_exists(target):
                    self._adopt(staged, target)
                else:
                    con.execute(
                        f"create table if not exists {target} as select * from {rel} limit 0"
                    )
                    con.execute(f"insert into {target} by name select * from {rel}")
                _after(batch, target)
            for target, sources in batch.supersede.items():
                if sources and self.table_exists(target):
                    con.execute(f"delete from {target} where {sources_predicate(sources)}")
            for target, records in batch.rows.items():
                self._insert(target, records)
                _after(batch, target)
            for target, rel in batch.replace.items():
                if _BARE_TABLE.fullmatch(rel) and is_staging_table(rel):
                    con.execute(f"drop table if exists {target}")
                    self._adopt(StagedTable(rel), target)
                else:
                    con.execute(f"create or replace table {target} as select * from {rel}")
                _after(batch, target)
            for leftover in self._staged_tables():
                con.execute(f"drop table {leftover}")
            con.execute("commit")
        except BaseException as exc:
            con.execute("rollback")
            if isinstance(exc, duckdb.Error):
                raise WarehouseError(
                    f"publish to {self.display_url} failed and was rolled back: {exc}"
                ) from exc
            raise

    def _adopt(self, staged: StagedTable, target: str) -> None:
        """Publish a staged table under ``target``'s name (which must be free): a rename."""
        for column, value in staged.constants.items():
            literal = "'" + value.replace("'", "''") + "'"
            self._con.execute(
                f"alter table {staged.table} add column {column} varchar default {literal}"
            )
            self._con.execute(f"alter table {staged.table} alter column {column} drop default")
        self._con.execute(f"alter table {staged.table} rename to {target.split('.', 1)[1]}")

    def _staged_tables(self) -> list[str]:
        """Every staging table in the warehouse file (this run's unpublished ones included)."""
        rows = self._con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() and starts_with(table_name, ?)",
            [STAGE_PREFIX],
        ).fetchall()
        return [f"{schema}.{name}" for schema, name in rows]

    # -- plain access ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _damage_named(self) -> Iterator[None]:
        """Re-raise a failure of the file itself (damaged, unreadable) as a WarehouseError
        that names the file and the way back; errors of the statement pass unchanged."""
        try:
            yield
        except duckdb.Error as exc:
            if not is_engine_failure(exc):
                raise
            raise WarehouseError(
                f"warehouse {self.path or ':memory:'} failed: {exc}"
                + (DAMAGED_HINT if "corrupt" in str(exc).lower() else ""),
                path=str(self.path),
            ) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._damage_named():
            self._con.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        if self._ad_hoc:
            self._require_one_statement(sql)
        with self._damage_named():
            cur = self._con.cursor()
            try:
                cur.execute(sql, list(params))
                columns = [d[0] for d in cur.description or []]
                return QueryResult(columns=columns, rows=cur.fetchall())
            finally:
                cur.close()

    def read_arrow(self, sql: str) -> pa.Table:
        with self._damage_named():
            return self._con.sql(sql).to_arrow_table()

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        with self._damage_named():
            self._insert(table, rows)

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        data = pa.Table.from_pylist(rows)  # noqa: F841 - scanned by name below
        self._con.execute(f"insert into {table} by name select * from data")

    def active_writer(self) -> str | None:
        # DuckDB lets no other process open a file that a process writes, not even to read
        # it: if this connection reads, nobody writes; if it writes, it is the writer.
        return None if self.read_only else ""

    def confine_to_warehouse(self) -> None:
        # A read-only connection still writes files: COPY ... TO 'retailhub.yaml' replaced
        # the project file. Once off, external access cannot be turned back on by the SQL.
        self._con.execute("set enable_external_access = false")
        self._ad_hoc = True

    def _require_one_statement(self, sql: str) -> None:
        """DuckDB runs every statement of a string and returns the last result, so the first
        ones' results would vanish unseen (PostgreSQL refuses such a string outright)."""
        try:
            count = len(self._con.extract_statements(sql))
        except duckdb.Error:
            return  # not parseable: executing it reports the syntax error
        if count > 1:
            raise UsageError(
                f"one SQL statement at a time, please: got {count} (only the last one's result "
                "would be shown); run them one by one"
            )

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):  # closing twice
            self._con.close()


# ``schema.table`` and nothing else (a replace relation may also be a whole SELECT).
_BARE_TABLE = re.compile(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*")


def _after(batch: PublishBatch, target: str) -> None:
    if batch.after_table is not None:
        batch.after_table(target)


#: Appended to a DuckDB "Corrupt database file" error.
DAMAGED_HINT = " (the file is damaged: restore a backup with 'retailhub restore')"


def is_engine_failure(exc: BaseException) -> bool:
    """Whether a DuckDB error is the warehouse's (a damaged file, no memory, a failed read)
    rather than the statement's (syntax, an unknown table, a write refused)."""
    engine = (
        duckdb.IOException,
        duckdb.InternalException,
        duckdb.FatalException,
        duckdb.OutOfMemoryException,
        duckdb.SerializationException,
    )
    return isinstance(exc, engine) or "corrupt" in str(exc).lower()


def _lock_message(target: str, exc: Exception) -> str:
    text = str(exc)
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        holder = f" (process {pid.group(1)})" if pid else ""
        return (
            f"warehouse {target} is in use by another retailhub run or reader{holder}; "
            "wait for it to finish and retry"
        )
    return f"cannot open warehouse {target}: {text}"


def _is_duckdb_file(path: Path) -> bool:
    """True unless ``path`` holds bytes that are not a DuckDB database: a file DuckDB 2.0
    cannot read as one it may open as something else (a .json file as an in-memory database)
    and answer as if it were the warehouse."""
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
    except (FileNotFoundError, IsADirectoryError):
        return True  # created (or refused with its own message) by DuckDB
    except OSError:
        return True
    return len(head) == 0 or head[8:12] == b"DUCK"
