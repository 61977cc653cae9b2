"""Build the analytics marts (schema ``marts``) from the core star schema."""

from __future__ import annotations

from retailhub.pipeline.context import RunContext, TaskOutput
from retailhub.pipeline.plan import Task


def run(ctx: RunContext, task: Task) -> TaskOutput:
    from retailhub.pipeline.marts import build_marts, headline_insights

    built = build_marts(ctx)
    return TaskOutput(
        rows_out=sum(m["rows"] for m in built),
        payload={"marts": built, "insights": headline_insights(built)},
    )
