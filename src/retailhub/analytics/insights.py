"""Plain-language insights ranked by business impact, each backed by numbers and a query.

Why: a dashboard shows everything; a person wants the five things that changed and what to do.
Each insight here is a sentence with its numbers, the JSON evidence it was computed from, and a
SQL query against the core star schema that reproduces the claim, so nobody has to trust the
sentence blindly. Insights are ranked by an ``impact`` in currency per month (or per day for
anomalies) and given a severity relative to the latest month's revenue.

Inputs are small aggregated frames (the marts), documented in :func:`generate_insights`; all
of them are optional. Pure pandas; no database access (queries are returned as text).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from retailhub.analytics._frames import require_columns

if TYPE_CHECKING:
    import pandas as pd

    from retailhub.analytics.forecast import ForecastResult

INSIGHT_COLUMNS: tuple[str, ...] = (
    "rank",
    "kind",
    "title",
    "text",
    "metric_value",
    "evidence",
    "query",
    "severity",
    "impact",
)

#: Severity by impact relative to the reference (latest month) revenue: >= 10 % high,
#: >= 3 % medium, else low; informational insights (no money at stake) are "info".
SEVERITY_THRESHOLDS: tuple[float, float] = (0.10, 0.03)

#: Metrics whose unit is money (an anomaly's impact is then its deviation itself).
CURRENCY_METRICS: frozenset[str] = frozenset(
    {"revenue", "net_amount", "gross_amount", "profit", "profit_amount", "sales"}
)

#: SQL expression per daily metric name, for the queries backing anomaly insights.
METRIC_SQL: dict[str, str] = {
    "revenue": "sum(f.net_amount)",
    "orders": "count(DISTINCT f.order_id)",
    "customers": "count(DISTINCT f.customer_id)",
    "units": "sum(f.quantity)",
    "quantity": "sum(f.quantity)",
    "aov": "sum(f.net_amount) / nullif(count(DISTINCT f.order_id), 0)",
    "profit": "sum(f.profit_amount)",
}

#: Order of kinds when two insights have the same impact (the headline KPI first).
KIND_PRIORITY: tuple[str, ...] = (
    "revenue_trend",
    "category_change",
    "anomaly",
    "forecast",
    "rfm_cant_lose",
    "rfm_quiet_champions",
    "rfm_at_risk",
    "aov_change",
    "product_riser",
    "product_faller",
    "concentration",
)

_DAYS_PER_MONTH = 30.4375
_MINUS = "−"  # typographic minus in sentences: "(−32%)"


@dataclass(frozen=True)
class InsightContext:
    """Formatting and SQL settings shared by every insight builder."""

    currency: str = ""
    schema: str = "core"
    sales_filter: str = "NOT f.is_adjustment"
    quiet_days: int = 60
    max_per_kind: int = 3
    #: Lines that make an order (and a customer) count, e.g. "NOT f.is_cancellation": orders
    #: and customers are then counted over those lines only, revenue over ``sales_filter``.
    order_filter: str | None = None
    #: Purchase-line predicate for the RFM queries (default: ``FCT_SALES_PURCHASE_FILTER``).
    rfm_where: str | None = None


def _orders_sql(ctx: InsightContext) -> str:
    if ctx.order_filter:
        return f"count(DISTINCT f.order_id) FILTER (WHERE {ctx.order_filter})"
    return "count(DISTINCT f.order_id)"


def _metric_sql(ctx: InsightContext, metric: str) -> str:
    """SQL for a daily metric, counting orders and customers as the marts do."""
    orders = _orders_sql(ctx)
    if metric == "orders":
        return orders
    if metric == "customers" and ctx.order_filter:
        return f"count(DISTINCT f.customer_id) FILTER (WHERE {ctx.order_filter})"
    if metric in ("aov", "avg_order_value"):
        return f"sum(f.net_amount) / nullif({orders}, 0)"
    return METRIC_SQL.get(metric, f"sum(f.{metric})")


# ------------------------------------------------------------------------------------------------
# formatting helpers
# ------------------------------------------------------------------------------------------------


def _money(ctx: InsightContext, value: float) -> str:
    sign = _MINUS if value < 0 else ""
    return f"{sign}{ctx.currency}{abs(value):,.0f}"


def _money2(ctx: InsightContext, value: float) -> str:
    sign = _MINUS if value < 0 else ""
    return f"{sign}{ctx.currency}{abs(value):,.2f}"


def _pct(fraction: float) -> str:
    """Absolute percentage without sign, e.g. 0.184 -> '18%'."""
    return f"{abs(fraction) * 100:.0f}%"


def _signed_pct(fraction: float) -> str:
    sign = "+" if fraction >= 0 else _MINUS
    return f"{sign}{abs(fraction) * 100:.0f}%"


def _month_label(value: Any) -> str:
    import pandas as pd

    return pd.Timestamp(value).strftime("%Y-%m")


def _sql_date(value: Any) -> str:
    import pandas as pd

    return f"DATE '{pd.Timestamp(value).date().isoformat()}'"


def _sql_str(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _clean(value: Any) -> Any:
    """JSON-safe plain Python value (numpy scalars, timestamps, NaN -> None)."""
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, pd.Timestamp | date):
        return pd.Timestamp(value).date().isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else round(f, 6)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def evidence_json(**values: Any) -> str:
    """An insight's ``evidence``: its numbers as sorted, JSON-safe keys (NaN -> null)."""
    return json.dumps(_clean(values), sort_keys=True, ensure_ascii=False)


def _verb(change: float, up: str = "rose", down: str = "fell") -> str:
    return up if change > 0 else down


def insight_row(
    kind: str,
    title: str,
    text: str,
    metric_value: float,
    evidence: str,
    query: str,
    impact: float = 0.0,
    **extra: Any,
) -> dict[str, Any]:
    """One insight record (the columns of ``mart_insights`` before ranking), plus ``extra``."""
    return {
        "kind": kind,
        "title": title,
        "text": text,
        "metric_value": float(metric_value),
        "evidence": evidence,
        "query": query,
        "impact": float(abs(impact)),
        **extra,
    }


def _insight(
    kind: str,
    title: str,
    text: str,
    metric_value: float,
    evidence: str,
    query: str,
    impact: float,
    info: bool = False,
) -> dict[str, Any]:
    return insight_row(kind, title, text, metric_value, evidence, query, impact, _info=info)


def _month_query(ctx: InsightContext, months: list[Any], extra_select: str = "") -> str:
    month_list = ", ".join(_sql_date(m) for m in months)
    return (
        f"SELECT date_trunc('month', f.order_date) AS month, sum(f.net_amount) AS revenue, "
        f"{_orders_sql(ctx)} AS orders{extra_select} "
        f"FROM {ctx.schema}.fct_sales AS f WHERE {ctx.sales_filter} "
        f"AND date_trunc('month', f.order_date) IN ({month_list}) GROUP BY 1 ORDER BY 1"
    )


def _two_months(frame: pd.DataFrame, month_col: str, month: Any | None) -> tuple[Any, Any]:
    import pandas as pd

    months = pd.to_datetime(frame[month_col]).dt.to_period("M")
    current = pd.Timestamp(month).to_period("M") if month is not None else months.max()
    return current, current - 1


# ------------------------------------------------------------------------------------------------
# builders (one per kind)
# ------------------------------------------------------------------------------------------------


def _kpi_insights(
    ctx: InsightContext, kpis: pd.DataFrame, month: Any | None
) -> list[dict[str, Any]]:
    import pandas as pd

    require_columns(kpis, ["month", "revenue"], "generate_insights(kpis_monthly)")
    frame = kpis.copy()
    frame["_p"] = pd.to_datetime(frame["month"]).dt.to_period("M")
    cur, prev = _two_months(frame, "month", month)
    by = frame.set_index("_p")
    if cur not in by.index or prev not in by.index:
        return []
    out = []
    rev, prev_rev = float(by.at[cur, "revenue"]), float(by.at[prev, "revenue"])
    yoy_p = cur - 12
    months = [prev.to_timestamp(), cur.to_timestamp()]
    if prev_rev != 0:
        growth = (rev - prev_rev) / abs(prev_rev)
        if rev == prev_rev:
            text = f"Revenue was flat month over month at {_money(ctx, rev)} in {cur}."
        else:
            text = (
                f"Revenue {_verb(rev - prev_rev)} {_pct(growth)} month over month to "
                f"{_money(ctx, rev)} in {cur} ({_money(ctx, prev_rev)} in {prev})."
            )
        evidence: dict[str, Any] = {
            "month": str(cur),
            "revenue": rev,
            "previous_month": str(prev),
            "previous_revenue": prev_rev,
            "growth": growth,
        }
        if yoy_p in by.index and float(by.at[yoy_p, "revenue"]) != 0:
            yoy_rev = float(by.at[yoy_p, "revenue"])
            yoy = (rev - yoy_rev) / abs(yoy_rev)
            text += f" Year over year it is {_verb(yoy, 'up', 'down')} {_pct(yoy)}."
            evidence.update(year_ago_month=str(yoy_p), year_ago_revenue=yoy_rev, yoy_growth=yoy)
            months.insert(0, yoy_p.to_timestamp())
        out.append(
            _insight(
                "revenue_trend",
                "Revenue month over month",
                text,
                growth,
                evidence_json(**evidence),
                _month_query(ctx, months),
                rev - prev_rev,
            )
        )
    if "orders" in by.columns:
        orders, prev_orders = float(by.at[cur, "orders"]), float(by.at[prev, "orders"])
        if orders > 0 and prev_orders > 0:
            aov, prev_aov = rev / orders, prev_rev / prev_orders
            if prev_aov != 0 and aov != prev_aov:
                growth = (aov - prev_aov) / abs(prev_aov)
                text = (
                    f"Average order value {_verb(aov - prev_aov)} {_pct(growth)} to "
                    f"{_money2(ctx, aov)} in {cur} ({_money2(ctx, prev_aov)} in {prev})."
                )
                out.append(
                    _insight(
                        "aov_change",
                        "Average order value",
                        text,
                        growth,
                        evidence_json(
                            month=str(cur),
                            aov=aov,
                            previous_aov=prev_aov,
                            orders=orders,
                            previous_orders=prev_orders,
                            growth=growth,
                        ),
                        _month_query(
                            ctx,
                            [prev.to_timestamp(), cur.to_timestamp()],
                            f", sum(f.net_amount) / {_orders_sql(ctx)} AS aov",
                        ),
                        (aov - prev_aov) * orders,
                    )
                )
    return out


def _category_insights(
    ctx: InsightContext, category: pd.DataFrame, month: Any | None
) -> list[dict[str, Any]]:
    import pandas as pd

    require_columns(category, ["month", "category", "revenue"], "category_monthly")
    frame = category.copy()
    frame["_p"] = pd.to_datetime(frame["month"]).dt.to_period("M")
    cur, prev = _two_months(frame, "month", month)
    frame = frame[frame["_p"].isin([cur, prev])]
    has_sub = "sub_category" in frame.columns
    cat = frame.pivot_table(
        index="category", columns="_p", values="revenue", aggfunc="sum", fill_value=0.0
    ).reindex(columns=[prev, cur], fill_value=0.0)
    cat.columns = ["prev", "cur"]
    cat["change"] = cat["cur"] - cat["prev"]
    cat = cat[(cat["prev"] > 0) & (cat["change"] != 0)]
    cat = cat.assign(_abs=cat["change"].abs(), _name=cat.index.astype(str))
    cat = cat.sort_values(["_abs", "_name"], ascending=[False, True]).head(ctx.max_per_kind)
    subs = None
    if has_sub:
        subs = frame.pivot_table(
            index=["category", "sub_category"],
            columns="_p",
            values="revenue",
            aggfunc="sum",
            fill_value=0.0,
        ).reindex(columns=[prev, cur], fill_value=0.0)
        subs.columns = ["prev", "cur"]
        subs["change"] = subs["cur"] - subs["prev"]
    out = []
    for name, row in cat.iterrows():  # at most max_per_kind categories
        growth = row["change"] / row["prev"]
        text = (
            f"{name} revenue {_verb(row['change'])} {_pct(growth)} month over month "
            f"(from {_money(ctx, row['prev'])} to {_money(ctx, row['cur'])})"
        )
        evidence: dict[str, Any] = {
            "category": name,
            "month": str(cur),
            "previous_month": str(prev),
            "revenue": row["cur"],
            "previous_revenue": row["prev"],
            "growth": growth,
        }
        if subs is not None:
            members = subs.loc[name]
            same = members[np.sign(members["change"]) == np.sign(row["change"])]
            if len(same):
                same = same.assign(_abs=same["change"].abs(), _name=same.index.astype(str))
                top_name = same.sort_values(["_abs", "_name"], ascending=[False, True]).index[0]
                top = same.loc[top_name]
                if top["prev"] > 0:
                    detail = _signed_pct(top["change"] / top["prev"])
                else:
                    detail = f"new, +{_money(ctx, top['change'])}"
                text += f", driven by {top_name} ({detail})"
                evidence.update(
                    driver=top_name,
                    driver_revenue=top["cur"],
                    driver_previous_revenue=top["prev"],
                    driver_change=top["change"],
                    driver_share_of_change=top["change"] / row["change"],
                )
        text += "."
        query = (
            "SELECT date_trunc('month', f.order_date) AS month, p.category, p.sub_category, "
            f"sum(f.net_amount) AS revenue FROM {ctx.schema}.fct_sales AS f "
            f"JOIN {ctx.schema}.dim_product AS p ON p.product_key = f.product_key "
            f"WHERE {ctx.sales_filter} AND p.category = {_sql_str(name)} "
            f"AND date_trunc('month', f.order_date) IN ({_sql_date(prev.to_timestamp())}, "
            f"{_sql_date(cur.to_timestamp())}) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        out.append(
            _insight(
                "category_change",
                f"{name} revenue",
                text,
                growth,
                evidence_json(**evidence),
                query,
                row["change"],
            )
        )
    return out


def _product_insights(
    ctx: InsightContext, product: pd.DataFrame, month: Any | None
) -> list[dict[str, Any]]:
    import pandas as pd

    from retailhub.analytics.products import abc_classes

    require_columns(product, ["month", "product_id", "revenue"], "product_monthly")
    frame = product.copy()
    frame["_p"] = pd.to_datetime(frame["month"]).dt.to_period("M")
    cur, prev = _two_months(frame, "month", month)
    names = (
        frame.drop_duplicates("product_id").set_index("product_id")["product_name"]
        if "product_name" in frame.columns
        else None
    )
    two = frame[frame["_p"].isin([cur, prev])]
    wide = two.pivot_table(
        index="product_id", columns="_p", values="revenue", aggfunc="sum", fill_value=0.0
    ).reindex(columns=[prev, cur], fill_value=0.0)
    wide.columns = ["prev", "cur"]
    wide["change"] = wide["cur"] - wide["prev"]
    wide["_key"] = wide.index.astype(str)
    out = []

    def label(pid: Any) -> str:
        if names is not None and pid in names.index and isinstance(names[pid], str):
            return f"{names[pid]} ({pid})"
        return str(pid)

    def query_for(pid: Any) -> str:
        return (
            "SELECT date_trunc('month', f.order_date) AS month, f.product_id, "
            f"sum(f.net_amount) AS revenue FROM {ctx.schema}.fct_sales AS f "
            f"WHERE {ctx.sales_filter} AND f.product_id = {_sql_str(pid)} "
            f"AND date_trunc('month', f.order_date) IN ({_sql_date(prev.to_timestamp())}, "
            f"{_sql_date(cur.to_timestamp())}) GROUP BY 1, 2 ORDER BY 1, 2"
        )

    risers = wide[wide["change"] > 0].sort_values(["change", "_key"], ascending=[False, True])
    fallers = wide[wide["change"] < 0].sort_values(["change", "_key"], ascending=[True, True])
    for kind, table in (("product_riser", risers), ("product_faller", fallers)):
        if table.empty:
            continue
        pid = table.index[0]
        row = table.iloc[0]
        if row["prev"] > 0:
            growth = row["change"] / row["prev"]
            text = (
                f"{label(pid)} revenue {_verb(row['change'])} {_pct(growth)} month over month "
                f"(from {_money(ctx, row['prev'])} to {_money(ctx, row['cur'])})."
            )
        else:
            growth = float("nan")
            text = f"{label(pid)} sold {_money(ctx, row['cur'])} in {cur} after none in {prev}."
        title = "Fastest-growing product" if kind == "product_riser" else "Fastest-falling product"
        out.append(
            _insight(
                kind,
                title,
                text,
                growth,
                evidence_json(
                    product_id=pid,
                    month=str(cur),
                    revenue=row["cur"],
                    previous_revenue=row["prev"],
                    change=row["change"],
                ),
                query_for(pid),
                row["change"],
            )
        )

    latest = frame[frame["_p"] == cur].groupby("product_id")["revenue"].sum()
    if len(latest) >= 5 and latest.clip(lower=0).sum() > 0:
        abc = abc_classes(latest)
        n_a = int((abc["abc_class"] == "A").sum())
        n = len(abc)
        a_share = float(abc.loc[abc["abc_class"] == "A", "share"].sum())
        text = (
            f"{_pct(n_a / n)} of products ({n_a:,} of {n:,}) made {_pct(a_share)} "
            f"of revenue in {cur} (class A)."
        )
        query = (
            "WITH r AS (SELECT f.product_id, sum(f.net_amount) AS revenue "
            f"FROM {ctx.schema}.fct_sales AS f WHERE {ctx.sales_filter} "
            f"AND date_trunc('month', f.order_date) = {_sql_date(cur.to_timestamp())} "
            "GROUP BY 1) SELECT product_id, revenue, sum(greatest(revenue, 0)) OVER "
            "(ORDER BY revenue DESC, product_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
            " / sum(greatest(revenue, 0)) OVER () AS cumulative_share_before FROM r "
            "ORDER BY revenue DESC, product_id"
        )
        out.append(
            _insight(
                "concentration",
                "Revenue concentration",
                text,
                n_a / n,
                evidence_json(month=str(cur), products=n, class_a=n_a, class_a_share=a_share),
                query,
                0.0,
                info=True,
            )
        )
    return out


def _rfm_insights(ctx: InsightContext, rfm: pd.DataFrame) -> list[dict[str, Any]]:
    import pandas as pd

    from retailhub.analytics.rfm import FCT_SALES_PURCHASE_FILTER, SEGMENT_ACTIONS, rfm_sql

    require_columns(
        rfm,
        ["customer_id", "segment", "recency_days", "monetary", "first_order_date"],
        "rfm",
    )
    first = pd.to_datetime(rfm["first_order_date"]).min()
    if "reference_date" in rfm.columns:
        reference = pd.to_datetime(rfm["reference_date"]).max()
    else:
        reference = pd.to_datetime(rfm["last_order_date"]).max() + pd.Timedelta(days=1)
    months = max((reference - first).days / _DAYS_PER_MONTH, 1.0)
    total = float(rfm["monetary"].sum())
    ref_date = None
    if "reference_date" in rfm.columns and pd.to_datetime(rfm["reference_date"]).nunique() == 1:
        ref_date = reference.date()
    base = rfm_sql(
        f"{ctx.schema}.fct_sales", ref_date, where=ctx.rfm_where or FCT_SALES_PURCHASE_FILTER
    )
    out = []

    quiet = rfm[(rfm["segment"] == "Champions") & (rfm["recency_days"] >= ctx.quiet_days)]
    if len(quiet):
        spent = float(quiet["monetary"].sum())
        who = "Champion has" if len(quiet) == 1 else "Champions have"
        text = (
            f"{len(quiet):,} {who} not ordered for at least {ctx.quiet_days} days: "
            "target them with a win-back offer."
        )
        out.append(
            _insight(
                "rfm_quiet_champions",
                "Champions going quiet",
                text,
                len(quiet),
                evidence_json(
                    customers=len(quiet),
                    min_days=ctx.quiet_days,
                    monetary=spent,
                    monthly_revenue=spent / months,
                ),
                f"SELECT count(*) AS customers, sum(monetary) AS monetary FROM ({base}) AS rfm "
                f"WHERE segment = 'Champions' AND recency_days >= {ctx.quiet_days}",
                spent / months,
            )
        )
    for segment, kind in (("Can't Lose Them", "rfm_cant_lose"), ("At Risk", "rfm_at_risk")):
        members = rfm[rfm["segment"] == segment]
        if members.empty:
            continue
        spent = float(members["monetary"].sum())
        share = spent / total if total else float("nan")
        median_days = float(members["recency_days"].median())
        who = "customer is" if len(members) == 1 else "customers are"
        text = (
            f"{len(members):,} {who} in {segment}: they spent {_money(ctx, spent)} "
            f"({_pct(share)} of customer revenue) but last ordered a median of "
            f"{median_days:.0f} days ago. {SEGMENT_ACTIONS[segment]}"
        )
        out.append(
            _insight(
                kind,
                segment,
                text,
                len(members),
                evidence_json(
                    segment=segment,
                    customers=len(members),
                    monetary=spent,
                    share_of_revenue=share,
                    median_recency_days=median_days,
                    monthly_revenue=spent / months,
                ),
                "SELECT count(*) AS customers, sum(monetary) AS monetary, "
                f"median(recency_days) AS median_recency_days FROM ({base}) AS rfm "
                f"WHERE segment = {_sql_str(segment)}",
                spent / months,
            )
        )
    return out


def _anomaly_insights(
    ctx: InsightContext, anomalies: pd.DataFrame, daily_revenue: float | None
) -> list[dict[str, Any]]:
    import pandas as pd

    require_columns(anomalies, ["metric", "date", "observed", "expected", "score"], "anomalies")
    out = []
    from retailhub.analytics.anomalies import METRIC_LABELS, PLURAL_METRICS

    explained = "explanation" in anomalies.columns
    for row in anomalies.itertuples(index=False):  # detected anomalies: a handful of rows
        day = pd.Timestamp(row.date)
        dev = float(row.observed) - float(row.expected)
        label = METRIC_LABELS.get(str(row.metric)) or str(row.metric).replace("_", " ")
        label = label[:1].upper() + label[1:]
        verb = "were" if row.metric in PLURAL_METRICS else "was"
        unit = ctx.currency if row.metric in CURRENCY_METRICS | {"aov", "avg_order_value"} else ""
        if row.expected:
            rel = dev / abs(float(row.expected))
            text = (
                f"{label} on {day.date()} {verb} {_pct(rel)} {'above' if dev > 0 else 'below'} "
                f"expected ({unit}{float(row.observed):,.0f} vs {unit}{float(row.expected):,.0f})."
            )
        else:
            rel = float("nan")
            text = (
                f"{label} on {day.date()} {verb} {unit}{float(row.observed):,.0f} where 0 was "
                "expected."
            )
        if explained and isinstance(row.explanation, str) and row.explanation:
            text = row.explanation  # the caller's sentence, e.g. with the day's drivers
        if row.metric in CURRENCY_METRICS:
            impact = dev
        elif daily_revenue is not None and np.isfinite(rel):
            impact = rel * daily_revenue
        else:
            impact = 0.0
        expr = _metric_sql(ctx, str(row.metric))
        days = ", ".join(_sql_date(day + pd.Timedelta(days=7 * k)) for k in range(-4, 5))
        query = (
            f"SELECT f.order_date AS date, {expr} AS {row.metric} FROM {ctx.schema}.fct_sales "
            f"AS f WHERE {ctx.sales_filter} AND f.order_date IN ({days}) GROUP BY 1 ORDER BY 1"
        )
        out.append(
            _insight(
                "anomaly",
                f"{label} anomaly on {day.date()}",
                text,
                float(row.score),
                evidence_json(
                    metric=row.metric,
                    date=day,
                    observed=row.observed,
                    expected=row.expected,
                    deviation=dev,
                    relative_deviation=rel,
                    score=row.score,
                ),
                query,
                impact,
            )
        )
    return out


def _forecast_insights(
    ctx: InsightContext, forecast: ForecastResult, kpis: pd.DataFrame | None
) -> list[dict[str, Any]]:
    import pandas as pd

    table = forecast.forecast
    if table.empty:
        return []
    first_date = pd.Timestamp(table.index[0])
    value = float(table["forecast"].iloc[0])
    lower_cols = sorted(
        (c for c in table.columns if c.startswith("lower_")), key=lambda c: float(c[6:])
    )
    interval = ""
    evidence: dict[str, Any] = {"model": forecast.model, "period": first_date, "forecast": value}
    if lower_cols and table[lower_cols[0]].notna().iloc[0]:
        level = lower_cols[0][6:]
        lo = float(table[lower_cols[0]].iloc[0])
        hi = float(table[f"upper_{level}"].iloc[0])
        interval = f" ({level}% interval {_money(ctx, lo)}–{_money(ctx, hi)})"
        evidence.update(level=level, lower=lo, upper=hi)
    if forecast.freq == "M":
        period_label = first_date.strftime("%Y-%m")
    else:
        period_label = f"the week of {first_date.date()}"
    text = f"Revenue is forecast at {_money(ctx, value)} for {period_label}{interval}"
    impact = 0.0
    metric_value = value
    if forecast.freq == "M" and kpis is not None and not kpis.empty:
        months = pd.to_datetime(kpis["month"]).dt.to_period("M")
        last_p = months.max()
        if last_p == first_date.to_period("M") - 1:
            last = float(kpis.loc[months == last_p, "revenue"].sum())
            if last != 0:
                change = value - last
                text += (
                    f", {_pct(change / abs(last))} {'above' if change > 0 else 'below'} "
                    f"{last_p} ({_money(ctx, last)})"
                )
                impact = change
                evidence.update(last_period=str(last_p), last_revenue=last)
        # Same month a year earlier: for a seasonal business the news is the change against
        # last year (January is always below December), so it sets the impact when known.
        year_ago_p = first_date.to_period("M") - 12
        year_ago = float(kpis.loc[months == year_ago_p, "revenue"].sum())
        if (months == year_ago_p).any() and year_ago != 0:
            change = value - year_ago
            joiner = " and " if "last_period" in evidence else ", "
            text += (
                f"{joiner}{_pct(change / abs(year_ago))} {'above' if change > 0 else 'below'} "
                f"{year_ago_p} ({_money(ctx, year_ago)})"
            )
            impact = change
            evidence.update(year_ago_period=str(year_ago_p), year_ago_revenue=year_ago)
    text += f". Model: {forecast.model}."
    query = (
        "SELECT date_trunc('month', f.order_date) AS month, sum(f.net_amount) AS revenue "
        f"FROM {ctx.schema}.fct_sales AS f WHERE {ctx.sales_filter} GROUP BY 1 ORDER BY 1"
        if forecast.freq == "M"
        else "SELECT date_trunc('week', f.order_date) AS week, sum(f.net_amount) AS revenue "
        f"FROM {ctx.schema}.fct_sales AS f WHERE {ctx.sales_filter} GROUP BY 1 ORDER BY 1"
    )
    return [
        _insight(
            "forecast",
            "Revenue forecast",
            text,
            metric_value,
            evidence_json(**evidence),
            query,
            impact,
        )
    ]


def _reference_revenue(
    kpis: pd.DataFrame | None, category: pd.DataFrame | None, product: pd.DataFrame | None
) -> float | None:
    import pandas as pd

    for frame in (kpis, category, product):
        if frame is not None and not frame.empty and "revenue" in frame.columns:
            months = pd.to_datetime(frame["month"]).dt.to_period("M")
            value = float(frame.loc[months == months.max(), "revenue"].sum())
            if value > 0:
                return value
    return None


def generate_insights(
    kpis_monthly: pd.DataFrame | None = None,
    category_monthly: pd.DataFrame | None = None,
    product_monthly: pd.DataFrame | None = None,
    rfm: pd.DataFrame | None = None,
    anomalies: pd.DataFrame | None = None,
    forecast: ForecastResult | None = None,
    *,
    month: date | None = None,
    currency: str = "",
    schema: str = "core",
    sales_filter: str = "NOT f.is_adjustment",
    quiet_days: int = 60,
    max_per_kind: int = 3,
    order_filter: str | None = None,
    rfm_where: str | None = None,
) -> pd.DataFrame:
    """Ranked insights from the marts' aggregates.

    Inputs (all optional; pass complete months only — a partial last month reads as a drop):

    * ``kpis_monthly``: month, revenue, [orders] — one row per month.
    * ``category_monthly``: month, category, revenue, [sub_category] — the driver of a category
      change is the sub-category with the largest change in the same direction.
    * ``product_monthly``: month, product_id, revenue, [product_name].
    * ``rfm``: the output of :func:`retailhub.analytics.rfm.rfm_table`.
    * ``anomalies``: the output of :func:`retailhub.analytics.anomalies.detect_anomalies`
      (filter to the recent days you want reported); an optional ``explanation`` column
      (e.g. from :func:`~retailhub.analytics.anomalies.anomaly_sentence`) replaces the
      generated sentence.
    * ``forecast``: a :class:`~retailhub.analytics.forecast.ForecastResult`.

    ``month`` selects the "current" month (default: the latest in each frame). ``sales_filter``
    is the predicate on ``fct_sales AS f`` used in the backing queries and must match how the
    marts computed revenue; ``order_filter`` (optional) restricts which of those lines count as
    orders and customers (e.g. purchases, not cancellations); ``rfm_where`` is the purchase-line
    predicate of the RFM queries (e.g. the default filter plus one source system).

    Returns :data:`INSIGHT_COLUMNS`: rank (1 = most impact), kind, title, text, metric_value,
    evidence (JSON), query (SQL), severity (high / medium / low / info) and impact. ``impact``
    is in currency: the absolute month-over-month change for trends, average monthly revenue of
    the customers concerned for RFM, the day's deviation for anomalies (a non-money metric's
    relative deviation times the average daily revenue). Ties in impact are ordered by
    :data:`KIND_PRIORITY`, then title. Severity: impact / latest month revenue >= 10 % high,
    >= 3 % medium, else low.
    """
    import pandas as pd

    ctx = InsightContext(
        currency=currency,
        schema=schema,
        sales_filter=sales_filter,
        quiet_days=quiet_days,
        max_per_kind=max_per_kind,
        order_filter=order_filter,
        rfm_where=rfm_where,
    )
    rows: list[dict[str, Any]] = []
    if kpis_monthly is not None and not kpis_monthly.empty:
        rows += _kpi_insights(ctx, kpis_monthly, month)
    if category_monthly is not None and not category_monthly.empty:
        rows += _category_insights(ctx, category_monthly, month)
    if product_monthly is not None and not product_monthly.empty:
        rows += _product_insights(ctx, product_monthly, month)
    if rfm is not None and not rfm.empty:
        rows += _rfm_insights(ctx, rfm)
    reference = _reference_revenue(kpis_monthly, category_monthly, product_monthly)
    if anomalies is not None and not anomalies.empty:
        daily = reference / _DAYS_PER_MONTH if reference else None
        rows += _anomaly_insights(ctx, anomalies, daily)
    if forecast is not None:
        rows += _forecast_insights(ctx, forecast, kpis_monthly)

    if not rows:
        return pd.DataFrame(columns=list(INSIGHT_COLUMNS))
    table = pd.DataFrame(rows)
    high, medium = SEVERITY_THRESHOLDS
    if reference:
        ratio = table["impact"] / reference
        severity = np.where(ratio >= high, "high", np.where(ratio >= medium, "medium", "low"))
    else:
        severity = np.full(len(table), "medium", dtype=object)
    table["severity"] = np.where(table["_info"], "info", severity)
    table["_kind_order"] = table["kind"].map({k: i for i, k in enumerate(KIND_PRIORITY)})
    table = table.sort_values(
        ["impact", "_kind_order", "title"], ascending=[False, True, True], kind="mergesort"
    )
    table["rank"] = np.arange(1, len(table) + 1)
    return table[list(INSIGHT_COLUMNS)].reset_index(drop=True)
