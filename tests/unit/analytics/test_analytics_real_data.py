"""The analytics functions on the real public data sets (slow): the numbers in docs/analytics.md.

Run with ``pytest -m slow tests/unit/analytics -s`` to see the measured values printed.
Purchase lines are built here with the same rules the core model uses for ``is_cancellation``,
``is_adjustment`` and ``is_product`` (see online-retail/SOURCE.md), so the functions see what
the pipeline will feed them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.anomalies import detect_anomalies, explain_anomaly, transaction_outliers
from retailhub.analytics.churn import time_split_evaluation
from retailhub.analytics.clv import (
    clv,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    summary_from_transactions,
)
from retailhub.analytics.forecast import backtest
from retailhub.analytics.products import abc_classes
from retailhub.analytics.rfm import rfm_sql, rfm_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def online_retail(datasets_dir: Path) -> pd.DataFrame:
    files = sorted((datasets_dir / "online-retail" / "by-day").glob("*.csv"))
    assert len(files) == 305
    raw = pd.concat(
        [pd.read_csv(f, dtype={"InvoiceNo": str, "StockCode": str}) for f in files],
        ignore_index=True,
    )
    assert len(raw) == 541_909
    purchase = (
        ~raw["InvoiceNo"].str.startswith(("C", "A"))  # cancellations, bad-debt adjustments
        & raw["CustomerID"].notna()
        & raw["StockCode"].str.match(r"^\d{5}[A-Za-z]*$")  # products only (no POST, M, ...)
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
    )
    lines = raw[purchase]
    return pd.DataFrame(
        {
            "customer_id": lines["CustomerID"].astype("int64").astype(str),
            "order_id": lines["InvoiceNo"],
            "order_date": pd.to_datetime(lines["InvoiceDate"]),
            "net_amount": lines["Quantity"] * lines["UnitPrice"],
            "quantity": lines["Quantity"],
            "product_id": lines["StockCode"].str.upper(),
            "country": lines["Country"],
        }
    ).reset_index(drop=True)


@pytest.fixture(scope="module")
def superstore(datasets_dir: Path) -> pd.DataFrame:
    raw = pd.read_csv(datasets_dir / "superstore" / "Sample - Superstore.csv", encoding="utf-8-sig")
    assert len(raw) == 9_994
    return pd.DataFrame(
        {
            "customer_id": raw["Customer ID"],
            "order_id": raw["Order ID"],
            "order_date": pd.to_datetime(raw["Order Date"], format="%m/%d/%Y"),
            "net_amount": raw["Sales"],
            "product_id": raw["Product ID"],
        }
    )


def test_rfm_online_retail_pandas_equals_sql(online_retail: pd.DataFrame) -> None:
    lines = online_retail[["customer_id", "order_id", "order_date", "net_amount"]]
    py = rfm_table(lines)
    con = duckdb.connect()
    con.register("lines", lines)
    sql = con.sql(rfm_sql("lines", where=None, source_col=None)).df()
    assert len(py) == len(sql) == online_retail["customer_id"].nunique()
    for col in ("recency_days", "frequency", "r_score", "f_score", "m_score", "segment"):
        assert py[col].astype(str).tolist() == sql[col].astype(str).tolist(), col
    assert py["reference_date"].iloc[0] == pd.Timestamp("2011-12-10")
    print("Online Retail RFM segments:", py["segment"].value_counts().to_dict())


def test_rfm_superstore_segments(superstore: pd.DataFrame) -> None:
    result = rfm_table(superstore)
    assert len(result) == 793
    assert result["reference_date"].iloc[0] == pd.Timestamp("2019-12-31")
    print("Superstore RFM segments:", result["segment"].value_counts().to_dict())


def test_clv_online_retail_holdout(online_retail: pd.DataFrame) -> None:
    calibration_end = "2011-09-09"  # 13-week holdout to 2011-12-09
    summary = summary_from_transactions(
        online_retail, "customer_id", "order_date", "net_amount", calibration_end, freq="W"
    )
    bg = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    gg = fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    holdout = online_retail[online_retail["order_date"] >= pd.Timestamp("2011-09-10")]
    actual = (
        holdout.assign(day=holdout["order_date"].dt.normalize())
        .groupby("customer_id")["day"]
        .nunique()
        .reindex(summary.index, fill_value=0)
    )
    weeks = 13.0
    predicted = expected_purchases(
        bg, weeks, summary["frequency"], summary["recency"], summary["T"]
    )
    alive = p_alive(bg, summary["frequency"], summary["recency"], summary["T"])
    value = clv(
        bg, gg, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"]
    )
    corr = float(np.corrcoef(predicted, actual)[0, 1])
    print(
        f"Online Retail BG/NBD {bg}\nGamma-Gamma {gg}\n"
        f"holdout purchase-days predicted {predicted.sum():.0f} actual {actual.sum():.0f} "
        f"corr {corr:.3f}; mean P(alive) {alive.mean():.3f}; 12-month CLV total {value.sum():,.0f}"
    )
    assert bg.n_customers == len(summary)
    assert np.all((alive > 0) & (alive <= 1))
    assert corr > 0.6  # the ranking of customers is informative
    assert 0.5 < predicted.sum() / actual.sum() < 1.5


def test_churn_online_retail_beats_recency(online_retail: pd.DataFrame) -> None:
    _, report = time_split_evaluation(online_retail, date(2011, 5, 1), 90)
    summary = {k: v for k, v in report.as_dict().items() if k != "calibration"}
    print("Online Retail churn (train 2011-05-01, evaluate 2011-07-30):", summary)
    print(report.calibration.to_string())
    assert report.auc_improvement > 0.02
    assert report.roc_auc > 0.7


def test_churn_superstore_is_not_predictable(superstore: pd.DataFrame) -> None:
    _, report = time_split_evaluation(superstore, date(2018, 6, 1), 180)
    summary = {k: v for k, v in report.as_dict().items() if k != "calibration"}
    print("Superstore churn (train 2018-06-01, evaluate 2018-11-28, 180 days):", summary)
    assert abs(report.roc_auc - 0.5) < 0.1  # documented: no signal in this sample data


def test_forecast_superstore_monthly_beats_seasonal_naive(superstore: pd.DataFrame) -> None:
    monthly = superstore.groupby(superstore["order_date"].dt.to_period("M").dt.to_timestamp())[
        "net_amount"
    ].sum()
    weekly = superstore.groupby(superstore["order_date"].dt.to_period("W-SUN").dt.start_time)[
        "net_amount"
    ].sum()
    assert len(monthly) == 48
    m = backtest(monthly, "M", 4, 3)
    w = backtest(weekly, "W", 6, 8)
    print("Superstore monthly backtest 4x3:", m.as_dict())
    print("Superstore weekly backtest 6x8:", w.as_dict())
    assert m.winner == "model" and w.winner == "model"


def test_forecast_online_retail_weekly_is_too_short_for_seasonality(
    online_retail: pd.DataFrame,
) -> None:
    complete = online_retail[online_retail["order_date"] < pd.Timestamp("2011-12-05")]
    weekly = complete.groupby(complete["order_date"].dt.to_period("W-SUN").dt.start_time)[
        "net_amount"
    ].sum()
    result = backtest(weekly, "W", 4, 4)
    print("Online Retail weekly backtest 4x4:", result.as_dict())
    assert set(result.models_used) <= {"ETS(A,N,N)", "ETS(A,Ad,N)"}


def test_anomalies_online_retail_find_the_documented_extreme_order(
    online_retail: pd.DataFrame,
) -> None:
    lines = online_retail.assign(date=online_retail["order_date"].dt.normalize())
    daily = (
        lines.groupby("date")
        .agg(
            revenue=("net_amount", "sum"),
            orders=("order_id", "nunique"),
            customers=("customer_id", "nunique"),
        )
        .reset_index()
    )
    found = detect_anomalies(daily, ["revenue", "orders", "customers"])
    print(f"Online Retail daily anomalies: {found.attrs}")
    print(found.to_string())
    last_day = found[found["date"] == pd.Timestamp("2011-12-09")].set_index("metric")
    # invoice 581483 (80,995 x 23843, 168,469.60) is on 2011-12-09, which is also a half day
    assert last_day.loc["revenue", "direction"] == "up"
    assert last_day.loc["orders", "direction"] == "down"
    breakdown = (
        lines.groupby(["date", "country"])["net_amount"]
        .sum()
        .reset_index()
        .rename(columns={"country": "dimension", "net_amount": "value"})
    )
    explanation = explain_anomaly(breakdown, date(2011, 12, 9))
    print(explanation.sentence)
    assert explanation.contributions["member"].iloc[0] == "United Kingdom"


def test_transaction_outliers_and_abc_online_retail(online_retail: pd.DataFrame) -> None:
    outliers = transaction_outliers(online_retail)
    rate = outliers.groupby("outlier_metric").size() / len(online_retail)
    print("Online Retail line outliers per metric:", rate.round(4).to_dict())
    assert (rate < 0.02).all()
    abc = abc_classes(online_retail.groupby("product_id")["net_amount"].sum())
    counts = abc["abc_class"].value_counts().to_dict()
    print("Online Retail ABC:", counts, "of", len(abc))
    assert counts["A"] < counts["B"] + counts["C"]
