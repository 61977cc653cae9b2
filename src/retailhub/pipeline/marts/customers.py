"""``marts.mart_customer_360``: one row per customer who bought, with everything we know.

RFM is computed in the engine with :func:`retailhub.analytics.rfm.rfm_sql` (per source, as of
the source's reference date), the profile columns (revenue, preferred channel and country) in
SQL over ``mart_order_facts``, and the model columns (CLV, P(alive), churn) by the analytics
functions on one-row-per-customer frames. The pieces are joined in the engine.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retailhub.analytics.rfm import rfm_sql
from retailhub.pipeline.marts.base import ORDER_FACTS, SOURCES
from retailhub.pipeline.marts.churn_scores import (
    ChurnData,
    ChurnOutcome,
    churn_data,
    churn_for_source,
)
from retailhub.pipeline.marts.context import MartContext, SourceInfo
from retailhub.pipeline.marts.lifetime_value import customer_summary, customer_value

if TYPE_CHECKING:
    import pandas as pd

NAME = "mart_customer_360"
#: Purchase orders with a known customer: the input of RFM, CLV and churn.
CUSTOMER_ORDERS = "mart_customer_orders"
RFM = "mart_rfm"
MODEL_SCORES = "_mart_customer_model_scores"

MODEL_COLUMNS = {
    "source_system": "VARCHAR",
    "customer_id": "VARCHAR",
    "clv_12m": "DOUBLE",
    "expected_orders_12m": "DOUBLE",
    "p_alive": "DOUBLE",
    "churn_probability": "DOUBLE",
    "churn_risk": "VARCHAR",
}


@dataclass
class PendingCustomers:
    """The customer mart between :func:`start` and :func:`finish`: its model fits, running."""

    fits: list[Future[tuple[pd.DataFrame, ChurnOutcome]]] = field(default_factory=list)


def start(ctx: MartContext, pool: Executor) -> PendingCustomers:
    """Compute RFM and every frame the models need, and hand the fits to ``pool``.

    Why split: the CLV and churn fits are Python (scipy, scikit-learn) on one-row-per-customer
    frames and leave the second core idle, while the anomaly mart is mostly engine work.
    Started here and collected by :func:`finish` after that mart, the fits run beside it (10M
    rows on 2 cores: the analytics step 14.0 s -> 13.0 s; not more, because the fits and the
    anomaly explanations both need the GIL for their Python parts). The fits never touch the
    connection, so only this thread uses it; what runs beside them must not set warning
    filters (``warnings.catch_warnings`` is process-wide and not thread-safe).
    """
    ctx.execute(
        f"""
        create or replace temp view {CUSTOMER_ORDERS} as
        select source_system, customer_id, order_id, order_date,
               customer_purchase_amount as net_amount
        from {ORDER_FACTS}
        where customer_purchase_amount is not null
        """,
        CUSTOMER_ORDERS,
    )
    with ctx.timed("rfm"):
        _build_rfm(ctx)
    pending = PendingCustomers()
    for source in ctx.sources:
        with ctx.timed("customer model data"):
            summary = customer_summary(ctx, source, CUSTOMER_ORDERS)
            churn = churn_data(ctx, source, CUSTOMER_ORDERS)
        pending.fits.append(pool.submit(_fit, ctx, source, summary, churn))
    return pending


def _fit(
    ctx: MartContext, source: SourceInfo, summary: pd.DataFrame, churn: ChurnData
) -> tuple[pd.DataFrame, ChurnOutcome]:
    """One source's model columns (CLV, P(alive), churn) and its churn decision."""
    with ctx.timed(f"clv {source.source_system}"):
        value = customer_value(ctx, source, summary)
    with ctx.timed(f"churn {source.source_system}"):
        outcome = churn_for_source(ctx, source, churn)
    scores = value
    if outcome.scores is not None:
        scores = value.join(outcome.scores, how="left")
    return scores.reset_index().assign(source_system=source.source_system), outcome


def finish(
    ctx: MartContext, pending: PendingCustomers
) -> tuple[dict[str, Any], list[ChurnOutcome]]:
    """Wait for the fits and build the mart; also return each source's churn decision."""
    import pandas as pd

    results = [future.result() for future in pending.fits]
    frames = [frame for frame, _ in results]
    outcomes = [outcome for _, outcome in results]
    models = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(MODEL_COLUMNS))
    )
    models = models.reindex(columns=list(MODEL_COLUMNS))
    models["customer_id"] = models["customer_id"].astype("string")
    ctx.con.register(MODEL_SCORES, models)
    try:
        mart = ctx.create_mart(
            NAME, _select(ctx), _DEPENDS_ON, grain=("source_system", "customer_key")
        )
    finally:
        ctx.con.unregister(MODEL_SCORES)
    return mart, outcomes


_DEPENDS_ON = (
    "core.fct_sales",
    "core.fct_customer_activity",
    "core.dim_channel",
    "core.dim_geography",
)


def _build_rfm(ctx: MartContext) -> None:
    parts = [
        rfm_sql(
            CUSTOMER_ORDERS,
            source.reference_date,
            where=f"source_system = {source.sql}",
        )
        for source in ctx.sources
    ]
    if not parts:  # no sales at all: an empty RFM table with the right columns
        parts = [rfm_sql(CUSTOMER_ORDERS, where="false")]
    union = " union all ".join(f"select * from ({p})" for p in parts)
    ctx.execute(f"create or replace temp table {RFM} as {union}", RFM)


def _select(ctx: MartContext) -> str:
    geography = ctx.rel("dim_geography")
    channel = ctx.rel("dim_channel")
    activity = ctx.rel("fct_customer_activity")
    return f"""
    with profile as (
        select source_system, customer_id,
               min(customer_key) as customer_key,
               sum(customer_net_amount) as revenue,
               count(*) filter (where customer_purchase_amount is not null) as orders,
               count(*) filter (where is_cancellation) as cancelled_orders
        from {ORDER_FACTS}
        where customer_net_amount is not null
        group by source_system, customer_id
    ),
    purchase_orders as (
        select o.source_system, o.customer_id, g.country, c.channel_name
        from {ORDER_FACTS} as o
        left join {geography} as g on g.geography_key = o.geography_key
        left join {channel} as c on c.channel_key = o.channel_key
        where o.customer_purchase_amount is not null
    ),
    countries as (
        select source_system, customer_id, country, count(*) as n
        from purchase_orders where country is not null
        group by all
    ),
    preferred_country as (
        select source_system, customer_id,
               first(country order by n desc, country) as preferred_country
        from countries group by source_system, customer_id
    ),
    sales_channels as (
        select source_system, customer_id, channel_name, count(*) as n
        from purchase_orders where channel_name is not null
        group by all
    ),
    sales_channel as (
        select source_system, customer_id,
               first(channel_name order by n desc, channel_name) as channel_name
        from sales_channels group by source_system, customer_id
    ),
    activity_channels as (
        select a.customer_key, c.channel_name,
               sum(coalesce(a.orders, 0)) as orders, sum(coalesce(a.sessions, 0)) as sessions
        from {activity} as a
        join {channel} as c on c.channel_key = a.channel_key
        where not c.is_unknown
        group by all
    ),
    activity_channel as (
        select customer_key,
               first(channel_name order by orders desc, sessions desc, channel_name)
                   as channel_name
        from activity_channels group by customer_key
    )
    select r.source_system,
           r.customer_id,
           p.customer_key,
           s.currency_code,
           cast(r.first_order_date as date) as first_purchase_date,
           cast(r.last_order_date as date) as last_purchase_date,
           cast(p.orders as bigint) as orders,
           cast(p.cancelled_orders as bigint) as cancelled_orders,
           cast(p.revenue as decimal(18, 4)) as revenue,
           cast(p.revenue as double) / nullif(p.orders, 0) as avg_order_value,
           coalesce(ac.channel_name, sc.channel_name) as preferred_channel,
           pc.preferred_country,
           cast(r.reference_date as date) as reference_date,
           r.recency_days,
           r.frequency,
           r.monetary,
           r.r_score,
           r.f_score,
           r.m_score,
           r.fm_score,
           r.rfm_score,
           r.segment,
           cast(p.revenue as double) as clv_historical,
           cast(m.clv_12m as double) as clv_12m,
           cast(m.expected_orders_12m as double) as expected_orders_12m,
           cast(m.p_alive as double) as p_alive,
           cast(m.churn_probability as double) as churn_probability,
           cast(m.churn_risk as varchar) as churn_risk,
           r.recommended_action
    from {RFM} as r
    join {SOURCES} as s using (source_system)
    join profile as p using (source_system, customer_id)
    left join preferred_country as pc using (source_system, customer_id)
    left join sales_channel as sc using (source_system, customer_id)
    left join activity_channel as ac on ac.customer_key = p.customer_key
    left join {MODEL_SCORES} as m using (source_system, customer_id)
    order by r.source_system, r.customer_id
    """
