"""Make the run visible: one atomic publish of raw history, quarantine, core, marts, ledger.

Everything a run produces reaches the warehouse here and only here, in one transaction
(or the adapter's stage-and-swap), so a failure at any point leaves the previous state.
"""

from __future__ import annotations

from datetime import UTC, datetime

from retailhub.errors import WarehouseError
from retailhub.pipeline import publish_policy
from retailhub.pipeline.context import PUBLISHED_SCHEMAS, RunContext, TaskOutput, work
from retailhub.pipeline.plan import ANALYTICS, INGEST, TRANSFORM, VALIDATE, Task
from retailhub.pipeline.relations import accepted_table, replaced_files, table_exists
from retailhub.pipeline.steps.health import check_pseudonym_key
from retailhub.warehouse.base import PublishBatch, StagedTable
from retailhub.warehouse.ledger import utcnow


def run(ctx: RunContext, task: Task) -> TaskOutput:
    # again here: a resumed run reuses its health task's success, and the key it was
    # resumed with is the one this publish pseudonymises with
    check_pseudonym_key(ctx)
    batch = PublishBatch(after_table=ctx.publish_hook)
    now = utcnow()
    lineage: list[dict] = []
    files: list[dict] = []
    windows: list[dict] = []
    plan_tasks = list(ctx.outputs)
    for name in plan_tasks:
        if name.startswith(f"{INGEST}:"):
            p = ctx.payload(name)
            for u in p.get("units", []):
                files.append(_file_row(ctx.run_id, p, u))
                lineage.append(_edge(ctx.run_id, u["uri"], f"raw.{p['dataset']}", u["rows"], now))
            if p.get("watermark_window"):
                windows.append(_window_row(ctx, p))
    for name in plan_tasks:
        if not name.startswith(f"{VALIDATE}:"):
            continue
        p = ctx.payload(name)
        dataset = p["dataset"]
        if replaced := replaced_files(ctx, dataset):
            # corrected files: their earlier versions' rows leave the history and quarantine
            batch.delete[f"raw.{dataset}"] = replaced
            batch.delete[f"quarantine.{dataset}"] = replaced
        accepted, quarantined = accepted_table(ctx, dataset), work("quarantined", dataset)
        history = f"raw.{dataset}"
        # Created empty on the first run too (a source's table or API with no row yet), so
        # a query of it works before the first row arrives, as quarantine.<dataset> does.
        first_empty = (
            not p["accepted_rows"]
            and table_exists(ctx, accepted)
            and not ctx.warehouse.table_exists(history)
        )
        if p["accepted_rows"] or first_empty:
            if not table_exists(ctx, accepted):
                raise WarehouseError(
                    f"run {ctx.run_id}: the accepted rows of '{dataset}' ({accepted}) are gone "
                    "(another run has published since this one failed); start a new run",
                    table=accepted,
                )
            batch.append[history] = f"(select *, '{ctx.run_id}' as _run_id from {accepted})"
            batch.adoptable[history] = StagedTable(accepted, {"_run_id": ctx.run_id})
        target = f"quarantine.{dataset}"
        if not table_exists(ctx, quarantined):
            continue
        if not p["quarantined_rows"]:
            # Created empty on the first run, so a query or dashboard of it works before the
            # first bad row arrives; later clean runs add nothing (no empty partitions).
            if not ctx.warehouse.table_exists(target):
                batch.append[target] = quarantined
            continue
        batch.append[target] = quarantined
        lineage.append(_edge(ctx.run_id, f"raw.{dataset}", target, p["quarantined_rows"], now))
    published: dict[str, int] = {}
    for step in (TRANSFORM, ANALYTICS):
        out = ctx.payload(step)
        for m in out.get("models", []) + out.get("marts", []):
            schema = m.get("schema") or m["relation"].split(".")[-2]
            target = f"{schema}.{m['name']}"
            if schema in PUBLISHED_SCHEMAS:
                batch.replace[target] = m["relation"]
                published[target] = m["rows"]
            for src in [*m.get("depends_on", ()), *(f"raw.{s}" for s in m.get("sources", ()))]:
                lineage.append(_edge(ctx.run_id, src, target, m["rows"], now))
    batch.rows["meta.ingested_files"] = files
    if windows:
        # only a source's newest window is ever read: the older ones go in the same transaction
        batch.supersede["meta.watermark_windows"] = [w["source"] for w in windows]
        batch.rows["meta.watermark_windows"] = windows
    batch.rows["meta.lineage"] = lineage
    # -- production publishing: keys, pseudonyms, increments, audit rows ----------------------
    built = [
        m
        for step in (TRANSFORM, ANALYTICS)
        for key in ("models", "marts")
        for m in ctx.payload(step).get(key, [])
    ]
    increments = publish_policy.prepare(
        ctx.warehouse,
        batch,
        built,
        published,
        run_id=ctx.run_id,
        now=ctx.now,
        full_refresh=ctx.full_refresh,
    )
    ctx.warehouse.publish(batch)
    return TaskOutput(
        rows_out=sum(published.values()),
        payload={
            "tables": published,
            "files": len(files),
            "lineage_edges": len(lineage),
            "incremental": increments.mode,
        },
    )


def _file_row(run_id: str, ingest: dict, unit: dict) -> dict:
    return {
        "run_id": run_id,
        "source": ingest["source"],
        "dataset": ingest["dataset"],
        "unit_id": unit.get("unit_id") or unit["uri"],
        "uri": unit["uri"],
        "checksum": unit.get("checksum"),
        "bytes": unit.get("bytes"),
        "rows": unit.get("rows"),
        "modified_at": _ts(unit.get("modified_at")),
        "arrived_at": _ts(unit.get("arrived_at")),
        "watermark": ingest.get("watermark"),
    }


def _window_row(ctx: RunContext, ingest: dict) -> dict:
    window = ingest["watermark_window"]
    table = window["table"]
    if not table_exists(ctx, table):
        raise WarehouseError(
            f"run {ctx.run_id}: the watermark window of source '{ingest['source']}' ({table}) "
            "is gone (another run has published since this one failed); start a new run",
            table=table,
        )
    hashes = [h for (h,) in ctx.con.execute(f"select row_hash from {table}").fetchall()]
    return {
        "run_id": ctx.run_id,
        "source": ingest["source"],
        "watermark": ingest["watermark"],
        "window_from": window["start"],
        "rows": len(hashes),
        "row_hashes": " ".join(hashes),
    }


def _edge(run_id: str, src: str, dst: str, rows: int | None, now: object) -> dict:
    return {
        "run_id": run_id,
        "source_table": src,
        "target_table": dst,
        "rows": rows,
        "recorded_at": now,
    }


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    ts = datetime.fromisoformat(value)
    return ts.replace(tzinfo=None) if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)
