"""The run ledger: every run, task, row count, quality result and lineage edge.

Ledger rows are written as the run goes (in their own small transactions) so that a run
that dies still leaves a record of how far it got; the data itself only becomes visible
through the atomic publish.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from retailhub.warehouse.base import Warehouse


class StoredWatermark(NamedTuple):
    """A source's latest watermark as the ledger keeps it."""

    watermark: str
    uri: str  # the unit (relation and column) it was taken on
    window_start: str | None = None
    #: one fingerprint per row of its window; None: stored without a window (older retailhub)
    fingerprints: tuple[str, ...] | None = None


#: Why a run found 'running' by a later run, which holds the writer lock, is failed.
INTERRUPTED_RUN = (
    "interrupted: the process stopped before the run finished (killed, crashed or "
    "disconnected); continue it with 'retailhub run --resume {run_id}'"
)
INTERRUPTED_FOR_GOOD = (
    "interrupted: the process stopped before the run finished (killed, crashed or "
    "disconnected); start a new run (its scratch database is gone, or it was a check)"
)
INTERRUPTED_TASK = "interrupted: the process stopped during this task"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Ledger:
    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, run_id: str, **fields: Any) -> None:
        self.wh.insert_rows(
            "meta.pipeline_runs",
            [{"run_id": run_id, "status": "running", "started_at": utcnow(), **fields}],
        )

    def reopen_run(self, run_id: str) -> None:
        self.wh.execute(
            "update meta.pipeline_runs set status = 'running', finished_at = null, error = null "
            "where run_id = ?",
            [run_id],
        )

    def finish_run(self, run_id: str, status: str, **fields: Any) -> None:
        fields = {"status": status, "finished_at": utcnow(), **fields}
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.wh.execute(
            f"update meta.pipeline_runs set {sets} where run_id = ?", [*fields.values(), run_id]
        )

    def mark_published(self, run_id: str) -> None:
        """Record as a success a run whose publish committed but whose end was never written.

        Its finish time is its publish's (the lineage rows'), not now: ``published_since``
        compares finish times with other runs' starts, and a later failed run must stay
        resumable when this publish came before it.
        """
        self.wh.execute(
            "update meta.pipeline_runs set status = 'success', error = null, "
            "finished_at = (select max(recorded_at) from meta.lineage where run_id = ?) "
            "where run_id = ?",
            [run_id, run_id],
        )

    def close_interrupted(
        self, current: str, can_resume: Callable[[str], bool] = lambda _run: True
    ) -> list[tuple[str, str]]:
        """Close the runs other than ``current`` still marked 'running'; (run id, new status).

        Call it holding the writer lock: no other process can be writing then, so such a
        run was killed, crashed or lost its connection, and would read 'running' forever. A
        run whose publish had committed becomes a success; any other a failure (which
        ``--resume`` continues while ``can_resume`` says its scratch is there), finished at
        its last recorded activity.
        """
        res = self.wh.query(
            "select run_id, command from meta.pipeline_runs "
            "where status = 'running' and run_id <> ?",
            [current],
        )
        closed: list[tuple[str, str]] = []
        for run_id, command in res.rows:
            self.wh.execute(
                "update meta.task_runs set status = 'failed', error = ?, "
                "finished_at = started_at where run_id = ? and status = 'running'",
                [INTERRUPTED_TASK, run_id],
            )
            if self.has_published(run_id):
                self.mark_published(run_id)
                closed.append((str(run_id), "success"))
                continue
            self.wh.execute(
                "update meta.pipeline_runs set status = 'failed', error = ?, finished_at = "
                "coalesce((select max(coalesce(finished_at, started_at)) from meta.task_runs "
                "where run_id = ?), started_at) where run_id = ?",
                [
                    (
                        INTERRUPTED_RUN
                        if command == "run" and can_resume(run_id)
                        else INTERRUPTED_FOR_GOOD
                    ).format(run_id=run_id),
                    run_id,
                    run_id,
                ],
            )
            closed.append((str(run_id), "failed"))
        return closed

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        res = self.wh.query("select * from meta.pipeline_runs where run_id = ?", [run_id])
        return dict(zip(res.columns, res.rows[0], strict=True)) if res.rows else None

    def published_since(self, run_id: str) -> str | None:
        """A run that published after ``run_id`` started (the latest), or None.

        A run's status is written after its publish commits, so a run killed in between (or
        whose connection died after COMMIT) still reads 'running' or 'failed': its lineage
        rows, written in the publishing transaction, say it published all the same.
        """
        res = self.wh.query(
            "select run_id from ("
            "select later.run_id, later.finished_at as published_at from meta.pipeline_runs later "
            "join meta.pipeline_runs this on this.run_id = ? where later.command = 'run' "
            "and later.status = 'success' and later.run_id <> this.run_id "
            "and later.finished_at > this.started_at "
            "union all "
            "select l.run_id, max(l.recorded_at) as published_at from meta.lineage l "
            "join meta.pipeline_runs this on this.run_id = ? where l.run_id <> this.run_id "
            "and l.recorded_at > this.started_at group by l.run_id"
            ") as published order by published_at desc limit 1",
            [run_id, run_id],
        )
        return str(res.rows[0][0]) if res.rows else None

    def has_published(self, run_id: str) -> bool:
        """Whether ``run_id``'s publish committed (its lineage rows are written with it)."""
        res = self.wh.query("select count(*) from meta.lineage where run_id = ?", [run_id])
        return bool(res.rows and res.rows[0][0])

    def forget_resume_hints(self, run_ids: list[str]) -> None:
        """Reword the 'continue it with --resume' of interrupted runs that can no longer
        resume (a later publish took their inputs and removed their scratch)."""
        for run_id in run_ids:
            self.wh.execute(
                "update meta.pipeline_runs set error = ? where run_id = ? and error = ?",
                [
                    INTERRUPTED_FOR_GOOD.format(run_id=run_id),
                    run_id,
                    INTERRUPTED_RUN.format(run_id=run_id),
                ],
            )

    def known_runs(self, run_ids: list[str]) -> list[str]:
        """Those of ``run_ids`` that this ledger has a record of, in order."""
        if not run_ids:
            return []
        marks = ", ".join("?" for _ in run_ids)
        res = self.wh.query(
            f"select run_id from meta.pipeline_runs where run_id in ({marks}) order by run_id",
            run_ids,
        )
        return [str(r[0]) for r in res.rows]

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        res = self.wh.query(
            "select run_id, command, profile, status, started_at, seconds, rows_in, "
            "rows_accepted, rows_quarantined, quality_score "
            f"from meta.pipeline_runs order by started_at desc limit {int(limit)}"
        )
        return [dict(zip(res.columns, r, strict=True)) for r in res.rows]

    # -- tasks ----------------------------------------------------------------------------
    def task_started(self, run_id: str, task: str, attempt: int) -> datetime:
        started = utcnow()
        self.wh.insert_rows(
            "meta.task_runs",
            [
                {
                    "run_id": run_id,
                    "task": task,
                    "status": "running",
                    "attempt": attempt,
                    "started_at": started,
                }
            ],
        )
        return started

    def task_finished(
        self,
        run_id: str,
        task: str,
        attempt: int,
        status: str,
        seconds: float,
        *,
        rows_in: int | None = None,
        rows_out: int | None = None,
        error: str | None = None,
        output: dict[str, Any] | None = None,
    ) -> None:
        self.wh.execute(
            "update meta.task_runs set status = ?, finished_at = ?, seconds = ?, rows_in = ?, "
            "rows_out = ?, error = ?, output_json = ? "
            "where run_id = ? and task = ? and attempt = ?",
            [
                status,
                utcnow(),
                seconds,
                rows_in,
                rows_out,
                error,
                json.dumps(output, default=str) if output is not None else None,
                run_id,
                task,
                attempt,
            ],
        )

    def task_skipped(self, run_id: str, task: str, reason: str) -> None:
        now = utcnow()
        self.wh.insert_rows(
            "meta.task_runs",
            [
                {
                    "run_id": run_id,
                    "task": task,
                    "status": "skipped",
                    "attempt": 0,
                    "started_at": now,
                    "finished_at": now,
                    "seconds": 0.0,
                    "error": reason,
                }
            ],
        )

    def tasks(self, run_id: str) -> list[dict[str, Any]]:
        res = self.wh.query(
            "select task, status, attempt, started_at, finished_at, seconds, rows_in, rows_out, "
            "error, output_json from meta.task_runs where run_id = ? order by started_at, attempt",
            [run_id],
        )
        return [dict(zip(res.columns, r, strict=True)) for r in res.rows]

    def succeeded_tasks(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Task name -> its last successful record (used by ``--resume``)."""
        out: dict[str, dict[str, Any]] = {}
        for row in self.tasks(run_id):
            if row["status"] == "success":
                out[row["task"]] = row
        return out

    def next_attempt(self, run_id: str, task: str) -> int:
        res = self.wh.query(
            "select coalesce(max(attempt), 0) from meta.task_runs where run_id = ? and task = ?",
            [run_id, task],
        )
        return int(res.rows[0][0]) + 1

    # -- lookups used by ingestion ----------------------------------------------------------
    def ingested_checksums(self, source: str) -> set[str]:
        res = self.wh.query(
            "select distinct checksum from meta.ingested_files "
            "where source = ? and checksum is not null",
            [source],
        )
        return {r[0] for r in res.rows}

    def datasets_of_source(self, source: str) -> set[str]:
        """Every dataset ``source``'s ingested units went to."""
        res = self.wh.query(
            "select distinct dataset from meta.ingested_files where source = ?", [source]
        )
        return {str(r[0]) for r in res.rows}

    def ingested_units(self, source: str) -> dict[str, tuple[str, int, str | None]]:
        """Every unit ``source`` ingested (files, API extractions) -> (run, rows, checksum)
        of its latest ingestion, the most recent unit last."""
        res = self.wh.query(
            "select uri, run_id, rows, checksum from meta.ingested_files where source = ? "
            "order by arrived_at",
            [source],
        )
        out: dict[str, tuple[str, int, str | None]] = {}
        for uri, run_id, rows, checksum in res.rows:
            out.pop(str(uri), None)  # re-inserted: the dict's order is the ingestion order
            out[str(uri)] = (str(run_id), int(rows or 0), checksum)
        return out

    def ingested_files(self, source: str) -> dict[str, tuple[str, str]]:
        """Every file path ``source`` ingested -> (checksum, run id) of its latest version."""
        res = self.wh.query(
            "select uri, checksum, run_id from meta.ingested_files "
            "where source = ? and checksum is not null order by arrived_at",
            [source],
        )
        return {str(uri): (str(checksum), str(run_id)) for uri, checksum, run_id in res.rows}

    def last_watermark(self, source: str) -> StoredWatermark | None:
        """The latest stored watermark of ``source``, the unit (relation) it was taken on, and
        its window (see retailhub.sources.watermark)."""
        res = self.wh.query(
            "select watermark, uri, run_id from meta.ingested_files where source = ? "
            "and watermark is not null order by arrived_at desc limit 1",
            [source],
        )
        if not res.rows:
            return None
        watermark, uri, run_id = res.rows[0]
        stored = StoredWatermark(str(watermark), str(uri))
        if self.wh.table_exists("meta.watermark_windows"):
            found = self.wh.query(
                "select window_from, row_hashes from meta.watermark_windows "
                "where source = ? and run_id = ? and watermark = ?",
                [source, run_id, watermark],
            ).rows
            if found:
                start, hashes = found[0]
                return stored._replace(window_start=start, fingerprints=tuple(hashes.split()))
        return stored

    def previous_accepted_rows(self, dataset: str) -> int | None:
        res = self.wh.query(
            "select a.accepted_rows from meta.dataset_accounting a "
            "join meta.pipeline_runs r using (run_id) "
            "where a.dataset = ? and r.status = 'success' and a.input_rows > 0 "
            "order by a.recorded_at desc limit 1",
            [dataset],
        )
        return int(res.rows[0][0]) if res.rows else None
