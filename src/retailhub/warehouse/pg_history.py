"""A local mirror of a PostgreSQL warehouse's raw history, refreshed one run at a time.

Every run rebuilds the star schema from the accepted raw history (``raw.<dataset>``). On the
embedded warehouse that history is already inside the compute engine; on PostgreSQL it has
to come back over the wire — about 15 s for 10M rows, on every run, including an incremental
run that brings 1,000 new rows. The raw tables are partitioned by ``_run_id`` and a run's
partition never changes once attached, so a local DuckDB copy only needs what it lacks:

* per run, the warehouse's row count and newest row version (``max(xmin)``: an UPDATE or a
  restore writes new versions) are compared with what the mirror recorded when it fetched
  the run (one grouped query there, ~1.7 s for 10M rows);
* runs the warehouse no longer has or that changed (a restore, a manual delete or update)
  are dropped; runs the mirror lacks are fetched, and must arrive with the rows counted;
  all in one local transaction, so a killed run leaves the mirror as it was;
* a run that only lost whole files' rows (what a correction deletes: fewer rows, no newer
  row version, every remaining file's count unchanged) is trimmed locally instead of fetched
  again (a correction of one file of a 10M-row first run would otherwise fetch all of it);
* a table whose columns or type mapping changed is fetched again whole.

Whenever the mirror cannot be used — its file is locked by another process, rows without a
run id, a fetch that does not deliver what was counted — the run streams the whole table as
it did before the mirror existed; a mirror file DuckDB cannot open is replaced.

The file lives in ``<runner.work_dir>/history/<warehouse digest>.duckdb``. Deleting it is
always safe (the next run fetches everything), and a file DuckDB cannot open is replaced;
``warehouse.history_cache: false`` turns the mirror off. Only the run holding the
warehouse's writer lock reads history, so one process at a time uses a mirror.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from retailhub.warehouse.pg_types import duck_select, duck_type_of, quote_ident

log = logging.getLogger(__name__)

ALIAS = "rh_history"
RUN_COLUMN = "_run_id"
_RUNS = f"{ALIAS}.main._rh_mirrored_runs"
_TABLES = f"{ALIAS}.main._rh_mirrored_tables"

#: Reads the given runs of the table from the warehouse: an Arrow record batch reader.
FetchRuns = Callable[[list[str]], Any]
#: run id -> (rows, newest row version) in the warehouse.
RunVersions = Mapping[str, tuple[int, int]]
#: Reads the row count of every (run id, ``_source``, ``_source_file``) of the given runs.
FileCounts = Callable[[list[str]], Mapping[tuple[str, str, str], int]]
#: The columns that name a row's file, by which a correction deletes rows.
FILE_COLUMNS = ("_source", "_source_file")


class MirrorUnusable(Exception):
    """The mirror cannot serve this read; the caller streams the table instead."""


def mirror_path(directory: Path, host: str, port: int, dbname: str) -> Path:
    """One mirror file per warehouse database (the digest keeps host names out of paths)."""
    digest = hashlib.sha256(f"{host}:{port}/{dbname}".encode()).hexdigest()[:16]
    return directory / f"{digest}.duckdb"


@dataclass(frozen=True)
class Refresh:
    """What one refresh did (logged, and read by tests)."""

    table: str
    kept_runs: int
    fetched_runs: int
    dropped_runs: int
    fetched_rows: int
    seconds: float
    trimmed_runs: int = 0


class HistoryMirror:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.refreshes: list[Refresh] = []
        self._attached: duckdb.DuckDBPyConnection | None = None

    def relation(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        columns: list[tuple[str, str]],
        warehouse_runs: RunVersions,
        fetch: FetchRuns,
        file_counts: FileCounts | None = None,
    ) -> str:
        """The mirror of ``table`` brought level with ``warehouse_runs``; raises
        :class:`MirrorUnusable` when the caller should stream the table instead.
        ``file_counts`` lets runs that only lost whole files be trimmed, not fetched."""
        started = time.perf_counter()
        self._attach(con)
        local = f"{ALIAS}.main.{quote_ident(table.replace('.', '__'))}"
        signature = json.dumps([(n, t, duck_type_of(t)) for n, t in columns])
        con.execute("begin transaction")
        try:
            kept, dropped, missing, trimmed = self._reconcile(
                con, table, local, signature, columns, warehouse_runs, file_counts
            )
            fetched_rows = self._fetch(con, table, local, columns, missing, warehouse_runs, fetch)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        done = Refresh(
            table, kept, len(missing), dropped, fetched_rows, time.perf_counter() - started, trimmed
        )
        self.refreshes.append(done)
        log.info(
            "history of %s: %d run(s) kept in the local mirror (%d trimmed of deleted files), "
            "%d fetched (%s rows), %d dropped, in %.2fs",
            table,
            done.kept_runs,
            trimmed,
            done.fetched_runs,
            f"{fetched_rows:,}",
            dropped,
            done.seconds,
        )
        return local

    def _attach(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._attached is con:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        attach = f"attach '{str(self.path).replace(chr(39), chr(39) * 2)}' as {ALIAS}"
        try:
            con.execute(attach)
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                # Another process has it open: leave its file alone.
                raise MirrorUnusable(f"{self.path} is in use by another process") from None
            # Only a cache: a file this DuckDB cannot open (damaged, or written by a newer
            # version) is replaced, and the history fetched again.
            log.warning("history mirror %s unusable (%s); starting a new one", self.path, exc)
            for stale in (self.path, self.path.with_name(self.path.name + ".wal")):
                stale.unlink(missing_ok=True)
            try:
                con.execute(attach)
            except duckdb.Error as again:
                raise MirrorUnusable(f"cannot create {self.path}: {again}") from None
        con.execute(
            f"create table if not exists {_TABLES} (table_name varchar primary key, "
            "columns varchar not null)"
        )
        con.execute(
            f"create table if not exists {_RUNS} (table_name varchar, run_id varchar, "
            "rows bigint, version bigint, primary key (table_name, run_id))"
        )
        self._attached = con

    def _reconcile(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        local: str,
        signature: str,
        columns: list[tuple[str, str]],
        warehouse_runs: RunVersions,
        file_counts: FileCounts | None,
    ) -> tuple[int, int, list[str], int]:
        """Make the local table match the warehouse's columns and drop runs that differ;
        returns (runs kept, runs dropped, runs to fetch, runs trimmed)."""
        known = con.execute(
            f"select columns from {_TABLES} where table_name = ?", [table]
        ).fetchall()
        if not known or known[0][0] != signature:
            ddl = ", ".join(f"{quote_ident(n)} {duck_type_of(t)}" for n, t in columns)
            con.execute(f"create or replace table {local} ({ddl})")
            con.execute(f"delete from {_RUNS} where table_name = ?", [table])
            con.execute(f"insert or replace into {_TABLES} values (?, ?)", [table, signature])
            return 0, 0, sorted(warehouse_runs), 0
        counts = dict(
            con.execute(f"select {RUN_COLUMN}, count(*) from {local} group by 1").fetchall()
        )
        recorded = {
            run: (rows, version)
            for run, rows, version in con.execute(
                f"select run_id, rows, version from {_RUNS} where table_name = ?", [table]
            ).fetchall()
        }
        stale = sorted(
            run
            for run in set(counts) | set(recorded)
            if run not in warehouse_runs
            or recorded.get(run) != tuple(warehouse_runs[run])
            or counts.get(run) != warehouse_runs[run][0]
        )
        shrunk = [
            run
            for run in stale
            if run in warehouse_runs
            and run in recorded
            and counts.get(run) == recorded[run][0]
            and warehouse_runs[run][0] < recorded[run][0]
            and warehouse_runs[run][1] <= recorded[run][1]
        ]
        names = {name for name, _ in columns}
        trimmed: set[str] = set()
        if shrunk and file_counts is not None and names.issuperset(FILE_COLUMNS):
            trimmed = self._trim(con, table, local, shrunk, warehouse_runs, file_counts)
            stale = [run for run in stale if run not in trimmed]
        if stale:
            con.execute(f"delete from {local} where {RUN_COLUMN} in (select unnest(?))", [stale])
            con.execute(
                f"delete from {_RUNS} where table_name = ? and run_id in (select unnest(?))",
                [table, stale],
            )
        missing = sorted(r for r in warehouse_runs if r not in counts or r in stale)
        kept = len([r for r in counts if r not in stale])
        return kept, len(stale), missing, len(trimmed)

    @staticmethod
    def _trim(
        con: duckdb.DuckDBPyConnection,
        table: str,
        local: str,
        runs: list[str],
        warehouse_runs: RunVersions,
        file_counts: FileCounts,
    ) -> set[str]:
        """Delete locally the files the warehouse deleted from ``runs``; returns the runs
        that are level again. A run qualifies when every file the warehouse still has keeps
        its local row count and the files it lacks are gone whole (a correction's delete);
        anything else (part of a file deleted) leaves the run to be fetched again."""
        remote = file_counts(runs)
        local_counts = con.execute(
            f"select {RUN_COLUMN}, _source, _source_file, count(*) from {local} "
            f"where {RUN_COLUMN} in (select unnest(?)) group by all",
            [runs],
        ).fetchall()
        trimmed: set[str] = set()
        for run in runs:
            mine = {(s, f): n for r, s, f, n in local_counts if r == run}
            theirs = {(s, f): n for (r, s, f), n in remote.items() if r == run}
            gone = [key for key in mine if key not in theirs]
            if any(mine.get(key) != n for key, n in theirs.items()) or any(
                s is None or f is None for s, f in gone
            ):
                continue
            for source, file in gone:
                con.execute(
                    f"delete from {local} where {RUN_COLUMN} = ? and _source = ? "
                    "and _source_file = ?",
                    [run, source, file],
                )
            rows, version = warehouse_runs[run]
            con.execute(
                f"update {_RUNS} set rows = ?, version = ? where table_name = ? and run_id = ?",
                [rows, version, table, run],
            )
            trimmed.add(run)
        return trimmed

    @staticmethod
    def _fetch(
        con: duckdb.DuckDBPyConnection,
        table: str,
        local: str,
        columns: list[tuple[str, str]],
        runs: list[str],
        warehouse_runs: RunVersions,
        fetch: FetchRuns,
    ) -> int:
        if not runs:
            return 0
        reader = fetch(runs)
        src = f"rh_history_src_{id(reader)}"
        con.register(src, reader)
        try:
            inserted = con.execute(
                f"insert into {local} select {duck_select(columns)} from {src}"
            ).fetchall()
        finally:
            con.unregister(src)
        rows = int(inserted[0][0])
        expected = sum(warehouse_runs[r][0] for r in runs)
        if rows != expected:
            # Written to between the count and the fetch: this read streams instead.
            raise MirrorUnusable(f"{table}: fetched {rows} rows of the {expected} counted")
        con.executemany(
            f"insert or replace into {_RUNS} values (?, ?, ?, ?)",
            [[table, r, *warehouse_runs[r]] for r in runs],
        )
        return rows
