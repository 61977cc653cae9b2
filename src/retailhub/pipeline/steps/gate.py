"""The quality gate: record every dataset's results, then stop the run on a blocking breach.

Results are written to the ledger *before* deciding, so a failed gate is still fully
explained in ``meta.quality_results``; nothing else of the run is published.
"""

from __future__ import annotations

import json

from retailhub.errors import AccountingError, QualityGateFailed
from retailhub.pipeline.context import RunContext, TaskOutput
from retailhub.pipeline.plan import VALIDATE, Task
from retailhub.warehouse.ledger import Ledger, utcnow


def run(ctx: RunContext, task: Task) -> TaskOutput:
    now = utcnow()
    results, accounting, blocking = [], [], []
    for name in task.depends_on:
        if not name.startswith(f"{VALIDATE}:"):
            continue
        p = ctx.payload(name)
        if p["input_rows"] != p["accepted_rows"] + p["quarantined_rows"]:
            raise AccountingError(
                f"dataset {p['dataset']}: {p['input_rows']} input rows but "
                f"{p['accepted_rows']} accepted + {p['quarantined_rows']} quarantined",
                dataset=p["dataset"],
            )
        accounting.append(
            {
                "run_id": ctx.run_id,
                "dataset": p["dataset"],
                "input_rows": p["input_rows"],
                "accepted_rows": p["accepted_rows"],
                "quarantined_rows": p["quarantined_rows"],
                "quality_score": p["score"],
                "recorded_at": now,
            }
        )
        for r in p["results"]:
            results.append(_result_row(ctx.run_id, r, now))
            if r["severity"] == "error" and not r["passed"]:
                blocking.append(r)
    ledger = Ledger(ctx.warehouse)
    ledger.wh.insert_rows("meta.quality_results", results)
    ledger.wh.insert_rows("meta.dataset_accounting", accounting)
    totals = {
        k: sum(a[k] for a in accounting)
        for k in ("input_rows", "accepted_rows", "quarantined_rows")
    }
    if blocking:
        lines = [
            f"  {r['dataset']}.{r['rule']}: {r.get('message') or ''} "
            f"(metric {r['metric']:.4g}, threshold {r['threshold']})"
            for r in blocking
        ]
        raise QualityGateFailed(
            f"quality gate failed: {len(blocking)} blocking rule(s) breached; nothing was "
            "published\n" + "\n".join(lines)
        )
    return TaskOutput(
        rows_in=totals["input_rows"],
        rows_out=totals["accepted_rows"],
        payload={"totals": totals, "warnings": sum(1 for r in results if not r["passed"])},
    )


def _result_row(run_id: str, r: dict, now: object) -> dict:
    return {
        "run_id": run_id,
        "dataset": r["dataset"],
        "rule": r["rule"],
        "kind": r.get("kind"),
        "column_name": r.get("column"),
        "severity": r.get("severity"),
        "action": r.get("action"),
        "metric": r.get("metric"),
        "threshold": r.get("threshold"),
        "passed": r.get("passed"),
        "failing_rows": r.get("failing_rows"),
        "rows_checked": r.get("rows_checked"),
        "sample": json.dumps(r.get("sample"), default=str),
        "message": r.get("message"),
        "checked_at": now,
    }
