"""The two aggregates every mart starts from, built once per run in the engine.

``core.fct_sales`` can hold tens of millions of lines; reading it once per mart would cost more
than everything else together. Two temp tables are built in one pass each and the marts read
them instead:

* ``mart_order_facts`` — one row per order (source_system, order_id) over **product lines**
  (``is_product and not is_adjustment``): its date, customer, channel, place, whether it is a
  cancellation, ``purchase_amount`` (the sum of its purchase lines: not cancelled, positive
  amount; NULL for an order without any) and its net amount, units and margin. The
  ``customer_*`` amounts only sum the lines that carry the customer id: a line whose
  customer is missing (a defect of the generated data, or a real gap) is revenue of the shop
  but not of the customer, as in :data:`retailhub.analytics.rfm.FCT_SALES_PURCHASE_FILTER`.
  An order has at most one customer in these sources (an invoice belongs to one buyer).
* ``mart_product_month`` — one row per product and calendar month with sales: net revenue,
  units, purchase orders, margin.

Money stays DECIMAL until the last step, so sums are exact and identical on every run (a
parallel sum of doubles can differ in its last bits).
"""

from __future__ import annotations

from retailhub.pipeline.marts.context import MartContext, sql_str

ORDER_FACTS = "mart_order_facts"
PRODUCT_MONTH = "mart_product_month"
SOURCES = "mart_sources"

#: Predicate on ``core.fct_sales`` for the lines that count as product revenue.
PRODUCT_LINE = "f.is_product and not f.is_adjustment"
#: Predicate (on top of :data:`PRODUCT_LINE`) for a purchase line.
PURCHASE_LINE = "not f.is_cancellation and f.net_amount > 0"

#: A month is complete when the source has data within this many days of both its ends.
MONTH_EDGE_DAYS = 2
#: A week (Monday..Sunday) is complete when at most this many days are missing at its ends.
WEEK_EDGE_DAYS = 1


def build_sources_table(ctx: MartContext) -> None:
    """``mart_sources``: source, currency and date range (the calendar of every mart)."""
    if ctx.sources:
        values = ", ".join(
            f"({s.sql}, {sql_str(s.currency_code)}, DATE '{s.first_date}', DATE '{s.last_date}')"
            for s in ctx.sources
        )
        body = (
            "select * from (values "
            + values
            + ") as s(source_system, currency_code, first_date, last_date)"
        )
    else:
        body = (
            "select cast(null as varchar) as source_system, cast(null as varchar) as "
            "currency_code, cast(null as date) as first_date, cast(null as date) as last_date "
            "where false"
        )
    ctx.execute(f"create or replace temp table {SOURCES} as {body}", SOURCES)


def build_order_facts(ctx: MartContext) -> None:
    fct = ctx.rel("fct_sales")
    ctx.execute(
        f"""
        create or replace temp table {ORDER_FACTS} as
        select f.source_system,
               f.order_id,
               min(f.order_date) as order_date,
               min(f.customer_id) as customer_id,
               min(f.customer_key) filter (where f.customer_id is not null) as customer_key,
               min(f.channel_key) as channel_key,
               min(f.geography_key) as geography_key,
               bool_or(f.is_cancellation) as is_cancellation,
               sum(f.net_amount) filter (where {PURCHASE_LINE}) as purchase_amount,
               sum(f.net_amount) as net_amount,
               sum(f.net_amount) filter (where {PURCHASE_LINE} and f.customer_id is not null)
                   as customer_purchase_amount,
               sum(f.net_amount) filter (where f.customer_id is not null) as customer_net_amount,
               sum(f.quantity) as units,
               sum(f.profit_amount) as profit_amount,
               sum(f.net_amount) filter (where f.profit_amount is not null) as costed_amount
        from {fct} as f
        where {PRODUCT_LINE} and f.order_date is not null
        group by f.source_system, f.order_id
        """,
        ORDER_FACTS,
    )


def build_product_month(ctx: MartContext) -> None:
    fct = ctx.rel("fct_sales")
    ctx.execute(
        f"""
        create or replace temp table {PRODUCT_MONTH} as
        select f.source_system,
               f.product_key,
               cast(date_trunc('month', f.order_date) as date) as month,
               sum(f.net_amount) as revenue,
               sum(f.quantity) as units,
               count(distinct f.order_id) filter (where {PURCHASE_LINE}) as orders,
               sum(f.profit_amount) as margin_amount,
               sum(f.net_amount) filter (where f.profit_amount is not null) as costed_revenue
        from {fct} as f
        where {PRODUCT_LINE} and f.order_date is not null
        group by all
        """,
        PRODUCT_MONTH,
    )


def partial_month_sql(month: str, source_alias: str) -> str:
    """SQL boolean: the month starting at ``month`` is not fully covered by its source's data."""
    s = source_alias
    return (
        f"(date_diff('day', {month}, {s}.first_date) > {MONTH_EDGE_DAYS} "
        f"or date_diff('day', {s}.last_date, cast({month} + interval 1 month as date) - 1) "
        f"> {MONTH_EDGE_DAYS})"
    )


def partial_week_sql(week: str, source_alias: str) -> str:
    """SQL boolean: the Monday-to-Sunday week starting at ``week`` is not covered."""
    s = source_alias
    return (
        f"(date_diff('day', {week}, {s}.first_date) > {WEEK_EDGE_DAYS} "
        f"or date_diff('day', {s}.last_date, cast({week} + interval 6 day as date)) "
        f"> {WEEK_EDGE_DAYS})"
    )
