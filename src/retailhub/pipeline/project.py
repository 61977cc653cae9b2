"""The ``Project`` facade: the one object every entry point (CLI, Airflow, web, tests) uses.

It owns the order of operations for a run — open the warehouse, record the run, execute
the plan, clean up — so no entry point ever composes layers itself.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retailhub import interrupts
from retailhub.config.loader import LoadedProject, load_project
from retailhub.errors import (
    EXIT_RUNTIME,
    ConfigError,
    Interrupted,
    RetailhubError,
    UsageError,
    WarehouseError,
    WarehouseUnavailable,
)
from retailhub.pipeline.context import ProgressSink, RunContext
from retailhub.pipeline.plan import Plan, build_plan
from retailhub.pipeline.report import RunReport, build_report
from retailhub.pipeline.runner import Runner, RunOutcome, outputs_from_ledger
from retailhub.warehouse.base import QueryResult, Warehouse
from retailhub.warehouse.factory import open_warehouse
from retailhub.warehouse.ledger import Ledger

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Project:
    def __init__(self, loaded: LoadedProject) -> None:
        self.loaded = loaded

    @classmethod
    def load(
        cls,
        project_dir: Path | str | None = None,
        *,
        profile: str | None = None,
        warehouse_url: str | None = None,
        reads_sources: bool = True,
    ) -> Project:
        """``reads_sources=False`` for commands that only use the warehouse: the sources'
        unset ``${VAR}``s are then not required."""
        overrides = {"warehouse": {"url": warehouse_url}} if warehouse_url else None
        return cls(
            load_project(
                Path(project_dir) if project_dir else None,
                profile=profile,
                overrides=overrides,
                sources_optional=not reads_sources,
            )
        )

    @property
    def settings(self):
        return self.loaded.settings

    @property
    def root(self) -> Path:
        return self.loaded.root

    # -- warehouse access -------------------------------------------------------------------
    def open_warehouse(self, *, read_only: bool = False, work_db: Path | None = None) -> Warehouse:
        runner = self.settings.runner
        with self._keys_by_origin():
            return open_warehouse(
                self.settings.warehouse,
                self.root,
                work_db=work_db,
                read_only=read_only,
                memory_limit=runner.memory_limit,
                threads=runner.threads,
                history_dir=self.loaded.resolve(runner.work_dir) / "history",
            )

    @contextlib.contextmanager
    def _keys_by_origin(self) -> Iterator[None]:
        """Name the key of a rejected value where it came from: the adapters only see the
        value, so they say "key 'warehouse.url'" even when an exported variable set it."""
        try:
            yield
        except ConfigError as exc:
            key = exc.context.get("key")
            prefix = f"key '{key}'"
            if key and exc.message.startswith(prefix):
                exc.message = self.loaded.origin(key) + exc.message[len(prefix) :]
            raise

    def work_db(self, run_id: str) -> Path:
        return self.loaded.resolve(self.settings.runner.work_dir) / f"{run_id}.duckdb"

    # -- runs -------------------------------------------------------------------------------
    def run(
        self,
        *,
        resume: str | None = None,
        publish: bool = True,
        progress: ProgressSink | None = None,
        publish_hook: Callable[[str], None] | None = None,
        full_refresh: bool = False,
        rotate_pseudonym_key: bool = False,
    ) -> RunReport:
        """Execute the pipeline (or continue run ``resume`` from its failed task).

        ``full_refresh`` replaces every published table instead of appending new fact rows.
        """
        command = "run" if publish else "check"
        started = time.perf_counter()
        if resume is not None and not resume.strip():
            # --resume "$RUN_ID" with the variable unset: not a new run in disguise
            raise UsageError("--resume needs a run id (see 'retailhub runs'); it was empty")
        run_id = resume or new_run_id()
        work_db = self.work_db(run_id)
        # Looked at before opening the warehouse, which creates the scratch file; reported
        # after the ledger's reasons (not failed, published since), which explain more. An
        # unknown run is reported without opening the warehouse for writing (no empty file).
        scratch_missing = bool(resume) and not work_db.exists()
        if scratch_missing and self._run_status(str(resume)) is None:
            raise UsageError(f"no run {resume} in the ledger: see 'retailhub runs'")
        warehouse = self.open_warehouse(work_db=work_db)
        outcome: RunOutcome | None = None
        started_run = False
        resume_refused = False
        try:
            warehouse.init_schema()
            ledger = Ledger(warehouse)
            closing = ledger.close_interrupted(
                current=run_id, can_resume=lambda other: self.work_db(other).exists()
            )
            for closed, status in closing:
                log.warning(
                    "run %s was left 'running' by a process that stopped: recorded as %s",
                    closed,
                    "a success (its publish had committed)" if status == "success" else "failed",
                )
            plan, done = self._prepare(
                ledger,
                run_id,
                resume,
                publish,
                command,
                warehouse,
                full_refresh=full_refresh,
                scratch_missing=scratch_missing,
            )
            started_run = True
            ctx = RunContext(
                project=self.loaded,
                warehouse=warehouse,
                run_id=run_id,
                progress=progress or ProgressSink(),
                publish_hook=publish_hook,
                # A resumed run keeps the --full-refresh it was started with.
                full_refresh=full_refresh or plan.full_refresh,
                publishes=publish,
                rotate_pseudonym_key=rotate_pseudonym_key,
            )
            runner = Runner(ctx, plan, backoff_s=self.settings.runner.backoff_s)
            outcome = runner.execute(done)
            report = build_report(ctx, outcome, command, time.perf_counter() - started)
            totals = _totals(report)
            ledger.finish_run(
                run_id,
                outcome.status,
                seconds=report.seconds,
                error=report.error,
                **totals,
            )
            report.resumable = publish and outcome.status == "failed"
            if publish and outcome.status == "success" and not self.settings.runner.keep_work_db:
                self._remove_unresumable_scratch(ledger, run_id)
            return report
        except UsageError:
            resume_refused = not started_run  # _prepare said this run cannot resume
            raise
        except (RetailhubError, KeyboardInterrupt) as exc:
            if not (started_run and publish):
                raise
            # Stopped outside a task's own error handling (the warehouse connection died
            # while the ledger recorded a failure, Ctrl-C between two tasks): the ledger
            # may still say 'running', but the scratch database is kept and the run named,
            # so it can be resumed (the next run records it as interrupted).
            if isinstance(exc, KeyboardInterrupt):
                exc = Interrupted(f"interrupted ({interrupts.name(exc)})")
            exc.message = (
                f"run {run_id} stopped: {exc.message}; continue it with "
                f"'retailhub run --resume {run_id}' once the cause is fixed"
            )
            raise exc from None
        finally:
            warehouse.close()
            keep = (
                self.settings.runner.keep_work_db
                or (publish and started_run and (outcome is None or outcome.status == "failed"))
                # a resume that failed before deciding (the warehouse did not answer) keeps
                # the scratch database it will need when retried
                or (resume is not None and not started_run and not resume_refused)
            )
            if not keep:
                _remove_work_db(work_db)

    def _remove_unresumable_scratch(self, ledger: Ledger, run_id: str) -> None:
        """Delete the scratch databases this publish made useless.

        A failed run keeps its scratch database so that ``--resume`` can continue it, but
        once another run has published, no earlier run may resume (its new inputs went into
        that publish). Only runs this warehouse's ledger knows are touched: a project folder
        can serve two warehouses (a dev and a prod profile), each with its own failed runs.
        """
        folder = self.work_db(run_id).parent
        files = {p.stem: p for p in folder.glob("*.duckdb") if p.stem != run_id}
        known = ledger.known_runs(sorted(files))
        for other in known:
            _remove_work_db(files[other])
        ledger.forget_resume_hints(known)
        if known:
            log.info(
                "removed the scratch databases of %d earlier run(s) that can no longer be "
                "resumed: %s",
                len(known),
                ", ".join(known),
            )

    def check(self, *, progress: ProgressSink | None = None) -> RunReport:
        """Ingest and validate only: print the scorecard, publish nothing."""
        return self.run(publish=False, progress=progress)

    def _prepare(
        self,
        ledger: Ledger,
        run_id: str,
        resume: str | None,
        publish: bool,
        command: str,
        warehouse: Warehouse,
        *,
        full_refresh: bool = False,
        scratch_missing: bool = False,
    ) -> tuple[Plan, dict]:
        if resume:
            row = ledger.get_run(resume)
            if row is None:
                raise UsageError(f"no run {resume} in the ledger: see 'retailhub runs'")
            if row["status"] not in ("failed", "running"):
                # a quality-gate stop is not a failure to continue: the data must change first
                raise UsageError(
                    f"run {resume} has status {row['status']}; only failed runs resume (a run "
                    "stopped by the quality gate needs new or corrected input: start a new run)"
                )
            if ledger.has_published(resume):
                # Its publish committed; the process stopped before recording the success.
                ledger.mark_published(resume)
                raise UsageError(
                    f"run {resume} had already published: its publish committed before the "
                    "run stopped, so there is nothing to resume (its status is now success)"
                )
            later = ledger.published_since(resume)
            if later is not None:
                # The later run took in this run's new inputs too (they were never recorded
                # as ingested): publishing this one now would load them a second time.
                raise UsageError(
                    f"run {resume} cannot be resumed: run {later} has published since it "
                    "started; start a new run instead"
                )
            if scratch_missing:
                raise UsageError(
                    f"run {resume} cannot be resumed: its scratch database "
                    f"{self.work_db(resume)} is gone (it is kept only after a failure, until a "
                    "run succeeds or a backup is restored); start a new run instead"
                )
            ledger.reopen_run(resume)
            return Plan.from_json(row["plan_json"]), outputs_from_ledger(
                ledger.succeeded_tasks(resume)
            )
        plan = build_plan(self.settings, publish=publish, full_refresh=full_refresh)
        ledger.start_run(
            run_id,
            project=self.settings.project,
            profile=self.loaded.profile,
            command=command,
            warehouse_url=warehouse.display_url,
            config_hash=self.config_hash(),
            plan_json=plan.to_json(),
        )
        return plan, {}

    def config_hash(self) -> str:
        return self.settings.fingerprint()

    # -- ledger and warehouse reads ----------------------------------------------------------
    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.open_warehouse(read_only=True) as wh:
            _require_ledger(wh)
            return _show_dead_runs(wh, Ledger(wh).list_runs(limit))

    def _run_status(self, run_id: str) -> str | None:
        """The ledger's status of ``run_id``; None when there is no such run."""
        try:
            with self.open_warehouse(read_only=True) as wh:
                row = Ledger(wh).get_run(run_id)
        except RetailhubError:  # no warehouse yet: no run either
            return None
        return None if row is None else str(row["status"])

    def run_detail(self, run_id: str) -> dict[str, Any]:
        with self.open_warehouse(read_only=True) as wh:
            _require_ledger(wh)
            ledger = Ledger(wh)
            run = ledger.get_run(run_id)
            if run is None:
                raise UsageError(f"no run {run_id} in the ledger: see 'retailhub runs'")
            run.pop("plan_json", None)
            (run,) = _show_dead_runs(wh, [run])
            quality = wh.query(
                "select dataset, rule, severity, passed, metric, threshold, failing_rows "
                "from meta.quality_results where run_id = ? order by dataset, rule",
                [run_id],
            )
            accounting = wh.query(
                "select dataset, input_rows, accepted_rows, quarantined_rows, quality_score "
                "from meta.dataset_accounting where run_id = ? order by dataset",
                [run_id],
            )
            tasks = ledger.tasks(run_id)
            for t in tasks:
                t.pop("output_json", None)
            return {
                "run": run,
                "tasks": tasks,
                "datasets": [
                    dict(zip(accounting.columns, r, strict=True)) for r in accounting.rows
                ],
                "quality": [dict(zip(quality.columns, r, strict=True)) for r in quality.rows],
            }

    # -- warehouse administration ---------------------------------------------------------------
    def warehouse_init(
        self, *, loader_role: str = "retailhub_loader", analyst_role: str = "retailhub_analyst"
    ) -> dict[str, Any]:
        """Create schemas, ledger tables and (PostgreSQL) roles and grants; idempotent."""
        from retailhub.warehouse import audit
        from retailhub.warehouse.pg_roles import RoleNames, SupportsRoles
        from retailhub.warehouse.pseudonymise import KEY_ENV

        schemas = "select schema_name from information_schema.schemata"
        with self.open_warehouse() as wh:
            before = {str(r[0]) for r in wh.query(schemas).rows}
            if not isinstance(wh, SupportsRoles):
                wh.init_schema()
                audit.ensure_table(wh)
                return {"warehouse": wh.display_url, "roles": "not applicable (embedded DuckDB)"}
            # Roles first: it checks that this login may create roles before it changes
            # anything, and creates schemas, tables and grants in one transaction (a refused
            # init used to leave the schemas and ledger tables behind)
            report = wh.init_roles(RoleNames(loader=loader_role, analyst=analyst_role))
            wh.init_schema()
            audit.ensure_table(wh)
            created = sorted({str(r[0]) for r in wh.query(schemas).rows} - before)
            return {
                "warehouse": wh.display_url,
                "created_roles": ", ".join(report.created_roles) or "none (already there)",
                "created_schemas": ", ".join(created) or "none (already there)",
                "grants": len(report.grants),
                "withheld_from_analyst": (
                    f"{', '.join(report.withheld)} (personal values in clear, published before "
                    f"the analyst role existed: the next run, with {KEY_ENV} set, replaces "
                    "them pseudonymised and grants them)"
                    if report.withheld
                    else "none"
                ),
            }

    def backup(self, out: Path, *, replace: bool = False) -> Any:
        """Write a verified backup (FILE, FILE.manifest.json, FILE.sha256)."""
        from retailhub.warehouse.backup import backup

        with self._keys_by_origin():
            return backup(self.settings.warehouse, self.root, Path(out), replace=replace)

    def restore(self, path: Path) -> Any:
        """Verify a backup's checksums, then replace the warehouse with it atomically."""
        from retailhub.warehouse.backup import restore

        with self._keys_by_origin():
            restored = restore(self.settings.warehouse, self.root, Path(path))
        # the restored warehouse holds none of the builds a failed run left for --resume
        # (backups leave staging tables out): such a resume would fail half-way, so it is
        # refused up front, as after a publish
        with self.open_warehouse() as wh:
            if wh.table_exists("meta.pipeline_runs"):
                self._remove_unresumable_scratch(Ledger(wh), run_id="")
        return restored

    def insights(self, limit: int = 10) -> list[dict[str, Any]]:
        """The last run's ranked insights (``marts.mart_insights``), most important first."""
        with self.open_warehouse(read_only=True) as wh:
            if not wh.table_exists("marts.mart_insights"):
                raise UsageError(
                    "no insights in the warehouse yet: run 'retailhub run' with analytics "
                    "enabled (the 'analytics.enabled' key) first"
                )
            res = wh.query(
                "select rank, source_system, severity, kind, text from marts.mart_insights "
                f"order by rank limit {int(limit)}"
            )
            return [dict(zip(res.columns, r, strict=True)) for r in res.rows]

    def query(self, sql: str) -> QueryResult:
        """Run read-only SQL against the warehouse (writes are refused by the connection)."""
        if not sql.strip().strip(";").strip():
            raise UsageError(
                'no SQL given: e.g. retailhub query "select count(*) from core.fct_sales"'
            )
        with self.open_warehouse(read_only=True) as wh:
            wh.confine_to_warehouse()
            try:
                return wh.query(sql)
            except WarehouseError as exc:
                # The server refused the statement itself (syntax, unknown table, a write on
                # the read-only session, a permission): the user's SQL, as on DuckDB; a lost
                # connection (SQLSTATE class 08) stays a runtime failure.
                sqlstate = str(exc.context.get("sqlstate") or "")
                if isinstance(exc, WarehouseUnavailable) or not sqlstate or sqlstate[:2] == "08":
                    raise
                raise UsageError(str(exc)) from None
            except RetailhubError:
                raise
            except Exception as exc:
                # the adapters raise failures of the warehouse itself (a damaged file, a lost
                # connection) as WarehouseError, above; what is left is the user's SQL
                raise UsageError(f"query failed: {exc}") from None


def _show_dead_runs(wh: Warehouse, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Show a run the ledger says is 'running' as 'interrupted' when no process runs it.

    A killed run cannot record its end; the next run closes it, but until then the history
    would say it is still running. Read-only: the ledger itself is left to that next run.
    """
    if not any(r.get("status") == "running" for r in runs):
        return runs
    live = wh.active_writer()
    if live == "":  # a writer holds the warehouse but does not say for which run
        return runs
    return [
        _as_interrupted(r) if r.get("status") == "running" and r.get("run_id") != live else r
        for r in runs
    ]


def _as_interrupted(run: dict[str, Any]) -> dict[str, Any]:
    """The run shown as interrupted; where the record has an error column (one run's detail,
    not the history's rows, which must all have the same columns) it says what to do next."""
    shown = {**run, "status": "interrupted"}
    if "error" in run and not run["error"]:
        shown["error"] = (
            "no process runs it any more (killed or crashed); continue it with "
            f"'retailhub run --resume {run.get('run_id')}' while its scratch database is kept"
        )
    return shown


def _require_ledger(wh: Warehouse) -> None:
    """A warehouse no run has written yet (an empty PostgreSQL database) has no ledger."""
    if not wh.table_exists("meta.pipeline_runs"):
        raise UsageError(
            f"{wh.display_url} holds no retailhub ledger yet: run 'retailhub run' (or "
            "'retailhub warehouse init') against it first"
        )


def _totals(report: RunReport) -> dict[str, Any]:
    if not report.datasets:
        return {}
    total_in = sum(d.input_rows for d in report.datasets)
    # Weighted by rows checked; a run that checked no row has no score (it used to show 100).
    checked = [d for d in report.datasets if d.score is not None and d.input_rows]
    score = sum(d.score * d.input_rows for d in checked) / total_in if total_in else None
    return {
        "rows_in": total_in,
        "rows_accepted": sum(d.accepted_rows for d in report.datasets),
        "rows_quarantined": sum(d.quarantined_rows for d in report.datasets),
        "quality_score": round(score, 3) if score is not None else None,
    }


def _remove_work_db(path: Path) -> None:
    for p in (path, path.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    spill = path.parent / "spill"
    if spill.is_dir() and not any(path.parent.glob("*.duckdb")):
        shutil.rmtree(spill, ignore_errors=True)


__all__ = ["EXIT_RUNTIME", "Project", "new_run_id"]
