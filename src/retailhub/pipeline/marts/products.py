"""``mart_product_performance`` and ``mart_category_trends``: what sells, and what is changing.

Both read ``mart_product_month`` (one row per product and month with sales) so the fact table
is scanned once. ABC classes follow :func:`retailhub.analytics.products.abc_classes` exactly
(a test compares them), growth follows :func:`~retailhub.analytics.products.period_growth`
(calendar-matched: a product without sales in the previous month has no previous value).
"""

from __future__ import annotations

from typing import Any

from retailhub.pipeline.marts.base import PRODUCT_MONTH, SOURCES, partial_month_sql
from retailhub.pipeline.marts.context import MartContext

PERFORMANCE = "mart_product_performance"
CATEGORY_TRENDS = "mart_category_trends"

#: Label for products without a category (every real Online Retail product).
UNCATEGORISED = "Uncategorised"
#: |trend change| above this is a trend ("up"/"down"), else "flat".
TREND_THRESHOLD = 0.05
#: ABC boundaries (Pareto 80/15/5) and the float tolerance of ``abc_classes``.
ABC_A, ABC_B, ABC_TOL = 0.80, 0.95, 1e-9


def build_performance(ctx: MartContext) -> dict[str, Any]:
    product = ctx.rel("dim_product")
    select = f"""
    with pm as (
        select pm.*, greatest(pm.revenue, 0) as positive_revenue,
               p.product_id, p.product_name, p.category, p.sub_category
        from {PRODUCT_MONTH} as pm
        join {product} as p using (product_key)
    ),
    ranked as (
        select pm.*,
               sum(positive_revenue) over (partition by source_system, month)
                   as month_positive_revenue,
               coalesce(sum(positive_revenue) over (
                   partition by source_system, month
                   order by revenue desc, product_id, product_key
                   rows between unbounded preceding and 1 preceding), 0) as revenue_before,
               row_number() over (
                   partition by source_system, month
                   order by revenue desc, product_id, product_key) as revenue_rank
        from pm
    ),
    shared as (
        select ranked.*,
               case when month_positive_revenue > 0
                    then cast(positive_revenue as double) / cast(month_positive_revenue as double)
                    else 0 end as revenue_share,
               case when month_positive_revenue > 0
                    then cast(revenue_before as double) / cast(month_positive_revenue as double)
                    else 0 end as share_before
        from ranked
    )
    select c.source_system,
           s.currency_code,
           c.month,
           c.product_key,
           c.product_id,
           c.product_name,
           c.category,
           c.sub_category,
           cast(c.revenue as decimal(18, 4)) as revenue,
           cast(c.units as bigint) as units,
           cast(c.orders as bigint) as orders,
           cast(c.margin_amount as decimal(18, 4)) as margin_amount,
           cast(c.margin_amount as double) / nullif(cast(c.costed_revenue as double), 0)
               as margin_rate,
           c.revenue_share,
           cast(c.revenue_rank as bigint) as revenue_rank,
           c.share_before as cumulative_share_before,
           case when c.positive_revenue <= 0 then 'C'
                when c.share_before < {ABC_A} - {ABC_TOL} then 'A'
                when c.share_before < {ABC_B} - {ABC_TOL} then 'B'
                else 'C' end as abc_class,
           cast(prev.revenue as decimal(18, 4)) as revenue_prev_month,
           case when prev.revenue <> 0
                then cast(c.revenue - prev.revenue as double) / abs(cast(prev.revenue as double))
                end as growth_mom,
           cast(ly.revenue as decimal(18, 4)) as revenue_prev_year,
           case when ly.revenue <> 0
                then cast(c.revenue - ly.revenue as double) / abs(cast(ly.revenue as double))
                end as growth_yoy,
           {partial_month_sql("c.month", "s")} as is_partial_month
    from shared as c
    join {SOURCES} as s using (source_system)
    left join {PRODUCT_MONTH} as prev
        on prev.source_system = c.source_system and prev.product_key = c.product_key
       and prev.month = cast(c.month - interval 1 month as date)
    left join {PRODUCT_MONTH} as ly
        on ly.source_system = c.source_system and ly.product_key = c.product_key
       and ly.month = cast(c.month - interval 12 month as date)
    order by c.source_system, c.month, c.revenue_rank
    """
    return ctx.create_mart(
        PERFORMANCE,
        select,
        ("core.fct_sales", "core.dim_product"),
        grain=("source_system", "product_key", "month"),
    )


def build_category_trends(ctx: MartContext) -> dict[str, Any]:
    product = ctx.rel("dim_product")
    select = f"""
    with lines as (
        select pm.source_system, pm.month,
               coalesce(p.category, '{UNCATEGORISED}') as category,
               coalesce(p.sub_category, '{UNCATEGORISED}') as sub_category,
               pm.revenue, pm.units
        from {PRODUCT_MONTH} as pm
        join {product} as p using (product_key)
    ),
    grouped as (
        select source_system, category,
               case when grouping(sub_category) = 1 then null else sub_category end
                   as sub_category,
               case when grouping(sub_category) = 1 then 'category' else 'sub_category' end
                   as level,
               month, sum(revenue) as revenue, sum(units) as units, count(*) as products
        from lines
        group by grouping sets ((source_system, category, month),
                                (source_system, category, sub_category, month))
    ),
    members as (
        select g.source_system, g.level, g.category, g.sub_category,
               min(g.month) as first_month, max(s.last_date) as last_date
        from grouped as g join {SOURCES} as s using (source_system)
        group by all
    ),
    grid as (
        select m.source_system, m.level, m.category, m.sub_category,
               cast(unnest(generate_series(
                   cast(m.first_month as timestamp),
                   cast(date_trunc('month', m.last_date) as timestamp),
                   interval 1 month)) as date) as month
        from members as m
    ),
    filled as (
        select g.source_system, g.level, g.category, g.sub_category, g.month,
               coalesce(x.revenue, 0) as revenue,
               coalesce(x.units, 0) as units,
               coalesce(x.products, 0) as products
        from grid as g
        left join grouped as x
            on x.source_system = g.source_system and x.level = g.level
           and x.category = g.category
           and x.sub_category is not distinct from g.sub_category
           and x.month = g.month
    ),
    windowed as (
        select f.*,
               lag(revenue, 1) over w as revenue_prev_month,
               lag(revenue, 12) over w as revenue_prev_year,
               case when row_number() over w >= 3
                    then sum(revenue) over (w rows between 2 preceding and current row)
                    end as revenue_3m
        from filled as f
        window w as (partition by source_system, level, category, sub_category order by month)
    ),
    based as (
        select w.*,
               lag(revenue_3m, 12) over m as revenue_3m_prev_year,
               lag(revenue_3m, 3) over m as revenue_3m_prev
        from windowed as w
        window m as (partition by source_system, level, category, sub_category order by month)
    ),
    trended as (
        select b.*,
               case when revenue_3m_prev_year is not null then 'year_over_year'
                    when revenue_3m_prev is not null then 'previous_3_months' end
                   as trend_basis,
               coalesce(revenue_3m_prev_year, revenue_3m_prev) as trend_base
        from based as b
    )
    select t.source_system,
           s.currency_code,
           t.month,
           t.level,
           t.category,
           t.sub_category,
           cast(t.revenue as decimal(18, 4)) as revenue,
           cast(t.units as bigint) as units,
           cast(t.products as bigint) as products,
           cast(t.revenue_prev_month as decimal(18, 4)) as revenue_prev_month,
           case when t.revenue_prev_month <> 0
                then cast(t.revenue - t.revenue_prev_month as double)
                     / abs(cast(t.revenue_prev_month as double)) end as mom_growth,
           cast(t.revenue_prev_year as decimal(18, 4)) as revenue_prev_year,
           case when t.revenue_prev_year <> 0
                then cast(t.revenue - t.revenue_prev_year as double)
                     / abs(cast(t.revenue_prev_year as double)) end as yoy_growth,
           cast(t.revenue_3m as decimal(18, 4)) as revenue_3m,
           t.trend_basis,
           case when t.trend_base <> 0
                then cast(t.revenue_3m - t.trend_base as double)
                     / abs(cast(t.trend_base as double)) end as trend_change,
           case when t.trend_basis is null or {partial_month_sql("t.month", "s")} then null
                when t.trend_base = 0 then case when t.revenue_3m > 0 then 'up' else 'flat' end
                when (t.revenue_3m - t.trend_base) / abs(t.trend_base) > {TREND_THRESHOLD}
                    then 'up'
                when (t.revenue_3m - t.trend_base) / abs(t.trend_base) < -{TREND_THRESHOLD}
                    then 'down'
                else 'flat' end as trend_direction,
           {partial_month_sql("t.month", "s")} as is_partial_month
    from trended as t
    join {SOURCES} as s using (source_system)
    order by t.source_system, t.level, t.category, t.sub_category nulls first, t.month
    """
    # No primary key: a category-level row has no sub-category (NULL)
    return ctx.create_mart(
        CATEGORY_TRENDS,
        select,
        ("core.fct_sales", "core.dim_product"),
        indexes=(("source_system", "month"),),
    )
