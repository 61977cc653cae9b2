"""``marts.mart_anomalies``: days whose KPIs broke their pattern, and extreme order lines.

Two kinds of rows:

* ``daily_kpi`` — :func:`retailhub.analytics.anomalies.detect_anomalies` on the source's
  ``mart_kpi_daily`` (revenue, orders, customers, average order value; same-weekday median
  expectation, robust z). Each row says which category, product and country drove it
  (:func:`~retailhub.analytics.anomalies.explain_anomaly` on breakdowns read for the anomaly
  days and their same-weekday neighbours only).
* ``transaction`` — order lines whose quantity or amount is extreme for their product
  (:func:`~retailhub.analytics.anomalies.transaction_outliers_sql`, in the engine), over the last
  ``analytics.outlier_days`` days of the source; the ``analytics.max_transaction_anomalies``
  most extreme per metric are kept, the total count goes to ``mart_model_evaluation``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from retailhub.analytics.anomalies import (
    anomaly_sentence,
    detect_anomalies,
    explain_anomaly,
    outlier_sentence,
    transaction_outliers_sql,
)
from retailhub.pipeline.marts import kpis
from retailhub.pipeline.marts.base import ORDER_FACTS, PRODUCT_LINE, PURCHASE_LINE
from retailhub.pipeline.marts.context import MartContext, SourceInfo, sql_date
from retailhub.pipeline.marts.currency import symbol

if TYPE_CHECKING:
    import pandas as pd

NAME = "mart_anomalies"
MODEL = "anomalies"
COLUMNS = {
    "source_system": "VARCHAR",
    "currency_code": "VARCHAR",
    "kind": "VARCHAR",
    "metric": "VARCHAR",
    "date": "DATE",
    "observed": "DOUBLE",
    "expected": "DOUBLE",
    "score": "DOUBLE",
    "direction": "VARCHAR",
    "explanation": "VARCHAR",
    "driver_dimension": "VARCHAR",
    "driver_member": "VARCHAR",
    "driver_share": "DOUBLE",
    "order_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "product_id": "VARCHAR",
}
#: Dimensions a KPI anomaly is attributed to, per metric (non-additive metrics: none).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "revenue": ("category", "product", "country"),
    "orders": ("country",),
    "customers": ("country",),
}
#: Same-weekday neighbours on each side used by the detector and the attribution.
WEEKS = 4
#: Most specific dimension first, for the ``driver_*`` columns.
SPECIFICITY = ("product", "category", "country")
#: A member explaining at least this share of the change can be "the" driver.
MAIN_DRIVER_SHARE = 0.5


def build(ctx: MartContext) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Build the mart; also return each source's daily anomalies (for the insights)."""
    import pandas as pd

    frames = []
    daily_by_source: dict[str, pd.DataFrame] = {}
    for source in ctx.sources:
        daily = _daily_anomalies(ctx, source)
        daily_by_source[source.source_system] = daily
        frames.append(daily)
        with ctx.timed("transaction outliers"):
            frames.append(_transaction_anomalies(ctx, source))
    frames = [f for f in frames if not f.empty]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    mart = ctx.create_mart_from_frame(
        NAME,
        table,
        COLUMNS,
        "source_system, kind, date, metric, abs(score) desc, order_id, product_id",
        ("marts.mart_kpi_daily", "core.fct_sales", "core.dim_product", "core.dim_geography"),
        indexes=(("source_system", "date"),),
    )
    return mart, daily_by_source


def _daily_anomalies(ctx: MartContext, source: SourceInfo) -> pd.DataFrame:
    import pandas as pd

    metrics = ", ".join(f"cast({m} as double) as {m}" for m in kpis.ANOMALY_METRICS)
    daily = ctx.frame(
        f"select date, {metrics} from {ctx.mart(kpis.NAME)} "
        f"where source_system = {source.sql} order by date",
        "mart_anomalies",
    )
    name = source.source_system
    if len(daily) < 2 * WEEKS + 1:
        ctx.record(name, MODEL, "skipped", None, f"only {len(daily)} days of data")
        return pd.DataFrame()
    found = detect_anomalies(
        daily, list(kpis.ANOMALY_METRICS), threshold=ctx.config.anomaly_threshold, weeks=WEEKS
    )
    for key in ("n_tested", "n_flagged", "flag_rate", "threshold"):
        ctx.record(name, MODEL, key, found.attrs[key])
    if found.empty:
        return pd.DataFrame()
    breakdowns = _breakdowns(ctx, source, found)
    currency = symbol(source.currency_code)
    rows = []
    for row in found.itertuples(index=False):  # flagged days: a handful per source
        drivers = []
        for dimension in DIMENSIONS.get(row.metric, ()):
            driver = _top_driver(
                breakdowns.get((row.metric, dimension)),
                row.date,
                row.metric,
                row.observed - row.expected,
            )
            if driver is not None:
                drivers.append((dimension, *driver))
        rows.append(
            {
                "source_system": name,
                "currency_code": source.currency_code,
                "kind": "daily_kpi",
                "metric": row.metric,
                "date": pd.Timestamp(row.date).date(),
                "observed": row.observed,
                "expected": row.expected,
                "score": row.score,
                "direction": row.direction,
                "explanation": anomaly_sentence(
                    row.metric,
                    row.date,
                    row.observed,
                    row.expected,
                    drivers,
                    currency=currency,
                    money=row.metric in ("revenue", "avg_order_value"),
                ),
                **_main_driver(drivers),
            }
        )
    return pd.DataFrame(rows)


def _main_driver(drivers: list[tuple[str, str, float, float]]) -> dict[str, Any]:
    """The most specific member explaining at least half of the change, else the largest.

    Specificity: product, then category, then country — "PAPER CRAFT drove it" says more than
    "United Kingdom drove it" when both explain the day.
    """
    columns = {"driver_dimension": None, "driver_member": None, "driver_share": None}
    if not drivers:
        return columns
    by_dimension = {d[0]: d for d in drivers}
    chosen = next(
        (
            by_dimension[d]
            for d in SPECIFICITY
            if d in by_dimension and by_dimension[d][3] >= MAIN_DRIVER_SHARE
        ),
        max(drivers, key=lambda d: d[3]),
    )
    return {
        "driver_dimension": chosen[0],
        "driver_member": chosen[1],
        "driver_share": chosen[3],
    }


def _top_driver(
    breakdown: pd.DataFrame | None, day: Any, metric: str, deviation: float
) -> tuple[str, float, float] | None:
    """(member, its deviation, share of the day's deviation) of the member that moved most.

    Only a member that moved in the direction of the anomaly counts, and only when the
    dimension as a whole moved that way too: a dimension of sparse members (products that sell
    once a month) has member expectations near 0, so its members can all look "up" on a day
    that is down. The share is the member's deviation divided by the anomaly's own deviation
    (observed - expected of the KPI), so "81% of the change" reads against the KPI.
    """
    import pandas as pd

    if breakdown is None or breakdown.empty or deviation == 0:
        return None
    days = pd.DatetimeIndex(_neighbour_dates([pd.Timestamp(day).date()]))
    breakdown = breakdown[breakdown["date"].isin(days)]  # dates are datetime64 (_breakdowns)
    if breakdown["dimension"].nunique() < 2:
        return None
    try:
        explanation = explain_anomaly(breakdown, day, metric=metric, weeks=WEEKS)
    except ValueError:  # no rows that day or no neighbours: nothing to attribute
        return None
    if np.sign(explanation.deviation) != np.sign(deviation):
        return None
    table = explanation.contributions
    same = table[np.sign(table["deviation"]) == np.sign(deviation)]
    if same.empty:
        return None
    top = same.iloc[0]
    return str(top["member"]), float(top["deviation"]), float(top["deviation"]) / deviation


def _neighbour_dates(days: list[date]) -> list[date]:
    out = set()
    for d in days:
        for k in range(-WEEKS, WEEKS + 1):
            out.add(d + timedelta(days=7 * k))
    return sorted(out)


def _breakdowns(
    ctx: MartContext, source: SourceInfo, found: pd.DataFrame
) -> dict[tuple[str, str], pd.DataFrame]:
    """(metric, dimension) → rows (date, dimension, value) around the anomaly days."""
    import pandas as pd

    out: dict[tuple[str, str], pd.DataFrame] = {}
    wanted = found[found["metric"].isin(list(DIMENSIONS))]
    if wanted.empty:
        return out
    days = _neighbour_dates([pd.Timestamp(d).date() for d in wanted["date"].unique()])
    in_days = f"({', '.join(sql_date(d) for d in days)})"
    fct, product, geography = ctx.rel("fct_sales"), ctx.rel("dim_product"), ctx.rel("dim_geography")
    metrics = set(wanted["metric"])
    if "revenue" in metrics:
        # Aggregate by integer key in the engine; names and categories are attached to the
        # (few) aggregated rows afterwards, not to every line. Ordered, so the float sums per
        # category below add in the same order every run (identical marts for identical inputs).
        lines = ctx.frame(
            f"""
            with daily as (
                select f.order_date as date, f.product_key,
                       cast(sum(f.net_amount) as double) as value
                from {fct} as f
                where f.source_system = {source.sql} and {PRODUCT_LINE}
                  and f.order_date in {in_days}
                group by all
            )
            select d.date, d.value,
                   coalesce(p.category, '(none)') as category,
                   coalesce(p.product_name, p.product_id) || ' (' || p.product_id || ')'
                       as product
            from daily as d join {product} as p using (product_key)
            order by d.date, d.product_key
            """,
            NAME,
        )
        for dimension in ("category", "product"):
            part = lines.groupby(["date", dimension], as_index=False)["value"].sum()
            out[("revenue", dimension)] = part.rename(columns={dimension: "dimension"})
    by_country = ctx.frame(
        f"""
        select o.order_date as date, coalesce(g.country, 'Unknown') as dimension,
               cast(sum(o.net_amount) as double) as revenue,
               cast(count(*) filter (where o.purchase_amount is not null) as double) as orders,
               cast(count(distinct o.customer_id)
                        filter (where o.customer_purchase_amount is not null) as double)
                   as customers
        from {ORDER_FACTS} as o left join {geography} as g using (geography_key)
        where o.source_system = {source.sql} and o.order_date in {in_days}
        group by all
        """,
        NAME,
    )
    for metric in ("revenue", "orders", "customers"):
        if metric in metrics:
            out[(metric, "country")] = by_country[["date", "dimension", metric]].rename(
                columns={metric: "value"}
            )
    for frame in out.values():  # once here, not once per anomaly
        frame["date"] = pd.to_datetime(frame["date"])
    return out


def _transaction_anomalies(ctx: MartContext, source: SourceInfo) -> pd.DataFrame:
    import pandas as pd

    start = source.last_date - timedelta(days=ctx.config.outlier_days - 1)
    where = (
        f"f.source_system = {source.sql} and {PRODUCT_LINE} and {PURCHASE_LINE} "
        f"and f.order_date >= {sql_date(start)}"
    )
    lines = f"(select f.* from {ctx.rel('fct_sales')} as f where {where})"
    flagged = "_mart_transaction_outliers"
    ctx.execute(
        f"create or replace temp table {flagged} as "
        + transaction_outliers_sql(
            lines,
            group_col="product_key",
            keep_cols=("order_id", "order_line", "order_date", "customer_id", "product_id"),
            threshold=ctx.config.anomaly_threshold,
        ),
        NAME,
    )
    counts = dict(
        ctx.con.sql(
            f"select outlier_metric, count(*) from {flagged} group by 1 order by 1"
        ).fetchall()
    )
    tested = ctx.con.sql(f"select count(*) from {lines} as l").fetchall()[0][0]
    name = source.source_system
    ctx.record(name, MODEL, "transaction_lines_tested", tested, f"since {start}")
    for metric in ("quantity", "net_amount"):
        ctx.record(name, MODEL, f"transaction_outliers_{metric}", counts.get(metric, 0))
    keep = ctx.config.max_transaction_anomalies
    top = ctx.frame(
        f"""
        select t.*, p.product_name
        from (select *, row_number() over (
                     partition by outlier_metric
                     order by abs(robust_z) desc, order_id, order_line) as k
              from {flagged}) as t
        join {ctx.rel("dim_product")} as p using (product_key)
        where t.k <= {int(keep)}
        order by t.outlier_metric, t.k
        """,
        NAME,
    )
    ctx.execute(f"drop table if exists {flagged}", NAME)
    if top.empty:
        return pd.DataFrame()
    currency = symbol(source.currency_code)
    label = top["product_name"].fillna(top["product_id"]) + " (" + top["product_id"] + ")"
    return pd.DataFrame(
        {
            "source_system": name,
            "currency_code": source.currency_code,
            "kind": "transaction",
            "metric": "line_" + top["outlier_metric"].replace({"net_amount": "amount"}),
            "date": pd.to_datetime(top["order_date"]).dt.date,
            "observed": top["outlier_value"],
            "expected": top["group_median"],
            "score": top["robust_z"],
            "direction": np.where(top["robust_z"] >= 0, "up", "down"),
            "explanation": [
                outlier_sentence(m, v, e, z, order_id=o, order_date=d, product=p, currency=currency)
                for m, v, e, z, o, d, p in zip(  # at most max_transaction_anomalies rows
                    top["outlier_metric"],
                    top["outlier_value"],
                    top["group_median"],
                    top["robust_z"],
                    top["order_id"],
                    top["order_date"],
                    label,
                    strict=True,
                )
            ],
            "order_id": top["order_id"],
            "customer_id": top["customer_id"],
            "product_id": top["product_id"],
        }
    )
