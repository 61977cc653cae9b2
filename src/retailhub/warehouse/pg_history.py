"""A local mirror of a PostgreSQL warehouse's raw history, refreshed one run at a time.

Every run rebuilds the star schema from the accepted raw history (``raw.<dataset>``). On the
embedded warehouse that history is already inside the compute engine; on PostgreSQL it has
to come back over the wire — about 15 s for 10M rows, on every run, including an incremental
run that brings 1,000 new rows. The raw tables are partitioned by ``_run_id`` and a run's
partition never changes once attached, so a local DuckDB copy only needs what it lacks:

* the mirror's row count per run is compared with the warehouse's (one grouped count there);
* runs the warehouse no longer has, or whose count differs (a restore, a manual delete), are
  dropped; runs the mirror lacks are fetched; both in one local transaction, so a killed run
  leaves the mirror as it was;
* a table whose columns changed is fetched again whole.

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
_CATALOG = f"{ALIAS}.main._rh_mirrored_tables"

#: Reads the given runs of the table from the warehouse: an Arrow record batch reader.
FetchRuns = Callable[[list[str]], Any]


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
        warehouse_counts: Mapping[str, int],
        fetch: FetchRuns,
    ) -> str:
        """The mirror of ``table`` brought level with ``warehouse_counts`` (run -> rows)."""
        started = time.perf_counter()
        self._attach(con)
        local = f"{ALIAS}.main.{quote_ident(table.replace('.', '__'))}"
        signature = json.dumps(columns)
        con.execute("begin transaction")
        try:
            kept, dropped, missing = self._reconcile(
                con, table, local, signature, columns, warehouse_counts
            )
            fetched_rows = self._fetch(con, local, columns, missing, fetch) if missing else 0
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        done = Refresh(
            table, kept, len(missing), dropped, fetched_rows, time.perf_counter() - started
        )
        self.refreshes.append(done)
        log.info(
            "history of %s: %d run(s) kept in the local mirror, %d fetched (%s rows), "
            "%d dropped, in %.2fs",
            table,
            done.kept_runs,
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
            # Only a cache: a file this DuckDB cannot open (damaged, or written by a newer
            # version) is replaced, and the history fetched again.
            log.warning("history mirror %s unusable (%s); starting a new one", self.path, exc)
            for stale in (self.path, self.path.with_name(self.path.name + ".wal")):
                stale.unlink(missing_ok=True)
            con.execute(attach)
        con.execute(
            f"create table if not exists {_CATALOG} (table_name varchar primary key, "
            "columns varchar not null)"
        )
        self._attached = con

    def _reconcile(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        local: str,
        signature: str,
        columns: list[tuple[str, str]],
        warehouse_counts: Mapping[str, int],
    ) -> tuple[int, int, list[str]]:
        """Make the local table match the warehouse's columns and drop runs that differ;
        returns (runs kept, runs dropped, runs to fetch)."""
        known = con.execute(
            f"select columns from {_CATALOG} where table_name = ?", [table]
        ).fetchall()
        if not known or known[0][0] != signature:
            ddl = ", ".join(f"{quote_ident(n)} {duck_type_of(t)}" for n, t in columns)
            con.execute(f"create or replace table {local} ({ddl})")
            con.execute(f"insert or replace into {_CATALOG} values (?, ?)", [table, signature])
            return 0, 0, sorted(warehouse_counts)
        counts = dict(
            con.execute(f"select {RUN_COLUMN}, count(*) from {local} group by 1").fetchall()
        )
        stale = sorted(r for r, n in counts.items() if warehouse_counts.get(r) != n)
        if stale:
            con.execute(f"delete from {local} where {RUN_COLUMN} in (select unnest(?))", [stale])
        missing = sorted(r for r in warehouse_counts if r not in counts or r in stale)
        return len(counts) - len(stale), len(stale), missing

    @staticmethod
    def _fetch(
        con: duckdb.DuckDBPyConnection,
        local: str,
        columns: list[tuple[str, str]],
        runs: list[str],
        fetch: FetchRuns,
    ) -> int:
        reader = fetch(runs)
        src = f"rh_history_src_{id(reader)}"
        con.register(src, reader)
        try:
            inserted = con.execute(
                f"insert into {local} select {duck_select(columns)} from {src}"
            ).fetchall()
        finally:
            con.unregister(src)
        return int(inserted[0][0])
