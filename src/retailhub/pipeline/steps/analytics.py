"""Build the analytics marts (schema ``marts``) from the core star schema."""

from __future__ import annotations

from retailhub.pipeline.context import RunContext, TaskOutput
from retailhub.pipeline.plan import Task
from retailhub.pipeline.up_to_date import UP_TO_DATE, up_to_date_with


def run(ctx: RunContext, task: Task) -> TaskOutput:
    from retailhub.pipeline.marts import build_marts, headline_insights

    if built_by := up_to_date_with(ctx):
        # The marts derive from the star schema alone, which this run found current.
        return TaskOutput(rows_out=0, payload={UP_TO_DATE: built_by})

    built = build_marts(ctx)
    return TaskOutput(
        rows_out=sum(m["rows"] for m in built),
        payload={"marts": built, "insights": headline_insights(built)},
    )
