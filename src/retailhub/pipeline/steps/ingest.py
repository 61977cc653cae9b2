"""Land the new input units of one source in the run's scratch database.

Only units the ledger has not seen (by checksum, or past the stored watermark) are read,
which is what makes re-running on unchanged files a no-op.
"""

from __future__ import annotations

from retailhub.pipeline.context import RunContext, TaskOutput, work
from retailhub.pipeline.plan import Task
from retailhub.sources import SourceState, build_source
from retailhub.sources.landing import land
from retailhub.warehouse.ledger import Ledger


def run(ctx: RunContext, task: Task) -> TaskOutput:
    name = task.target or ""
    cfg = ctx.settings.sources[name]
    source = build_source(cfg, ctx.project.root)
    ledger = Ledger(ctx.warehouse)
    state = SourceState(
        ingested_checksums=ledger.ingested_checksums(name),
        last_watermark=ledger.last_watermark(name),
    )
    units = source.discover(state)
    table = work("landing", name)
    ctx.con.execute(f"drop table if exists {table}")
    ctx.progress.task_started(task.name, total=None)
    landed = land(
        ctx.con,
        source,
        units,
        table,
        progress=lambda rows: ctx.progress.task_advanced(task.name, rows),
    )
    watermark = source.new_watermark() if landed else None
    rows = sum(u.rows for u in landed)
    return TaskOutput(
        rows_in=rows,
        rows_out=rows,
        payload={
            "source": name,
            "dataset": cfg.dataset or cfg.layout,
            "table": table if landed else None,
            "watermark": watermark,
            "units": [_unit_dict(u) for u in landed],
            "skipped_unchanged": _skipped(source, state, len(units)),
        },
    )


def _unit_dict(unit: object) -> dict[str, object]:
    from dataclasses import asdict, is_dataclass

    data = asdict(unit) if is_dataclass(unit) else dict(vars(unit))  # type: ignore[arg-type]
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}


def _skipped(source: object, state: SourceState, new_units: int) -> int | None:
    # Reported for the summary only; not every source type can count what it skipped.
    return None if not state.ingested_checksums else len(state.ingested_checksums)
