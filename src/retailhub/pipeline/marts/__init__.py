"""The analytics marts (schema ``marts``), built from the core star schema in the engine.

``build_marts(ctx)`` is called by the pipeline's ``analytics`` task. It aggregates the fact
table twice (orders, product-months), builds every mart as a table ``work.marts.<name>`` in the
run's scratch database, and returns one entry per mart for the publish step, which makes them
visible atomically with the rest of the run. Heavy work stays in DuckDB; only one-row-per-
customer, per-day and per-period frames reach pandas for the model fits.

Modules, one mart family each: :mod:`.kpis`, :mod:`.products`, :mod:`.customers` (with
:mod:`.lifetime_value` and :mod:`.churn_scores`), :mod:`.anomalies`, :mod:`.forecasts`,
:mod:`.insights`, :mod:`.evaluation`. Definitions: ``docs/analytics.md``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from retailhub.errors import ModelError
from retailhub.pipeline.context import WORK, RunContext
from retailhub.pipeline.marts import (
    anomalies,
    customers,
    evaluation,
    forecasts,
    insights,
    kpis,
    products,
)
from retailhub.pipeline.marts.base import (
    build_order_facts,
    build_product_month,
    build_sources_table,
)
from retailhub.pipeline.marts.context import (
    CORE_MODELS,
    MARTS_SCHEMA,
    MartContext,
    load_sources,
)

log = logging.getLogger(__name__)

#: Every mart, in build order.
MART_NAMES = (
    kpis.NAME,
    products.PERFORMANCE,
    products.CATEGORY_TRENDS,
    customers.NAME,
    anomalies.NAME,
    forecasts.NAME,
    insights.NAME,
    evaluation.NAME,
)


def build_marts(ctx: RunContext) -> list[dict[str, Any]]:
    """Build every mart; the ``mart_insights`` entry carries the run's headline insights."""
    mart_ctx = MartContext(
        con=ctx.con,
        relations=_core_relations(ctx),
        config=ctx.settings.analytics,
        catalog=WORK,
        dialect=ctx.warehouse.engine,
    )
    return build_all(mart_ctx, progress=lambda: ctx.progress.task_advanced("analytics", 1))


def build_all(ctx: MartContext, progress: Any = None) -> list[dict[str, Any]]:
    """Build the marts from the relations in ``ctx`` (the pipeline's seam, and the tests')."""

    def step() -> None:
        if progress is not None:
            progress()

    ctx.execute(f"create schema if not exists {ctx.catalog}.{MARTS_SCHEMA}", MARTS_SCHEMA)
    ctx.sources = load_sources(ctx)
    built: list[dict[str, Any]] = []
    with ctx.timed("base aggregates"):
        build_sources_table(ctx)
        build_order_facts(ctx)
        build_product_month(ctx)
    step()
    with ctx.timed("kpis and products"):
        built.append(kpis.build(ctx))
        built.append(products.build_performance(ctx))
        built.append(products.build_category_trends(ctx))
    step()
    # Forecasts first: statsmodels' fits run under warnings.catch_warnings(), which changes
    # process-wide filters and is not thread-safe, so nothing else may run beside them.
    forecast_mart, outcomes = forecasts.build(ctx)
    step()
    # The customer models fit on a worker thread while this one builds the anomaly mart
    # (customers.start says why); the connection stays on this thread.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rh-fit") as fits:
        pending = customers.start(ctx, fits)
        with ctx.timed("anomalies"):
            anomaly_mart, daily = anomalies.build(ctx)
        step()
        customer_mart, churn = customers.finish(ctx, pending)
    built += [customer_mart, anomaly_mart, forecast_mart]
    step()
    with ctx.timed("insights"):
        built.append(insights.build(ctx, churn, daily, outcomes))
    built.append(evaluation.build(ctx))
    # Timings vary from run to run, so they go to the task payload (the ledger), not a mart.
    built[-1]["seconds"] = {k: round(v, 3) for k, v in sorted(ctx.timings.items())}
    step()
    return built


def headline_insights(built: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The insights the run report prints (carried by the ``mart_insights`` entry)."""
    for mart in built:
        if mart["name"] == insights.NAME:
            return list(mart.get("insights", []))
    return []


def _core_relations(ctx: RunContext) -> dict[str, str]:
    models = {m["name"]: m["relation"] for m in ctx.payload("transform").get("models", [])}
    missing = [name for name in CORE_MODELS if name not in models]
    if missing:
        raise ModelError(
            f"analytics needs the core models {', '.join(missing)}, which the transform step "
            "did not build",
            model="analytics",
        )
    return {name: models[name] for name in CORE_MODELS}
