"""Sentences the marts write: anomalies, outlying lines, model checks, insight queries."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from retailhub.analytics.anomalies import anomaly_sentence, outlier_sentence
from retailhub.analytics.forecast import ForecastResult
from retailhub.analytics.insights import generate_insights
from retailhub.analytics.model_checks import (
    churn_model_insight,
    churn_risk_insight,
    forecast_check_insight,
)


def test_anomaly_sentence_with_drivers() -> None:
    text = anomaly_sentence(
        "revenue",
        date(2011, 12, 9),
        184_190.0,
        31_731.0,
        [("product", "PAPER CRAFT (23843)", 168_470.0, 1.105), ("country", "Norway", 2_290, 0.015)],
        currency="£",
        money=True,
    )
    assert text == (
        "Revenue on 2011-12-09 was 480% above expected (£184,190 vs £31,731). "
        "Drivers: product PAPER CRAFT (23843) +£168,470 (110% of the change); "
        "country Norway +£2,290 (2%)."
    )


def test_anomaly_sentence_plural_and_labels() -> None:
    assert anomaly_sentence("orders", date(2024, 1, 2), 4.0, 11.0) == (
        "Orders on 2024-01-02 were 64% below expected (4 vs 11)."
    )
    assert anomaly_sentence("avg_order_value", date(2024, 1, 2), 30.0, 20.0, money=True) == (
        "Average order value on 2024-01-02 was 50% above expected (30 vs 20)."
    )
    assert anomaly_sentence("units", date(2024, 1, 2), 5.0, 0.0) == (
        "Units on 2024-01-02 were 5 where 0 was expected."
    )


def test_outlier_sentence() -> None:
    assert outlier_sentence(
        "quantity",
        80_995,
        7,
        12.3,
        order_id="581483",
        order_date=date(2011, 12, 9),
        product="PAPER CRAFT (23843)",
    ) == (
        "Order 581483 on 2011-12-09: quantity 80,995 of PAPER CRAFT (23843) is 11,571 times "
        "the product's typical 7 (robust z 12.3)."
    )
    assert outlier_sentence(
        "net_amount",
        1.5,
        30.0,
        -4.0,
        order_id="A1",
        order_date=date(2024, 1, 1),
        product="P",
        currency="$",
    ) == (
        "Order A1 on 2024-01-01: amount $1.5 of P is 1/20 of the product's typical $30 "
        "(robust z -4.0)."
    )


def test_churn_model_insights() -> None:
    published = churn_model_insight(
        published=True,
        reason="beats",
        roc_auc=0.7634,
        baseline_auc=0.7012,
        evaluation_query="SELECT 1",
    )
    assert published["text"] == (
        "The churn model beats the recency-only baseline: ROC AUC 0.763 vs 0.701 (+0.062) on "
        "a later, unseen period; churn scores are published."
    )
    assert published["severity"] == "info"
    rejected = churn_model_insight(
        published=False,
        reason="no churn signal beyond recency: ROC AUC 0.478 vs 0.506 for days since the "
        "last order",
        roc_auc=0.478,
        baseline_auc=0.506,
        evaluation_query="SELECT 1",
    )
    assert rejected["text"].startswith("Churn scores are not published: no churn signal")
    assert rejected["severity"] == "warning"
    assert rejected["impact"] == 0.0
    assert json.loads(rejected["evidence"])["published"] is False


def test_churn_risk_insight() -> None:
    row = churn_risk_insight(
        high_risk_customers=41,
        customers=1000,
        high_risk_monetary=52_000.0,
        monthly_revenue=4_000.0,
        threshold=0.7,
        min_m_score=4,
        currency="£",
        query="SELECT 1",
    )
    assert row is not None
    assert row["text"] == (
        "41 high-spending customers (M score 4+) have a high churn risk (probability at least "
        "70%; 4% of all customers); they spent £52,000 so far: contact them before they lapse."
    )
    assert row["impact"] == 4_000.0
    none = churn_risk_insight(
        high_risk_customers=0,
        customers=10,
        high_risk_monetary=0.0,
        monthly_revenue=0.0,
        threshold=0.7,
        min_m_score=4,
        currency="",
        query="SELECT 1",
    )
    assert none is None


def test_forecast_check_insight() -> None:
    good = forecast_check_insight(
        freq="M",
        model="ETS(A,A,A) m=12",
        model_smape=12.04,
        baseline_smape=20.5,
        winner="model",
        folds=3,
        horizon=6,
        query="SELECT 1",
    )
    assert good["text"] == (
        "Monthly revenue forecast (ETS(A,A,A) m=12) beats seasonal naive in the backtest: "
        "sMAPE 12.0% vs 20.5% over 3 fold(s) of 6 months."
    )
    assert good["severity"] == "info"
    bad = forecast_check_insight(
        freq="W",
        model="ETS(A,N,N)",
        model_smape=30.8,
        baseline_smape=26.9,
        winner="seasonal_naive",
        folds=2,
        horizon=12,
        query="SELECT 1",
    )
    assert "does not beat seasonal naive" in bad["text"]
    assert bad["severity"] == "warning"
    untested = forecast_check_insight(
        freq="M",
        model="naive",
        model_smape=None,
        baseline_smape=None,
        winner=None,
        folds=0,
        horizon=6,
        query="SELECT 1",
    )
    assert "has no backtest" in untested["text"]


def test_insight_queries_count_purchase_orders_and_one_source() -> None:
    kpis = pd.DataFrame(
        {
            "month": pd.to_datetime(["2023-12-01", "2024-11-01", "2024-12-01"]),
            "revenue": [800.0, 1000.0, 1200.0],
            "orders": [8, 10, 10],
        }
    )
    rfm = pd.DataFrame(
        {
            "customer_id": ["a"],
            "segment": ["At Risk"],
            "recency_days": [100],
            "monetary": [50.0],
            "first_order_date": pd.to_datetime(["2023-01-01"]),
            "reference_date": pd.to_datetime(["2025-01-01"]),
        }
    )
    forecast = ForecastResult(
        forecast=pd.DataFrame(
            {"forecast": [1100.0], "lower_80": [1000.0], "upper_80": [1200.0]},
            index=pd.DatetimeIndex(["2025-01-01"]),
        ),
        model="m",
        freq="M",
        seasonal_periods=12,
        n_obs=24,
    )
    kpis_with_jan = pd.concat(
        [kpis, pd.DataFrame({"month": [pd.Timestamp("2024-01-01")], "revenue": [900.0]})]
    )
    table = generate_insights(
        kpis_monthly=kpis_with_jan,
        rfm=rfm,
        forecast=forecast,
        month=date(2024, 12, 1),
        sales_filter="f.source_system = 's' AND f.is_product",
        order_filter="NOT f.is_cancellation",
        rfm_where="customer_id IS NOT NULL AND source_system = 's'",
    ).set_index("kind")
    assert (
        "count(DISTINCT f.order_id) FILTER (WHERE NOT f.is_cancellation)"
        in (table.loc["aov_change", "query"])
    )
    assert "source_system = 's'" in table.loc["rfm_at_risk", "query"]
    # the forecast is compared with last month and with the same month a year earlier
    assert table.loc["forecast", "text"] == (
        "Revenue is forecast at 1,100 for 2025-01 (80% interval 1,000–1,200), 8% below "
        "2024-12 (1,200) and 22% above 2024-01 (900). Model: m."
    )
    assert table.loc["forecast", "impact"] == 200.0  # against last year
