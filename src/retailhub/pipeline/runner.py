"""The in-process runner: executes a plan task by task, with retries and a ledger record.

Transient failures (marked ``transient`` on the error) are retried with exponential
backoff; anything else fails the task at once, marks its downstream tasks skipped and
leaves the scratch database in place so ``--resume`` can continue from the failed task.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field

import duckdb

from retailhub import interrupts
from retailhub.errors import Interrupted, RetailhubError, WarehouseUnavailable
from retailhub.pipeline.context import RunContext, TaskOutput
from retailhub.pipeline.plan import Plan, Task
from retailhub.pipeline.steps import step_for
from retailhub.warehouse.ledger import Ledger

log = logging.getLogger(__name__)


@dataclass
class TaskRecord:
    name: str
    status: str
    seconds: float = 0.0
    attempts: int = 0
    rows_in: int | None = None
    rows_out: int | None = None
    error: str | None = None


@dataclass
class RunOutcome:
    run_id: str
    status: str  # success | failed | quality_failed
    tasks: list[TaskRecord] = field(default_factory=list)
    error: RetailhubError | None = None


class Runner:
    def __init__(self, ctx: RunContext, plan: Plan, *, backoff_s: float = 1.0) -> None:
        self.ctx = ctx
        self.plan = plan
        self.ledger = Ledger(ctx.warehouse)
        self.backoff_s = backoff_s

    def execute(self, done: dict[str, TaskOutput] | None = None) -> RunOutcome:
        """Run every task not in ``done`` (outputs of tasks that succeeded before a resume)."""
        done = dict(done or {})
        self.ctx.outputs.update(done)
        outcome = RunOutcome(run_id=self.ctx.run_id, status="success")
        blocked: set[str] = set()
        for index, task in enumerate(self.plan.tasks):
            if task.name in done:
                outcome.tasks.append(TaskRecord(task.name, "reused"))
                continue
            if task.name in blocked:
                self.ledger.task_skipped(self.ctx.run_id, task.name, "an upstream task failed")
                outcome.tasks.append(TaskRecord(task.name, "skipped"))
                continue
            try:
                record = self._run_task(task)
            except Interrupted as stop:
                # the user stopped the run: record it and go no further (no retry, no other
                # branch of the graph); the run is failed and resumable from this task
                outcome.tasks.append(
                    TaskRecord(
                        task.name,
                        "failed",
                        seconds=float(stop.context.get("seconds", 0.0)),
                        attempts=int(stop.context.get("attempts", 1)),
                        error=stop.message,
                    )
                )
                outcome.tasks.extend(
                    TaskRecord(t.name, "skipped") for t in self.plan.tasks[index + 1 :]
                )
                outcome.error, outcome.status = stop, "failed"
                return outcome
            outcome.tasks.append(record)
            if record.status != "success":
                blocked |= self.plan.downstream(task.name)
                if outcome.error is None:
                    outcome.error = self._last_error
                    outcome.status = (
                        "quality_failed" if record.status == "quality_failed" else "failed"
                    )
        return outcome

    _last_error: RetailhubError | None = None

    def _run_task(self, task: Task) -> TaskRecord:
        step = step_for(task.kind)
        attempt_limit = 1 + task.retries
        record = TaskRecord(task.name, "failed")
        for _ in range(attempt_limit):
            attempt = self.ledger.next_attempt(self.ctx.run_id, task.name)
            record.attempts += 1
            self.ledger.task_started(self.ctx.run_id, task.name, attempt)
            self.ctx.progress.task_started(task.name)
            t0 = time.perf_counter()
            try:
                out = step(self.ctx, task)
            except (KeyboardInterrupt, Exception) as exc:
                seconds = time.perf_counter() - t0
                if _is_interrupt(exc):
                    stop = Interrupted(
                        f"task {task.name} interrupted ({interrupts.name(exc)})",
                        task=task.name,
                        seconds=seconds,
                        attempts=record.attempts,
                    )
                    # best effort: a connection stopped mid-statement may refuse the write,
                    # and the next run closes a run left 'running' anyway
                    with contextlib.suppress(Exception):
                        self.ledger.task_finished(
                            self.ctx.run_id,
                            task.name,
                            attempt,
                            "failed",
                            seconds,
                            error=stop.message,
                        )
                    self.ctx.progress.task_finished(task.name, "failed", seconds, stop.message)
                    raise stop from None
                err = _as_retailhub_error(exc, task)
                status = "quality_failed" if err.exit_code == 1 else "failed"
                self.ledger.task_finished(
                    self.ctx.run_id, task.name, attempt, status, seconds, error=err.message
                )
                self.ctx.progress.task_finished(task.name, status, seconds, err.message)
                record.seconds += seconds
                record.error = err.message
                record.status = status
                self._last_error = err
                if err.transient and record.attempts < attempt_limit:
                    delay = self.backoff_s * (2 ** (record.attempts - 1))
                    log.warning("%s failed (%s); retrying in %.1fs", task.name, err.message, delay)
                    time.sleep(delay)
                    continue
                if not isinstance(exc, RetailhubError):
                    log.exception("task %s failed unexpectedly", task.name)
                return record
            seconds = time.perf_counter() - t0
            self.ctx.outputs[task.name] = out
            self.ledger.task_finished(
                self.ctx.run_id,
                task.name,
                attempt,
                "success",
                seconds,
                rows_in=out.rows_in,
                rows_out=out.rows_out,
                output=out.payload,
            )
            detail = f"{out.rows_out:,} rows" if out.rows_out is not None else ""
            self.ctx.progress.task_finished(task.name, "success", seconds, detail)
            record.status, record.error = "success", None
            record.seconds += seconds
            record.rows_in, record.rows_out = out.rows_in, out.rows_out
            return record
        return record


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C: Python's KeyboardInterrupt, or DuckDB's, which stops the running query (the
    Python client raises it as a RuntimeError 'Query interrupted')."""
    return isinstance(exc, KeyboardInterrupt | duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc) == "Query interrupted"
    )


def _as_retailhub_error(exc: BaseException, task: Task) -> RetailhubError:
    if isinstance(exc, RetailhubError):
        return exc
    if isinstance(exc, duckdb.IOException | duckdb.OutOfMemoryException):
        return WarehouseUnavailable(f"task {task.name}: {exc}", task=task.name)
    return RetailhubError(f"task {task.name} failed: {type(exc).__name__}: {exc}", task=task.name)


def outputs_from_ledger(rows: dict[str, dict]) -> dict[str, TaskOutput]:
    """Rebuild the outputs of succeeded tasks from their ledger records (for ``--resume``)."""
    return {
        name: TaskOutput(
            rows_in=r.get("rows_in"),
            rows_out=r.get("rows_out"),
            payload=json.loads(r["output_json"]) if r.get("output_json") else {},
        )
        for name, r in rows.items()
    }
