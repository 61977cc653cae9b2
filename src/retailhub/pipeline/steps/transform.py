"""Build the SQL models (staging → intermediate → core star schema) in the compute database."""

from __future__ import annotations

from dataclasses import asdict

from retailhub.errors import ModelError
from retailhub.models.checks import test_models
from retailhub.models.graph import load_models
from retailhub.models.runner import build_models
from retailhub.pipeline.context import PUBLISHED_SCHEMAS, WORK, RunContext, TaskOutput
from retailhub.pipeline.plan import Task, datasets_of
from retailhub.pipeline.relations import current_relation
from retailhub.pipeline.up_to_date import FINGERPRINT, UP_TO_DATE, build_fingerprint, current_build

BUILT_IN_DATASETS = ("online_retail", "superstore", "product_catalog", "customer_behaviour")


def run(ctx: RunContext, task: Task) -> TaskOutput:
    extra = [ctx.project.resolve("models")] if ctx.project.resolve("models").is_dir() else []
    models = load_models(extra)
    fingerprint = build_fingerprint(ctx, extra)
    if built_by := current_build(ctx, models, fingerprint):
        # No new input and nothing that shapes the build changed: the published tables stand.
        return TaskOutput(rows_out=0, payload={FINGERPRINT: fingerprint, UP_TO_DATE: built_by})
    datasets = datasets_of(ctx.settings)
    relations = {}
    for dataset in sorted(set(BUILT_IN_DATASETS) | set(datasets)):
        layout = (
            ctx.settings.sources[datasets[dataset][0]].layout if dataset in datasets else dataset
        )
        relations[dataset] = current_relation(ctx, dataset, layout)
    # Tables to be published are built where the warehouse can publish them by a rename.
    locations = {
        m.name: staged
        for m in models
        if m.schema in PUBLISHED_SCHEMAS and (staged := ctx.staging_table(f"{m.schema}.{m.name}"))
    }
    built = build_models(
        ctx.con,
        models,
        relations,
        schema_prefix=f"{WORK}.",
        locations=locations,
        progress=lambda name: ctx.progress.task_advanced(task.name, 1, total=len(models)),
    )
    failures = test_models(ctx.con, built)
    if failures:
        raise ModelError(
            "model tests failed:\n" + "\n".join(f"  {f}" for f in failures[:20]),
        )
    rows = sum(b.rows for b in built)
    return TaskOutput(
        rows_out=rows,
        payload={
            "models": [asdict(b) for b in built],
            "sources": relations,
            FINGERPRINT: fingerprint,
        },
    )
