"""``marts.mart_insights``: the ranked sentences a person reads first.

Per source, :func:`retailhub.analytics.insights.generate_insights` turns the marts' monthly
aggregates (complete months only), the RFM segments, the recent KPI anomalies and the monthly
forecast into sentences with evidence and a backing SQL query on the published ``core`` tables;
:mod:`retailhub.analytics.model_checks` adds what the models are worth (churn model vs the
recency baseline, forecast vs seasonal naive) and who is at risk. Sources are then ranked
together by **relative impact** — impact divided by the source's latest complete month of
revenue — because amounts in different currencies cannot be compared.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from retailhub.analytics.churn import RISK_THRESHOLDS
from retailhub.analytics.insights import KIND_PRIORITY, generate_insights
from retailhub.analytics.model_checks import (
    MODEL_CHECK,
    churn_model_insight,
    churn_risk_insight,
    forecast_check_insight,
)
from retailhub.analytics.rfm import FCT_SALES_PURCHASE_FILTER
from retailhub.pipeline.marts import customers, kpis, products
from retailhub.pipeline.marts.base import SOURCES, partial_month_sql
from retailhub.pipeline.marts.churn_scores import ChurnOutcome
from retailhub.pipeline.marts.context import MartContext, SourceInfo, sql_str
from retailhub.pipeline.marts.currency import symbol
from retailhub.pipeline.marts.forecasts import ForecastOutcome

if TYPE_CHECKING:
    import pandas as pd

NAME = "mart_insights"
COLUMNS = {
    "rank": "BIGINT",
    "source_system": "VARCHAR",
    "currency_code": "VARCHAR",
    "as_of_month": "DATE",
    "kind": "VARCHAR",
    "severity": "VARCHAR",
    "title": "VARCHAR",
    "text": "VARCHAR",
    "metric_value": "DOUBLE",
    "impact": "DOUBLE",
    "relative_impact": "DOUBLE",
    "evidence": "VARCHAR",
    "query": "VARCHAR",
}
#: Order of kinds on equal relative impact (the analytics order, then ours).
PRIORITY = {k: i for i, k in enumerate((*KIND_PRIORITY, "churn_risk", MODEL_CHECK))}
_DAYS_PER_MONTH = 30.4375
#: Customers with at least this M score count as high-value in the churn-risk insight.
HIGH_VALUE_M_SCORE = 4


def build(
    ctx: MartContext,
    churn: list[ChurnOutcome],
    anomalies: dict[str, pd.DataFrame],
    forecasts: list[ForecastOutcome],
) -> dict[str, Any]:
    """Build the mart; the entry carries ``insights``: the headline list for the run report."""
    import pandas as pd

    frames = []
    for source in ctx.sources:
        frame = _source_insights(ctx, source, churn, anomalies, forecasts)
        if not frame.empty:
            frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not table.empty:
        table["_priority"] = table["kind"].map(PRIORITY).fillna(len(PRIORITY))
        table = table.sort_values(
            ["relative_impact", "_priority", "source_system", "title", "text"],
            ascending=[False, True, True, True, True],
            kind="mergesort",
        ).reset_index(drop=True)
        table["rank"] = np.arange(1, len(table) + 1)
        if ctx.dialect == "postgres":
            # The queries are written for DuckDB; an analyst runs them where they are published.
            from retailhub.models.dialect import to_postgres

            table["query"] = [to_postgres(q) if q else q for q in table["query"]]
    mart = ctx.create_mart_from_frame(
        NAME,
        table,
        COLUMNS,
        "rank",
        (
            "marts.mart_kpi_daily",
            "marts.mart_category_trends",
            "marts.mart_product_performance",
            "marts.mart_customer_360",
            "marts.mart_anomalies",
            "marts.mart_forecast",
        ),
        grain=("rank",),
    )
    mart["insights"] = headline(table, ctx.config.top_insights)
    return mart


def headline(table: pd.DataFrame, top: int) -> list[dict[str, Any]]:
    """The ``top`` insights by rank, plus every model warning (a score not to be trusted)."""
    if table.empty:
        return []
    chosen = table[(table["rank"] <= top) | (table["severity"] == "warning")]
    return [
        {
            "rank": int(r.rank),
            "source_system": r.source_system,
            "kind": r.kind,
            "severity": r.severity,
            "text": f"{r.source_system}: {r.text}",
        }
        for r in chosen.itertuples(index=False)
    ]


def _source_insights(
    ctx: MartContext,
    source: SourceInfo,
    churn: list[ChurnOutcome],
    anomalies: dict[str, pd.DataFrame],
    forecasts: list[ForecastOutcome],
) -> pd.DataFrame:
    import pandas as pd

    name = source.source_system
    monthly = _monthly_kpis(ctx, source)
    currency = symbol(source.currency_code)
    rfm = _rfm_frame(ctx, source)
    models = _model_rows(ctx, source, rfm, churn, forecasts, currency)
    if monthly.empty:  # no complete month yet: only what the models are worth
        return _finish(pd.DataFrame(models), source, None, 1.0)
    month = monthly["month"].max()
    previous = [month, (pd.Timestamp(month) - pd.DateOffset(months=1)).date()]
    reference = float(monthly.loc[monthly["month"] == month, "revenue"].iloc[0])
    if reference <= 0:
        reference = float(monthly["revenue"].clip(lower=0).mean()) or 1.0
    recent = anomalies.get(name)
    if recent is not None and not recent.empty:
        since = source.last_date - timedelta(days=ctx.config.insight_anomaly_days - 1)
        recent = recent[recent["date"] >= since]
    # A forecast that loses to seasonal naive in its backtest is not turned into a headline
    # (its model-check row says so); one without a backtest is shown with that warning.
    monthly_forecast = next(
        (
            f.result
            for f in forecasts
            if f.source == name
            and f.freq == "M"
            and (f.backtest is None or f.backtest.winner == "model")
        ),
        None,
    )
    table = generate_insights(
        kpis_monthly=monthly,
        category_monthly=_category_monthly(ctx, source, previous),
        product_monthly=_product_monthly(ctx, source, previous),
        rfm=rfm,
        anomalies=recent,
        forecast=monthly_forecast,
        month=month,
        currency=currency,
        schema="core",
        sales_filter=f"f.source_system = {source.sql} AND f.is_product AND NOT f.is_adjustment",
        order_filter="NOT f.is_cancellation AND f.net_amount > 0",
        rfm_where=f"{FCT_SALES_PURCHASE_FILTER} AND source_system = {source.sql}",
    )
    rows = table.drop(columns=["rank"]).to_dict(orient="records") + models
    return _finish(pd.DataFrame(rows), source, month, reference)


def _finish(rows: pd.DataFrame, source: SourceInfo, month: Any, reference: float) -> pd.DataFrame:
    if rows.empty:
        return rows
    rows["source_system"] = source.source_system
    rows["currency_code"] = source.currency_code
    rows["as_of_month"] = month
    rows["relative_impact"] = rows["impact"] / reference
    return rows


def _model_rows(
    ctx: MartContext,
    source: SourceInfo,
    rfm: pd.DataFrame,
    churn: list[ChurnOutcome],
    forecasts: list[ForecastOutcome],
    currency: str,
) -> list[dict[str, Any]]:
    name = source.source_system
    rows: list[dict[str, Any]] = []
    evaluation = (
        "SELECT metric, value, detail FROM marts.mart_model_evaluation "
        f"WHERE source_system = {sql_str(name)} AND model = "
    )
    outcome = next((c for c in churn if c.source == name), None)
    if outcome is not None:
        report = outcome.report
        rows.append(
            churn_model_insight(
                published=outcome.published,
                reason=outcome.reason,
                roc_auc=report.roc_auc if report else None,
                baseline_auc=report.baseline_auc if report else None,
                evaluation_query=evaluation + "'churn' ORDER BY metric",
            )
        )
        if outcome.published and outcome.scores is not None:
            scored = rfm.set_index("customer_id").join(outcome.scores, how="inner")
            high = scored[
                (scored["churn_risk"] == "high") & (scored["m_score"] >= HIGH_VALUE_M_SCORE)
            ]
            spent = float(high["monetary"].sum())
            first = rfm["first_order_date"].min()
            months = max((source.reference_date - first.date()).days / _DAYS_PER_MONTH, 1.0)
            row = churn_risk_insight(
                high_risk_customers=len(high),
                customers=len(outcome.scores),
                high_risk_monetary=spent,
                monthly_revenue=spent / months,
                threshold=RISK_THRESHOLDS[1],
                min_m_score=HIGH_VALUE_M_SCORE,
                currency=currency,
                query=(
                    "SELECT count(*) AS customers, sum(monetary) AS monetary "
                    f"FROM marts.{customers.NAME} WHERE source_system = {sql_str(name)} "
                    f"AND churn_risk = 'high' AND m_score >= {HIGH_VALUE_M_SCORE}"
                ),
            )
            if row is not None:
                rows.append(row)
    for f in forecasts:
        if f.source != name or f.result is None:
            continue
        bt = f.backtest
        unit = "week" if f.freq == "W" else "month"
        horizon = (
            ctx.config.forecast_horizon_weeks
            if f.freq == "W"
            else (ctx.config.forecast_horizon_months)
        )
        rows.append(
            forecast_check_insight(
                freq=f.freq,
                model=f.result.model,
                model_smape=bt.model_smape if bt else None,
                baseline_smape=bt.baseline_smape if bt else None,
                winner=bt.winner if bt else None,
                folds=int(bt.folds["fold"].nunique()) if bt else 0,
                horizon=horizon,
                query=evaluation + f"'forecast_{unit}' ORDER BY metric",
            )
        )
    return rows


def _monthly_kpis(ctx: MartContext, source: SourceInfo) -> pd.DataFrame:
    frame = ctx.frame(
        f"""
        select cast(date_trunc('month', k.date) as date) as month,
               cast(sum(k.revenue) as double) as revenue,
               cast(sum(k.orders) as double) as orders
        from {ctx.mart(kpis.NAME)} as k
        join {SOURCES} as s using (source_system)
        where k.source_system = {source.sql}
        group by 1, s.first_date, s.last_date
        having not {partial_month_sql("cast(date_trunc('month', k.date) as date)", "s")}
        order by 1
        """,
        NAME,
    )
    return _dates(frame, "month")


def _category_monthly(
    ctx: MartContext, source: SourceInfo, months: list[Any]
) -> pd.DataFrame | None:
    frame = ctx.frame(
        f"""
        select month, category, sub_category, cast(revenue as double) as revenue
        from {ctx.mart(products.CATEGORY_TRENDS)}
        where source_system = {source.sql} and level = 'sub_category'
          and category <> '{products.UNCATEGORISED}'
          and month in ({", ".join(f"DATE '{m}'" for m in months)})
        order by month, category, sub_category
        """,
        NAME,
    )
    return _dates(frame, "month") if not frame.empty else None


def _product_monthly(
    ctx: MartContext, source: SourceInfo, months: list[Any]
) -> pd.DataFrame | None:
    frame = ctx.frame(
        f"""
        select month, product_id, product_name, cast(revenue as double) as revenue
        from (select month, product_id, min(product_name) as product_name,
                     sum(revenue) as revenue
              from {ctx.mart(products.PERFORMANCE)}
              where source_system = {source.sql}
                and month in ({", ".join(f"DATE '{m}'" for m in months)})
              group by month, product_id)
        order by month, product_id
        """,
        NAME,
    )
    return _dates(frame, "month") if not frame.empty else None


def _rfm_frame(ctx: MartContext, source: SourceInfo) -> pd.DataFrame:
    frame = ctx.frame(
        f"""
        select customer_id, segment, recency_days, monetary, m_score,
               first_purchase_date as first_order_date, last_purchase_date as last_order_date,
               reference_date
        from {ctx.mart(customers.NAME)}
        where source_system = {source.sql}
        order by customer_id
        """,
        NAME,
    )
    for col in ("first_order_date", "last_order_date", "reference_date"):
        frame[col] = _timestamps(frame[col])
    return frame


def _dates(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    import pandas as pd

    frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


def _timestamps(values: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(values)
