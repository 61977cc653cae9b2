"""Stage-and-swap publishing into PostgreSQL.

1. **Stage** — every table of the batch is bulk-loaded into the ``rh_staging`` schema on
   several connections at once (binary COPY from Arrow, :mod:`pg_load`), then given its
   primary key, indexes and foreign keys and analysed. None of this is visible to readers,
   and none of it needs one transaction: a crash leaves only staging tables, which the next
   publish drops.
2. **Swap** — one short transaction makes the run visible:

   * ``append`` to a table partitioned by ``_run_id`` (raw history, quarantine) attaches the
     staged table as a new partition: metadata only, because a CHECK constraint proved the
     partition bound while loading. A run can never attach its rows twice.
   * ``append`` to another table inserts the staged rows (incremental facts).
   * ``replace`` drops the old table and moves the staged one into place, carrying over the
     old table's grants — unless other tables hold foreign keys to it (a dimension under an
     incrementally loaded fact): then the staged rows are merged by primary key.
   * ledger rows are COPYed in the same transaction.

   The swap takes ACCESS EXCLUSIVE locks on replaced tables for milliseconds, under a
   ``lock_timeout`` and retried, so a long analyst query delays a publish instead of queueing
   every other reader behind it.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retailhub.errors import WarehouseError
from retailhub.warehouse import audit, pg_carry
from retailhub.warehouse.base import (
    SCHEMAS,
    PublishBatch,
    files_predicate,
    sources_predicate,
    sql_literal,
)
from retailhub.warehouse.keys import ForeignKey, TableKeys
from retailhub.warehouse.pg_load import BulkLoader, LoadFailed, LoadJob, streaming_memory
from retailhub.warehouse.pg_types import (
    load_columns,
    load_expr_for,
    pg_type_of,
    qualified,
    quote_ident,
)
from retailhub.warehouse.postgres import STAGING_SCHEMA, copy_rows

if TYPE_CHECKING:
    from retailhub.warehouse.postgres import PostgresWarehouse

log = logging.getLogger(__name__)

PARTITION_COLUMN = "_run_id"
PARTITION_CHECK = "rh_partition_bound"
SWAP_LOCK_TIMEOUT = "3s"
SWAP_ATTEMPTS = 6
INDEX_MEMORY = "256MB"
_IDENT_MAX = 63


@dataclass
class TablePlan:
    """How one target table of the batch is staged and swapped in."""

    target: str
    kind: str  # append | replace
    relation: str
    stage: str
    strategy: str = ""  # partition | partition_new | insert | create | swap | merge
    ddl_columns: list[str] = field(default_factory=list)
    load_exprs: list[str] = field(default_factory=list)
    column_names: list[str] = field(default_factory=list)
    add_columns: list[tuple[str, str]] = field(default_factory=list)
    drop_columns: list[str] = field(default_factory=list)
    partition_value: str | None = None
    primary_key: tuple[str, ...] = ()
    rows: int = 0

    @property
    def schema(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.target.split(".", 1)[1]

    @property
    def staged(self) -> str:
        return f"{quote_ident(STAGING_SCHEMA)}.{quote_ident(self.stage)}"


class Publisher:
    def __init__(self, wh: PostgresWarehouse, batch: PublishBatch) -> None:
        self.wh = wh
        self.batch = batch
        self.conn = wh.connection
        self.keys: dict[str, TableKeys] = wh.keys
        self.plans: list[TablePlan] = []
        self.merge_counts: dict[str, tuple[int, int, int]] = {}
        self.regranted: list[tuple[str, str]] = []

    # -- driver -------------------------------------------------------------------------------
    def run(self) -> None:
        started = time.perf_counter()
        phases: dict[str, float] = {}

        def phase(name: str, step: Callable[[], object]) -> None:
            t0 = time.perf_counter()
            step()
            phases[name] = time.perf_counter() - t0

        try:
            phase("reset", self._reset_staging)
            phase("plan", self._plan)
            phase("create", self._create_staging)
            phase("load", self._load)
            phase("keys", self._build_keys)
            phase("swap", self._swap)
            log.info(
                "published %d tables to %s in %.1fs (%s)",
                len(self.plans) + len(self.batch.rows),
                self.wh.display_url,
                time.perf_counter() - started,
                ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()),
            )
        except WarehouseError:
            raise
        except LoadFailed as exc:
            raise self._fail(f"loading {exc.table} failed", exc.cause) from None
        except Exception as exc:
            if _is_driver_error(exc):
                raise self._fail("publish failed", exc) from None
            raise
        finally:
            self._drop_staging_tables(quiet=True)

    def _fail(self, what: str, exc: BaseException) -> WarehouseError:
        detail = " ".join(self.wh.target.scrub(exc).split())
        return WarehouseError(
            f"{what}; nothing was published and {self.wh.display_url} keeps its previous "
            f"state: {detail}",
            host=self.wh.target.host,
        )

    # -- staging area ----------------------------------------------------------------------------
    def _reset_staging(self) -> None:
        """Drop what an interrupted publish left behind (we hold the writer lock)."""
        exists = self.conn.execute(
            "select 1 from pg_namespace where nspname = %s", (STAGING_SCHEMA,)
        ).fetchone()
        if not exists:
            self.conn.execute(f"create schema {quote_ident(STAGING_SCHEMA)}")
        self._drop_staging_tables(quiet=False)

    def _drop_staging_tables(self, *, quiet: bool) -> None:
        try:
            rows = self.conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind in ('r', 'p') and not c.relispartition",
                (STAGING_SCHEMA,),
            ).fetchall()
            if rows:
                names = ", ".join(
                    f"{quote_ident(STAGING_SCHEMA)}.{quote_ident(r[0])}" for r in rows
                )
                self.conn.execute(f"drop table if exists {names} cascade")
        except Exception:
            if not quiet:
                raise
            log.debug("could not drop staging tables", exc_info=True)

    # -- planning ---------------------------------------------------------------------------------
    def _plan(self) -> None:
        self.plans = [*self._plan_replaces(), *self._plan_appends()]

    def _describe(self, relation: str) -> list[tuple[str, str]]:
        cur = self.wh.compute.cursor()
        try:
            rows = cur.execute(f"describe select * from {relation}").fetchall()
        finally:
            cur.close()
        return [(r[0], r[1]) for r in rows]

    def _plan_replaces(self) -> list[TablePlan]:
        targets = set(self.batch.replace)
        plans = []
        for target, relation in self.batch.replace.items():
            plan = TablePlan(target, "replace", relation, _stage_name(target, "r"))
            described = self._describe(relation)
            existing = self.wh.columns(target)
            referenced_by = self._referencing_tables(target) - targets if existing else set()
            keys = self.keys.get(target, TableKeys())
            plan.primary_key = keys.primary_key
            if existing and referenced_by:
                plan.strategy = "merge"
                plan.primary_key = self._primary_key(target) or keys.primary_key
                if not plan.primary_key:
                    raise WarehouseError(
                        f"{target} is referenced by foreign keys from "
                        f"{', '.join(sorted(referenced_by))} but has no primary key to merge "
                        "on; run with --full-refresh",
                        table=target,
                    )
                self._plan_like_existing(plan, described, existing, allow_drop=True)
            else:
                plan.strategy = "swap"
                cols = load_columns(described)
                plan.ddl_columns = [c.ddl() for c in cols]
                plan.load_exprs = [c.load_expr for c in cols]
                plan.column_names = [c.name for c in cols]
            plans.append(plan)
        return plans

    def _plan_appends(self) -> list[TablePlan]:
        plans = []
        for target, relation in self.batch.append.items():
            plan = TablePlan(target, "append", relation, _stage_name(target, "a"))
            described = self._describe(relation)
            names = {n for n, _ in described}
            existing = self.wh.columns(target)
            partitionable, value = (
                self._run_partition(relation) if PARTITION_COLUMN in names else (False, None)
            )
            if existing:
                partitioned = self._partition_column(target) == PARTITION_COLUMN
                self._plan_like_existing(plan, described, existing, allow_drop=False)
                plan.strategy = "partition" if partitioned and value is not None else "insert"
            else:
                cols = load_columns(described)
                plan.ddl_columns = [c.ddl() for c in cols]
                plan.load_exprs = [c.load_expr for c in cols]
                plan.column_names = [c.name for c in cols]
                plan.strategy = "partition_new" if partitionable else "create"
            if plan.strategy.startswith("partition"):
                plan.partition_value = value
            plans.append(plan)
        return plans

    def _plan_like_existing(
        self,
        plan: TablePlan,
        described: list[tuple[str, str]],
        existing: list[tuple[str, str]],
        *,
        allow_drop: bool,
    ) -> None:
        """Stage with the existing table's columns (plus new ones), so rows move as they are."""
        duck = dict(described)
        existing_names = {n for n, _ in existing}
        for name, pg_type in existing:
            if name not in duck and allow_drop:
                plan.drop_columns.append(name)
                continue
            plan.ddl_columns.append(f"{quote_ident(name)} {pg_type}")
            plan.load_exprs.append(load_expr_for(name, duck.get(name), pg_type))
            plan.column_names.append(name)
        for name, duck_type in described:
            if name not in existing_names:
                pg_type = pg_type_of(duck_type)
                plan.add_columns.append((name, pg_type))
                plan.ddl_columns.append(f"{quote_ident(name)} {pg_type}")
                plan.load_exprs.append(load_columns([(name, duck_type)])[0].load_expr)
                plan.column_names.append(name)

    def _run_partition(self, relation: str) -> tuple[bool, str | None]:
        """(whether the rows can form one partition by run, that run's id). An empty
        relation can (the partitioned table is created with no partition yet)."""
        cur = self.wh.compute.cursor()
        try:
            row = cur.execute(
                f"select count(distinct {PARTITION_COLUMN}), "
                f"count(*) - count({PARTITION_COLUMN}), min({PARTITION_COLUMN}), count(*) "
                f"from {relation}"
            ).fetchall()[0]
        finally:
            cur.close()
        distinct, nulls, value, total = row
        if total == 0:
            return True, None
        return (True, str(value)) if distinct == 1 and nulls == 0 else (False, None)

    def _referencing_tables(self, target: str) -> set[str]:
        rows = self.conn.execute(
            "select distinct n.nspname || '.' || c.relname from pg_constraint k "
            "join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace "
            "where k.contype = 'f' and k.confrelid = to_regclass(%s) and k.conrelid <> k.confrelid",
            (qualified(target),),
        ).fetchall()
        return {r[0] for r in rows}

    def _primary_key(self, target: str) -> tuple[str, ...]:
        rows = self.conn.execute(
            "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
            "and a.attnum = any(i.indkey) where i.indrelid = to_regclass(%s) and i.indisprimary "
            "order by array_position(i.indkey::int2[], a.attnum)",
            (qualified(target),),
        ).fetchall()
        return tuple(r[0] for r in rows)

    def _partition_column(self, target: str) -> str | None:
        row = self.conn.execute(
            "select a.attname from pg_partitioned_table p join pg_attribute a "
            "on a.attrelid = p.partrelid and a.attnum = p.partattrs[0] "
            "where p.partrelid = to_regclass(%s) and p.partstrat = 'l' and p.partnatts = 1",
            (qualified(target),),
        ).fetchone()
        return row[0] if row else None

    # -- stage ------------------------------------------------------------------------------------
    def _create_staging(self) -> None:
        for plan in self.plans:
            columns = list(plan.ddl_columns)
            if plan.partition_value is not None:
                columns = [
                    f"{c} not null" if c.startswith(quote_ident(PARTITION_COLUMN) + " ") else c
                    for c in columns
                ]
                columns.append(
                    f"constraint {PARTITION_CHECK} check ({quote_ident(PARTITION_COLUMN)} = "
                    f"{sql_literal(plan.partition_value)})"
                )
            self.conn.execute(f"create table {plan.staged} ({', '.join(columns)})")

    def _load(self) -> None:
        jobs = [
            LoadJob(
                STAGING_SCHEMA,
                plan.stage,
                f"select {', '.join(plan.load_exprs)} from {plan.relation}",
            )
            for plan in self.plans
        ]
        with (
            streaming_memory(self.wh.compute, self.wh.compute_memory_limit),
            BulkLoader(
                self.wh.compute,
                lambda: self.wh.target.connect_adbc(application_name=self.wh.application_name),
                workers=self.wh.load_workers,
            ) as loader,
        ):
            stats = loader.load(jobs)
        for plan in self.plans:
            plan.rows = stats[f"{STAGING_SCHEMA}.{plan.stage}"].rows

    def _build_keys(self) -> None:
        """Primary keys, then indexes and statistics, then foreign keys, on several connections.

        Foreign keys are added ``NOT VALID``: the model tests (``relationships``) have already
        proved in DuckDB, before publishing, that every fact key resolves to its dimension —
        the run fails otherwise — so re-checking 10M rows here would cost about 3 s per key
        for nothing. PostgreSQL enforces the constraints on every later write (incremental
        appends included).
        """
        swapped = {p.target: p for p in self.plans if p.strategy == "swap"}
        pks, second = [], []
        names = _index_name
        for plan in swapped.values():
            keys = self.keys.get(plan.target, TableKeys())
            cols = set(plan.column_names)
            if plan.primary_key and set(plan.primary_key) <= cols:
                pks.append(
                    f"alter table {plan.staged} add constraint "
                    f"{quote_ident(names(plan.name, 'pkey'))} primary key "
                    f"({', '.join(quote_ident(c) for c in plan.primary_key)})"
                )
            for index in keys.indexes:
                if set(index.columns) <= cols and index.columns != plan.primary_key:
                    index_name = names(plan.name, "_".join(index.columns) + "_idx")
                    second.append(
                        f"create index {quote_ident(index_name)} "
                        f"on {plan.staged} using {index.method} "
                        f"({', '.join(quote_ident(c) for c in index.columns)})"
                    )
        for plan in self.plans:
            if plan.strategy != "merge":
                second.append(f"analyze {plan.staged}")
        fks = []
        for plan in swapped.values():
            for fk in self.keys.get(plan.target, TableKeys()).foreign_keys:
                ref = self._fk_target(fk.ref_table, swapped)
                if ref is None or not set(fk.columns) <= set(plan.column_names):
                    log.debug("no foreign key %s -> %s: target missing", plan.target, fk.ref_table)
                    continue
                fks.append(_foreign_key_sql(plan.staged, plan.name, fk, ref))
        for phase in (pks, second, fks):
            self._run_parallel(phase)

    def _fk_target(self, ref_table: str, swapped: dict[str, TablePlan]) -> str | None:
        if ref_table in swapped:
            plan = swapped[ref_table]
            return plan.staged if plan.primary_key else None
        if self.wh.table_exists(ref_table) and self._primary_key(ref_table):
            return qualified(ref_table)
        return None

    def _run_parallel(self, statements: list[str]) -> None:
        if not statements:
            return
        work: queue.Queue[str] = queue.Queue()
        for s in statements:
            work.put(s)
        n = min(self.wh.load_workers, len(statements))

        def worker() -> None:
            conn = self.wh.target.connect(application_name=self.wh.application_name)
            try:
                conn.execute(f"set maintenance_work_mem = '{INDEX_MEMORY}'")
                while True:
                    try:
                        statement = work.get_nowait()
                    except queue.Empty:
                        return
                    conn.execute(statement)
            finally:
                conn.close()

        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="rh-keys") as pool:
            futures = [pool.submit(worker) for _ in range(n)]
        for f in futures:
            f.result()

    # -- swap -----------------------------------------------------------------------------------
    def _swap(self) -> None:
        import psycopg

        policy = self._grant_policy()
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                with self.conn.transaction():
                    self.conn.execute(f"set local lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
                    self._swap_once(policy)
                return
            except psycopg.errors.LockNotAvailable:
                if attempt == SWAP_ATTEMPTS:
                    raise WarehouseError(
                        f"publish to {self.wh.display_url} gave up after {attempt} attempts: "
                        f"readers held the tables it replaces ({self._lock_holders()}); "
                        "nothing was published; run again when they are done",
                    ) from None
                log.info("swap waited for readers; retrying (attempt %d)", attempt)
                time.sleep(min(2.0, 0.25 * 2**attempt))

    def _lock_holders(self) -> str:
        """Who holds locks on retailhub's tables: role, application, since when, pid."""
        rows = self.conn.execute(
            "select distinct a.pid, a.usename, coalesce(nullif(a.application_name, ''), '?'), "
            "date_trunc('second', now() - a.xact_start) from pg_locks l "
            "join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace "
            "join pg_stat_activity a on a.pid = l.pid "
            "where l.granted and a.pid <> pg_backend_pid() and n.nspname = any(%s) "
            "and l.database = (select oid from pg_database where datname = current_database()) "
            "order by 1 limit 5",
            (list(SCHEMAS),),
        ).fetchall()
        if not rows:
            return "they have let go since"
        return "; ".join(
            f"pid {pid} role {role} application {app}"
            # another role's transaction start is hidden from a role without pg_read_all_stats
            + (f" in a transaction for {age}" if age is not None else " in an open transaction")
            for pid, role, app, age in rows
        )

    def _swap_once(self, policy: dict[str, list[str]]) -> None:
        ex = self.conn.execute
        # Dimensions before facts: new fact rows must find their (merged) dimension rows.
        replaces = [p for p in self.plans if p.kind == "replace"]
        swaps = [p for p in replaces if p.strategy == "swap"]
        # analyst grants the existing tables lack (withheld by init): giving them back is audited
        self.regranted = [
            (p.target, clause)
            for p in replaces
            for clause in policy.get(p.schema, [])
            if self._lacks(p.target, clause)
        ]
        # grants, row security, policies and comments of the tables about to be dropped
        carried = {p.target: pg_carry.read(self.conn, p.target) for p in swaps}
        existing = [t for t, c in carried.items() if c is not None]
        if existing:
            ex(f"drop table {', '.join(qualified(t) for t in existing)}")
        for plan in swaps:
            self._move_into_place(plan)
            old = carried[plan.target]
            if old is not None:
                pg_carry.apply(self.conn, plan.target, old)
            self._after(plan.target)
        for plan in replaces:
            if plan.strategy == "merge":
                self._merge(plan)
                self._after(plan.target)
        # The analyst reads every table a publish replaces in core and marts. Init withholds
        # that from a table holding personal values in clear (published before the role
        # existed); this publish refuses clear values now that the role exists, so it is
        # what gives it back.
        for plan in replaces:
            self._grant(plan.target, policy.get(plan.schema, []))
        for table, files in self.batch.delete.items():
            if files and self.wh.table_exists(table):
                ex(f"delete from {qualified(table)} where {files_predicate(files)}")
        for plan in self.plans:
            if plan.kind == "append":
                self._append(plan, policy)
                self._after(plan.target)
        for table, sources in self.batch.supersede.items():
            if sources and self.wh.table_exists(table):
                ex(f"delete from {qualified(table)} where {sources_predicate(sources)}")
        for table, records in self.batch.rows.items():
            if records:
                copy_rows(self.conn, table, self._with_merge_audit(table, records))
                self._after(table)

    def _move_into_place(self, plan: TablePlan) -> None:
        ex = self.conn.execute
        ex(f"alter table {plan.staged} set schema {quote_ident(plan.schema)}")
        ex(
            f"alter table {quote_ident(plan.schema)}.{quote_ident(plan.stage)} "
            f"rename to {quote_ident(plan.name)}"
        )

    def _append(self, plan: TablePlan, policy: dict[str, list[str]]) -> None:
        ex = self.conn.execute
        target = qualified(plan.target)
        if plan.strategy in ("create", "partition_new"):
            if plan.strategy == "create":
                self._move_into_place(plan)
            else:
                ex(
                    f"create table {target} (like {plan.staged}) "
                    f"partition by list ({quote_ident(PARTITION_COLUMN)})"
                )
                if plan.partition_value is None:  # no rows yet: the table, no partition
                    ex(f"drop table {plan.staged}")
                else:
                    self._attach(plan)
            self._grant(plan.target, policy.get(plan.schema, []))
            return
        for name, pg_type in plan.add_columns:
            ex(f"alter table {target} add column {quote_ident(name)} {pg_type}")
        if plan.strategy == "partition":
            self._attach(plan)
        else:
            cols = ", ".join(quote_ident(c) for c in plan.column_names)
            ex(f"insert into {target} ({cols}) select {cols} from {plan.staged}")
        self._restore_foreign_keys(plan)

    def _restore_foreign_keys(self, plan: TablePlan) -> None:
        """Re-declare the appended table's missing foreign keys (``NOT VALID``, as when built).

        Dropping a dimension with CASCADE (by hand, or a restore of one table) silently drops
        the facts' foreign keys; an incremental run only appends to the facts, so without
        this they stayed missing until a ``--full-refresh``. Runs inside the swap, after the
        dimensions are in place.
        """
        declared = self.keys.get(plan.target, TableKeys()).foreign_keys
        if not declared:
            return
        present = {
            tuple(r[0])
            for r in self.conn.execute(
                "select array(select a.attname from unnest(k.conkey) with ordinality as u(n, i) "
                "join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) "
                "from pg_constraint k where k.contype = 'f' and k.conrelid = to_regclass(%s)",
                (qualified(plan.target),),
            ).fetchall()
        }
        for fk in declared:
            if tuple(fk.columns) in present or not set(fk.columns) <= set(plan.column_names):
                continue
            if not (self.wh.table_exists(fk.ref_table) and self._primary_key(fk.ref_table)):
                continue
            self.conn.execute(
                _foreign_key_sql(qualified(plan.target), plan.name, fk, qualified(fk.ref_table))
            )
            log.info(
                "restored foreign key %s(%s) -> %s",
                plan.target,
                ", ".join(fk.columns),
                fk.ref_table,
            )

    def _attach(self, plan: TablePlan) -> None:
        ex = self.conn.execute
        part = _ident(
            f"{plan.name}__{re.sub(r'[^a-z0-9]+', '_', str(plan.partition_value).lower())}"
        )
        ex(f"alter table {plan.staged} rename to {quote_ident(part)}")
        staged = f"{quote_ident(STAGING_SCHEMA)}.{quote_ident(part)}"
        ex(f"alter table {staged} set schema {quote_ident(plan.schema)}")
        partition = f"{quote_ident(plan.schema)}.{quote_ident(part)}"
        ex(
            f"alter table {qualified(plan.target)} attach partition {partition} "
            f"for values in ({sql_literal(str(plan.partition_value))})"
        )
        ex(f"alter table {partition} drop constraint {PARTITION_CHECK}")

    def _merge(self, plan: TablePlan) -> None:
        ex = self.conn.execute
        target = qualified(plan.target)
        for name in plan.drop_columns:
            ex(f"alter table {target} drop column {quote_ident(name)}")
        for name, pg_type in plan.add_columns:
            ex(f"alter table {target} add column {quote_ident(name)} {pg_type}")
        cols = [quote_ident(c) for c in plan.column_names]
        pk = [quote_ident(c) for c in plan.primary_key]
        others = [c for c in cols if c not in pk]
        update = (
            f"do update set {', '.join(f'{c} = excluded.{c}' for c in others)} "
            f"where ({', '.join(f't.{c}' for c in others)}) is distinct from "
            f"({', '.join(f'excluded.{c}' for c in others)})"
            if others
            else "do nothing"
        )
        if len(others) == 1:  # a one-element row constructor needs the ROW keyword
            update = update.replace(f"where (t.{others[0]})", f"where row(t.{others[0]})").replace(
                f"(excluded.{others[0]})", f"row(excluded.{others[0]})"
            )
        row = ex(
            f"with m as (insert into {target} as t ({', '.join(cols)}) "
            f"select {', '.join(cols)} from {plan.staged} on conflict ({', '.join(pk)}) {update} "
            "returning (xmax = 0) as inserted) "
            "select count(*) filter (where inserted), count(*) filter (where not inserted) from m"
        ).fetchone()
        inserted, updated = (int(row[0]), int(row[1])) if row else (0, 0)
        match = " and ".join(f"s.{c} = d.{c}" for c in pk)
        deleted = ex(
            f"delete from {target} d where not exists (select 1 from {plan.staged} s where {match})"
        ).rowcount
        self.merge_counts[plan.target] = (inserted, updated, max(deleted, 0))
        if updated or deleted:
            # pg_stats shows readers of a column its most common values and histogram: keep
            # them from the values the merge replaced (names in clear before pseudonyms)
            ex(f"analyze {target}")

    def _lacks(self, target: str, clause: str) -> bool:
        """Whether the existing ``target`` lacks the ``"<privilege> to <role>"`` grant."""
        priv, _, grantee = clause.partition(" to ")
        role = grantee.strip('"').replace('""', '"')
        row = self.conn.execute(
            "select to_regclass(%s) is not null "
            "and not has_table_privilege(%s, to_regclass(%s), %s)",
            (qualified(target), role, qualified(target), priv),
        ).fetchone()
        return bool(row and row[0])

    def _with_merge_audit(self, table: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Audit rows for what only the swap knows: members a merge updated, inserted,
        deleted, and analyst grants given back. A merged table was not replaced, so its
        ``replace`` row (planned before the publish chose to merge) is dropped."""
        if table != audit.AUDIT_TABLE or not (self.merge_counts or self.regranted):
            return records
        records = [
            r
            for r in records
            if not (r["operation"] == "replace" and r["object_name"] in self.merge_counts)
        ]
        role = records[0].get("db_role") if records else None
        run_id = records[0].get("run_id") if records else None
        extra = [
            audit.entry(
                "grant",
                target,
                role=role,
                run_id=run_id,
                detail=f"{clause} (the table lacked it: withheld, or revoked by hand)",
            )
            for target, clause in self.regranted
        ]
        for target, (inserted, updated, deleted) in self.merge_counts.items():
            extra.append(
                audit.entry(
                    "upsert",
                    target,
                    inserted + updated,
                    role=role,
                    run_id=run_id,
                    detail=f"{inserted} inserted, {updated} updated by primary key",
                )
            )
            if deleted:
                extra.append(
                    audit.entry(
                        "delete",
                        target,
                        deleted,
                        role=role,
                        run_id=run_id,
                        detail="members absent from the new build",
                    )
                )
        return [*records, *extra]

    # -- privileges -------------------------------------------------------------------------------
    def _grant_policy(self) -> dict[str, list[str]]:
        """Schema -> GRANT clauses for the tables it creates or replaces (``warehouse init``)."""
        from retailhub.warehouse.pg_roles import analyst_grants

        return analyst_grants(self.conn)

    def _grant(self, target: str, grants: list[str]) -> None:
        pg_carry.grant(self.conn, target, grants)

    def _after(self, target: str) -> None:
        if self.batch.after_table is not None:
            self.batch.after_table(target)


def _stage_name(target: str, kind: str) -> str:
    return _ident(f"{kind}__{target.replace('.', '__')}")


def _ident(name: str) -> str:
    """Fit ``name`` into PostgreSQL's 63-byte identifiers, keeping it unique with a hash."""
    if len(name.encode()) <= _IDENT_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return name.encode()[: _IDENT_MAX - 9].decode(errors="ignore") + "_" + digest


def _index_name(table: str, suffix: str) -> str:
    return _ident(f"{table}_{suffix}")


def _is_driver_error(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.Error) or type(exc).__module__.startswith(
        ("adbc_driver", "duckdb", "_duckdb")
    )


__all__ = ["Publisher", "TablePlan"]


def _foreign_key_sql(table: str, name: str, fk: ForeignKey, ref: str) -> str:
    """``ALTER TABLE`` adding ``fk`` unvalidated: the model tests already proved it holds."""
    return (
        f"alter table {table} add constraint "
        f"{quote_ident(_ident(name + '_' + '_'.join(fk.columns) + '_fkey'))} "
        f"foreign key ({', '.join(quote_ident(c) for c in fk.columns)}) references "
        f"{ref} ({', '.join(quote_ident(c) for c in fk.ref_columns)}) not valid"
    )
