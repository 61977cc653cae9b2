"""What a run produced, as plain data for the console, the web app and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retailhub.errors import EXIT_OK, EXIT_RUNTIME
from retailhub.pipeline.context import RunContext
from retailhub.pipeline.plan import PUBLISH, VALIDATE
from retailhub.pipeline.runner import RunOutcome
from retailhub.pipeline.up_to_date import up_to_date_with


@dataclass
class DatasetSummary:
    dataset: str
    input_rows: int
    accepted_rows: int
    quarantined_rows: int
    score: float | None  # None when no row was checked
    rules_failed: int
    rules_total: int


@dataclass
class RunReport:
    run_id: str
    command: str
    status: str
    exit_code: int
    seconds: float
    error: str | None = None
    datasets: list[DatasetSummary] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    insights: list[dict[str, Any]] = field(default_factory=list)
    resumable: bool = False
    # The run whose published build is still current (no new input, no change): nothing rebuilt.
    up_to_date_with: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == EXIT_OK


def build_report(ctx: RunContext, outcome: RunOutcome, command: str, seconds: float) -> RunReport:
    err = outcome.error
    report = RunReport(
        run_id=ctx.run_id,
        command=command,
        status=outcome.status,
        exit_code=EXIT_OK if err is None else getattr(err, "exit_code", EXIT_RUNTIME),
        seconds=seconds,
        error=str(err) if err else None,
    )
    for name, out in ctx.outputs.items():
        if name.startswith(f"{VALIDATE}:"):
            p = out.payload
            results = p.get("results", [])
            report.datasets.append(
                DatasetSummary(
                    dataset=p["dataset"],
                    input_rows=p["input_rows"],
                    accepted_rows=p["accepted_rows"],
                    quarantined_rows=p["quarantined_rows"],
                    score=p["score"],
                    rules_failed=sum(1 for r in results if not r["passed"]),
                    rules_total=len(results),
                )
            )
            report.quality.extend(results)
    report.tables = dict(ctx.payload(PUBLISH).get("tables", {}))
    report.up_to_date_with = up_to_date_with(ctx)
    report.insights = list(ctx.payload("analytics").get("insights", []))
    for t in outcome.tasks:
        report.stages.append(
            {
                "task": t.name,
                "status": t.status,
                "seconds": round(t.seconds, 3),
                "attempts": t.attempts,
                "rows_in": t.rows_in,
                "rows_out": t.rows_out,
                "error": t.error,
            }
        )
    return report
