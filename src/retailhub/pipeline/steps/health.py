"""First task of every run: the warehouse answers, its schemas exist, sources are buildable."""

from __future__ import annotations

from retailhub.pipeline.context import WORK, RunContext, TaskOutput
from retailhub.pipeline.plan import Task
from retailhub.sources import build_source

WORK_SCHEMAS = ("landing", "accepted", "quarantined", "stg", "int", "core", "marts")


def run(ctx: RunContext, task: Task) -> TaskOutput:
    ctx.warehouse.init_schema()
    for schema in WORK_SCHEMAS:
        ctx.con.execute(f"create schema if not exists {WORK}.{schema}")
    sources = {}
    for name, cfg in ctx.settings.sources.items():
        if cfg.enabled:
            build_source(cfg, ctx.project.root)  # config errors surface before any data moves
            sources[name] = cfg.type
    return TaskOutput(
        payload={"warehouse": ctx.warehouse.display_url, "sources": sources},
    )
