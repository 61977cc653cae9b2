"""PostgreSQL warehouse: tables built in DuckDB, published by bulk COPY and an atomic swap.

The compute side is the same as for the embedded warehouse: an in-memory DuckDB connection
with the run's scratch database attached as ``work``, so every step's SQL is unchanged. What
differs is the edge:

* **reading history** — ``history_relation('raw.x')`` streams the PostgreSQL table through
  ADBC (Arrow) into ``work.hist.raw__x``, casting back to the original DuckDB types;
* **publishing** — :mod:`retailhub.warehouse.pg_publish`: load everything into a staging
  schema with parallel binary COPY, build keys there, then one short transaction swaps it in,
  so a crash (even SIGKILL) at any point leaves the previous state, readable throughout;
* **one writer at a time** — a writing session holds a PostgreSQL advisory lock for its whole
  life; a second run fails at once with a message naming the run that holds it.

The ledger (``meta.*``) is reached through psycopg with ``?`` placeholders translated to
psycopg's ``%s``, so :mod:`retailhub.warehouse.ledger` stays engine-neutral.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from retailhub.errors import WarehouseAccessDenied, WarehouseError, WarehouseUnavailable
from retailhub.warehouse.base import SCHEMAS, Capabilities, PublishBatch, QueryResult, Warehouse
from retailhub.warehouse.keys import TableKeys
from retailhub.warehouse.ledger_schema import LEDGER_INDEXES, LEDGER_TABLES, index_statements
from retailhub.warehouse.pg_conn import PgTarget
from retailhub.warehouse.pg_history import (
    RUN_COLUMN,
    HistoryMirror,
    MirrorUnusable,
    mirror_path,
)
from retailhub.warehouse.pg_types import duck_select, qualified, quote_ident, read_select

if TYPE_CHECKING:
    import psycopg

    from retailhub.config.settings import WarehouseConfig
    from retailhub.warehouse.pg_roles import InitReport, RoleNames

log = logging.getLogger(__name__)

INSUFFICIENT_PRIVILEGE = "42501"
ROLE_HINT = (
    "of the roles 'retailhub warehouse init' creates, the loader reads and writes raw, core, "
    "marts, quarantine and the ledger (meta); the analyst reads core and marts only"
)

WORK = "work"
HIST_SCHEMA = "hist"
STAGING_SCHEMA = "rh_staging"
# Advisory lock keys (two int4: a namespace for retailhub and the purpose).
LOCK_NAMESPACE = 0x5248  # "RH"
LOCK_WRITER = 1
LOCK_INIT = 2


class PostgresWarehouse(Warehouse):
    engine = "postgres"
    capabilities = Capabilities(
        transactional_ddl=True,
        concurrent_readers_during_publish=True,
        zero_copy_compute=False,
        advisory_locks=True,
    )

    def __init__(
        self,
        cfg: WarehouseConfig | None = None,
        *,
        target: PgTarget | None = None,
        work_db: Path | None = None,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
        load_workers: int = 2,
        lock_wait_s: float = 0.0,
        label: str | None = None,
        history_dir: Path | None = None,
    ) -> None:
        if target is None:
            if cfg is None:
                raise ValueError("PostgresWarehouse needs a WarehouseConfig or a PgTarget")
            target = PgTarget.from_config(cfg)
        self.target = target
        self.read_only = read_only
        # Where the raw history is mirrored between runs (None: streamed back every run).
        self.history_mirror = (
            HistoryMirror(mirror_path(history_dir, target.host, target.port, target.dbname))
            if history_dir is not None and not read_only
            else None
        )
        self.load_workers = load_workers
        self.label = label or (work_db.stem if work_db is not None else None)
        self._work_db = work_db
        self._memory_limit = memory_limit
        self._threads = threads
        self._compute: duckdb.DuckDBPyConnection | None = None
        self._adbc: Any = None
        self._keys: dict[str, TableKeys] = {}
        self._history: dict[str, str] = {}
        self._columns_cache: dict[str, list[tuple[str, str]]] = {}
        app = f"retailhub {'reader' if read_only else 'writer'}" + (
            f" {self.label}" if self.label else ""
        )
        self.application_name = app
        self._conn = target.connect(autocommit=True, application_name=app)
        try:
            if read_only:
                self._conn.execute("set default_transaction_read_only = on")
            else:
                self._acquire_writer_lock(lock_wait_s)
        except BaseException:
            self._conn.close()
            raise

    # -- identity --------------------------------------------------------------------------------
    @property
    def display_url(self) -> str:
        return self.target.display_url

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The psycopg session (autocommit) of this adapter: ledger, DDL, the swap."""
        return self._conn

    @property
    def compute(self) -> duckdb.DuckDBPyConnection:
        if self._compute is None:
            self._compute = self._open_compute()
        return self._compute

    @property
    def compute_memory_limit(self) -> str | None:
        """The compute connection's configured DuckDB memory limit (None: DuckDB's default)."""
        return self._memory_limit

    def _open_compute(self) -> duckdb.DuckDBPyConnection:
        config: dict[str, Any] = {}
        if self._memory_limit:
            config["memory_limit"] = self._memory_limit
        if self._threads:
            config["threads"] = self._threads
        con = duckdb.connect(":memory:", config=config)
        work = ":memory:" if self._work_db is None else str(self._work_db)
        if self._work_db is not None:
            self._work_db.parent.mkdir(parents=True, exist_ok=True)
            spill = str(self._work_db.parent / "spill").replace("'", "''")
            con.execute(f"set temp_directory = '{spill}'")
        con.execute(f"attach '{work.replace(chr(39), chr(39) * 2)}' as {WORK}")
        return con

    # -- locking ---------------------------------------------------------------------------------
    def _acquire_writer_lock(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            row = self._conn.execute(
                "select pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_WRITER)
            ).fetchone()
            if row and row[0]:
                return
            if time.monotonic() >= deadline:
                raise WarehouseUnavailable(self._lock_message(), host=self.target.host)
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))

    def _writer_lock_holder(self) -> tuple[Any, ...] | None:
        """(pid, application_name, role, client address, backend start) of the session that
        holds this database's writer lock, or None."""
        return self._conn.execute(
            "select a.pid, a.application_name, a.usename, a.client_addr::text, a.backend_start "
            "from pg_locks l left join pg_stat_activity a on a.pid = l.pid "
            "where l.locktype = 'advisory' and l.classid = %s and l.objid = %s "
            "and l.granted and l.database = "
            "(select oid from pg_database where datname = current_database())",
            (LOCK_NAMESPACE, LOCK_WRITER),
        ).fetchone()

    def _lock_message(self) -> str:
        holder = self._writer_lock_holder()
        who = "another retailhub run"
        if holder:
            pid, app, user, addr, since = holder
            run = (app or "").removeprefix("retailhub writer").strip()
            who = f"run {run}" if run else f"'{app or 'unknown application'}'"
            details = [f"server pid {pid}"]
            if user:
                details.append(f"role {user}")
            if addr:
                details.append(f"from {addr}")
            if since:
                details.append(f"since {since:%Y-%m-%d %H:%M:%S}")
            who += f" ({', '.join(details)})"
        return (
            f"warehouse {self.display_url} is being written by {who}; runs against one "
            "warehouse are serialised: wait for it to finish and retry"
        )

    # -- schema ----------------------------------------------------------------------------------
    def init_schema(self) -> None:
        """Create missing schemas and ledger tables (idempotent, safe for concurrent runs).

        Existing objects are detected first, so a loader role without CREATE on the database
        can start runs on a warehouse that ``retailhub warehouse init`` prepared.
        """
        from retailhub.warehouse import audit

        try:
            existing = self._existing_schemas()
            missing_schemas = [s for s in (*SCHEMAS, STAGING_SCHEMA) if s not in existing]
            missing_tables = [t for t in LEDGER_TABLES if not self.table_exists(t)]
            if not self.table_exists(audit.AUDIT_TABLE):
                missing_tables.append(audit.AUDIT_TABLE)
        except WarehouseError as exc:
            if exc.context.get("sqlstate") != INSUFFICIENT_PRIVILEGE:
                raise
            # e.g. the analyst role, or a loader whose grants were revoked
            raise WarehouseAccessDenied(
                f"role {self.target.user} may not use the warehouse's schemas: runs need the "
                "loader role that 'retailhub warehouse init' creates (or the schemas' owner); "
                f"{exc.message.replace(f' ({ROLE_HINT})', '')}",
                host=self.target.host,
                sqlstate=INSUFFICIENT_PRIVILEGE,
            ) from None
        if not missing_schemas and not missing_tables:
            self._add_missing_ledger_indexes()
            return
        try:
            with self._conn.transaction():
                self._conn.execute(
                    "select pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_INIT)
                )
                for schema in missing_schemas:
                    self._conn.execute(f"create schema if not exists {quote_ident(schema)}")
                for table in missing_tables:
                    if table == audit.AUDIT_TABLE:
                        ddl = audit.create_statement("postgres")
                    else:
                        ddl = f"create table if not exists {table} ({LEDGER_TABLES[table].strip()})"
                    self._conn.execute(ddl)
                for statement in index_statements():
                    self._conn.execute(statement)
        except Exception as exc:
            raise self._error(
                "cannot create the warehouse schemas (an administrator runs "
                "'retailhub warehouse init' once; runs then need no CREATE on the database)",
                exc,
            ) from None

    def _add_missing_ledger_indexes(self) -> None:
        """Index a ledger created before its indexes existed (by its owner only).

        The loader of a warehouse that ``retailhub warehouse init`` prepared does not own the
        audit log, so it may not index it: the run goes on, and says who can.
        """
        import psycopg

        rows = self._conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'meta' and c.relkind = 'i'"
        ).fetchall()
        missing = sorted(set(LEDGER_INDEXES) - {r[0] for r in rows})
        denied = []
        for name, statement in zip(missing, index_statements(missing), strict=True):
            try:
                with self._conn.transaction():
                    self._conn.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                denied.append(name)
        if denied:
            log.warning(
                "ledger indexes %s are missing and this role may not create them: "
                "'retailhub warehouse init' (as an administrator) adds them",
                ", ".join(denied),
            )

    def _existing_schemas(self) -> set[str]:
        rows = self._conn.execute("select nspname from pg_namespace").fetchall()
        return {r[0] for r in rows}

    def table_exists(self, table: str) -> bool:
        try:
            row = self._conn.execute("select to_regclass(%s) is not null", (qualified(table),))
        except Exception as exc:  # no USAGE on the schema: "permission denied for schema"
            raise self._error(f"role {self.target.user} cannot look up {table}", exc) from None
        result = row.fetchone()
        return bool(result and result[0])

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, PostgreSQL type) of ``table`` in order; [] if it does not exist."""
        rows = self._conn.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
            "where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped "
            "order by a.attnum",
            (qualified(table),),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    # -- keys ------------------------------------------------------------------------------------
    def declare_keys(self, keys: Mapping[str, TableKeys]) -> None:
        """Primary keys, foreign keys and indexes to build on the tables the next publish
        replaces (from the model sidecars)."""
        self._keys = dict(keys)

    @property
    def keys(self) -> dict[str, TableKeys]:
        return self._keys

    # -- administration --------------------------------------------------------------------------
    def init_roles(self, roles: RoleNames) -> InitReport:
        """Create the loader and analyst roles and their grants (needs an admin connection)."""
        from retailhub.warehouse.pg_roles import init_warehouse

        return init_warehouse(self._conn, roles, run_id=self.label)

    # -- history ---------------------------------------------------------------------------------
    def history_relation(self, table: str) -> str | None:
        """A compute-side copy of ``table`` (once per publish): the local mirror, brought up
        to date run by run, for raw history partitioned by run; else a stream of all of it
        into ``work.hist``."""
        if table in self._history:
            return self._history[table]
        columns = self.columns(table)
        if not columns:
            return None
        if self.history_mirror is not None and RUN_COLUMN in {name for name, _ in columns}:
            try:
                rel = self._mirrored(table, columns)
            except MirrorUnusable as why:
                log.warning("history of %s: streamed whole (local mirror unusable: %s)", table, why)
            else:
                self._history[table] = rel
                return rel
        rel = f"{WORK}.{HIST_SCHEMA}.{quote_ident(table.replace('.', '__'))}"
        con = self.compute
        con.execute(f"create schema if not exists {WORK}.{HIST_SCHEMA}")
        sql = f"select {read_select(columns)} from {qualified(table)}"
        started = time.perf_counter()
        cur = self._adbc_conn().cursor()
        try:
            cur.execute(sql)
            reader = cur.fetch_record_batch()
            src = f"rh_hist_src_{id(reader)}"
            con.register(src, reader)
            try:
                con.execute(
                    f"create or replace table {rel} as select {duck_select(columns)} from {src}"
                )
            finally:
                con.unregister(src)
        except Exception as exc:
            raise self._error(f"cannot read {table} from the warehouse", exc) from None
        finally:
            cur.close()
        log.debug("copied %s into %s in %.2fs", table, rel, time.perf_counter() - started)
        self._history[table] = rel
        return rel

    def _mirrored(self, table: str, columns: list[tuple[str, str]]) -> str:
        assert self.history_mirror is not None
        run = quote_ident(RUN_COLUMN)
        try:
            rows = self._conn.execute(
                f"select {run}, count(*), max(xmin::text::bigint) from {qualified(table)} "
                "group by 1"
            ).fetchall()
        except Exception as exc:
            raise self._error(f"cannot count the runs of {table} in the warehouse", exc) from None
        if any(r[0] is None for r in rows):
            raise MirrorUnusable(f"{table} has rows without a {RUN_COLUMN}")
        versions = {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

        cursors: list[Any] = []

        def fetch(runs: list[str]) -> Any:
            cursors.append(cur := self._adbc_conn().cursor())
            wanted = ", ".join("'" + r.replace("'", "''") + "'" for r in runs)
            cur.execute(
                f"select {read_select(columns)} from {qualified(table)} where {run} in ({wanted})"
            )
            return cur.fetch_record_batch()

        def file_counts(runs: list[str]) -> dict[tuple[str, str, str], int]:
            counted = self._conn.execute(
                f"select {run}, _source, _source_file, count(*) from {qualified(table)} "
                f"where {run} = any(%s) group by 1, 2, 3",
                (list(runs),),
            ).fetchall()
            return {(str(r), s, f): int(n) for r, s, f, n in counted}

        try:
            return self.history_mirror.relation(
                self.compute, table, columns, versions, fetch, file_counts
            )
        except (WarehouseError, MirrorUnusable):
            raise
        except Exception as exc:
            raise self._error(f"cannot read {table} from the warehouse", exc) from None
        finally:
            for cur in cursors:
                cur.close()

    def _adbc_conn(self) -> Any:
        if self._adbc is None:
            self._adbc = self.target.connect_adbc(application_name=self.application_name)
            if self.read_only:
                cur = self._adbc.cursor()
                try:
                    cur.execute("set default_transaction_read_only = on")
                finally:
                    cur.close()
        return self._adbc

    # -- publishing ------------------------------------------------------------------------------
    def publish(self, batch: PublishBatch) -> None:
        if self.read_only:
            raise WarehouseError(f"warehouse {self.display_url} was opened read-only")
        from retailhub.warehouse.pg_publish import Publisher

        try:
            Publisher(self, batch).run()
        finally:
            self._history.clear()

    # -- plain access ----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._conn.execute(qmark_to_pyformat(sql) if params else sql, list(params) or None)
        except Exception as exc:
            raise self._error("statement failed", exc) from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        try:
            if self.read_only:
                return self._read_only_query(sql, params)
            cur = self._conn.execute(
                qmark_to_pyformat(sql) if params else sql, list(params) or None
            )
            columns = [d.name for d in cur.description or []]
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            return QueryResult(columns=columns, rows=rows)
        except Exception as exc:
            raise self._error("query failed", exc) from None

    def active_writer(self) -> str | None:
        holder = self._writer_lock_holder()
        if holder is None:
            return None
        return str(holder[1] or "").removeprefix("retailhub writer").strip()

    def confine_to_warehouse(self) -> None:
        # A read-only session's queries run as one prepared statement in a read-only
        # transaction (_read_only_query). Files and programs on the server are the server's
        # business: only superusers and the pg_*_server_* roles reach them, and a warning
        # says so when this login is one of those.
        row = self._conn.execute(
            "select rolsuper or pg_has_role(current_user, 'pg_execute_server_program', 'member') "
            "or pg_has_role(current_user, 'pg_write_server_files', 'member') "
            "from pg_roles where rolname = current_user"
        ).fetchone()
        if row and row[0]:
            log.warning(
                "role %s may reach the server's files and programs (superuser or a "
                "pg_*_server_* role): ad-hoc SQL is safer as the analyst or loader role",
                self.target.user,
            )

    def _read_only_query(self, sql: str, params: Sequence[Any]) -> QueryResult:
        """One statement in a transaction that cannot become a writing one.

        ``default_transaction_read_only`` alone is a default: ``set transaction read write;
        delete ...`` sent as one string overrode it. Here the transaction is read-only and has
        run a query before the caller's SQL (after which its mode can no longer change), and
        the SQL is prepared, which takes exactly one statement. It is rolled back either way.
        """
        self._conn.execute("begin transaction read only")
        try:
            self._conn.execute("select 1")
            cur = self._conn.execute(
                qmark_to_pyformat(sql) if params else sql, list(params) or None, prepare=True
            )
            columns = [d.name for d in cur.description or []]
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            return QueryResult(columns=columns, rows=rows)
        finally:
            self._conn.execute("rollback")

    def read_arrow(self, sql: str) -> pa.Table:
        cur = self._adbc_conn().cursor()
        try:
            cur.execute(sql)
            return decode_numeric(cur.fetch_arrow_table())
        except Exception as exc:
            raise self._error("query failed", exc) from None
        finally:
            cur.close()

    def insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            with self._conn.transaction():
                copy_rows(self._conn, table, rows)
        except Exception as exc:
            raise self._error(f"cannot insert into {table}", exc) from None

    def close(self) -> None:
        for closer in (
            lambda: self._adbc.close() if self._adbc is not None else None,
            # A closed session's backend lets go of its advisory locks only when it exits, a
            # moment after close() returns: the next command (a backup's audit entry, a run
            # started right after) could still find the writer lock held. Released here, it is
            # free when close() returns.
            self._release_locks,
            self._conn.close,  # ends the session (and so releases the lock if the above failed)
            lambda: self._compute.close() if self._compute is not None else None,
        ):
            with contextlib.suppress(Exception):  # closing twice, or after a server restart
                closer()
        self._adbc = None
        self._compute = None

    def _release_locks(self) -> None:
        if not self._conn.closed:
            self._conn.execute("select pg_advisory_unlock_all()")

    # -- errors ----------------------------------------------------------------------------------
    def _error(self, what: str, exc: BaseException) -> WarehouseError:
        import psycopg

        detail = " ".join(self.target.scrub(exc).split())
        sqlstate = getattr(exc, "sqlstate", None)
        cls: type[WarehouseError] = WarehouseError
        if isinstance(exc, psycopg.OperationalError) and self._conn.closed:
            cls = WarehouseUnavailable
        elif sqlstate == INSUFFICIENT_PRIVILEGE:
            cls = WarehouseAccessDenied
            detail += f" ({ROLE_HINT})"
        return cls(
            f"{what} on {self.display_url}: {detail}", host=self.target.host, sqlstate=sqlstate
        )


def copy_rows(conn: psycopg.Connection[Any], table: str, rows: list[dict[str, Any]]) -> None:
    """COPY small Python records into ``table`` (one statement, not one INSERT per row)."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    cols = ", ".join(quote_ident(c) for c in columns)
    with conn.cursor().copy(f"copy {qualified(table)} ({cols}) from stdin") as copy:
        for row in rows:
            copy.write_row([row.get(c) for c in columns])


def qmark_to_pyformat(sql: str) -> str:
    """Translate ``?`` placeholders to psycopg's ``%s`` (and escape literal ``%``).

    Question marks inside quoted strings, quoted identifiers and comments are left alone.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1].replace("%", "%%"))
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def decode_numeric(table: pa.Table) -> pa.Table:
    """Turn the ADBC reader's opaque ``numeric`` strings into Arrow decimals (or doubles)."""
    fields, arrays, changed = [], [], False
    for field, column in zip(table.schema, table.columns, strict=True):
        meta = field.metadata or {}
        if meta.get(b"POSTGRESQL:type") == b"numeric" and isinstance(
            field.type, pa.BaseExtensionType
        ):
            typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
            storage = pa.chunked_array(
                [c.storage for c in column.chunks], type=field.type.storage_type
            )
            if typmod >= 4:
                precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
                target = pa.decimal128(precision, scale) if precision <= 38 else pa.float64()
            else:
                target = pa.float64()
            column = storage.cast(target)
            field = pa.field(field.name, target, nullable=True)
            changed = True
        fields.append(field)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)) if changed else table
