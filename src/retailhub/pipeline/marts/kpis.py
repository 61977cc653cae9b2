"""``marts.mart_kpi_daily``: the shop's vital signs per day and source system.

One row per source and calendar day that has at least one product line. Definitions
(``docs/analytics.md``): revenue is **net** product revenue (cancellations subtract on the day
they are booked), orders and customers count purchase orders, the average order value is net
revenue per purchase order (as in ``mart_customer_360`` and the insights), the cancellation
rate is the share of the day's orders that are cancellations, and the margin is only summed
over lines whose profit is known.
"""

from __future__ import annotations

from typing import Any

from retailhub.pipeline.marts.base import ORDER_FACTS, SOURCES
from retailhub.pipeline.marts.context import MartContext

NAME = "mart_kpi_daily"

#: Daily metrics the anomaly detector scores.
ANOMALY_METRICS = ("revenue", "orders", "customers", "avg_order_value")


def build(ctx: MartContext) -> dict[str, Any]:
    select = f"""
    with per_day as (
        select source_system,
               order_date as date,
               sum(net_amount) as revenue,
               coalesce(sum(purchase_amount), 0) as gross_revenue,
               coalesce(-sum(net_amount) filter (where is_cancellation), 0) as cancelled_amount,
               count(*) filter (where purchase_amount is not null) as orders,
               count(*) filter (where is_cancellation) as cancelled_orders,
               count(distinct customer_id) filter (where customer_purchase_amount is not null)
                   as customers,
               sum(units) as units,
               sum(profit_amount) as margin_amount,
               sum(costed_amount) as costed_revenue
        from {ORDER_FACTS}
        group by source_system, order_date
    ),
    first_purchase as (
        select source_system, customer_id, min(order_date) as first_date
        from {ORDER_FACTS}
        where customer_purchase_amount is not null
        group by source_system, customer_id
    ),
    new_customers as (
        select source_system, first_date as date, count(*) as new_customers
        from first_purchase
        group by source_system, first_date
    )
    select d.source_system,
           s.currency_code,
           d.date,
           cast(d.revenue as decimal(18, 4)) as revenue,
           cast(d.gross_revenue as decimal(18, 4)) as gross_revenue,
           cast(d.cancelled_amount as decimal(18, 4)) as cancelled_amount,
           cast(d.orders as bigint) as orders,
           cast(d.cancelled_orders as bigint) as cancelled_orders,
           cast(d.cancelled_orders as double)
               / nullif(d.orders + d.cancelled_orders, 0) as cancellation_rate,
           cast(d.customers as bigint) as customers,
           cast(coalesce(n.new_customers, 0) as bigint) as new_customers,
           cast(d.revenue as double) / nullif(d.orders, 0) as avg_order_value,
           cast(d.units as bigint) as units,
           cast(d.margin_amount as decimal(18, 4)) as margin_amount,
           cast(d.margin_amount as double) / nullif(cast(d.costed_revenue as double), 0)
               as margin_rate
    from per_day as d
    join {SOURCES} as s using (source_system)
    left join new_customers as n using (source_system, date)
    order by d.source_system, d.date
    """
    return ctx.create_mart(NAME, select, ("core.fct_sales",), grain=("source_system", "date"))
