"""Insights: exact sentences from hand-built frames, ranking, and queries that back the claims.

The marts below are aggregated by hand from the order list in ``fct_sales_frame``; the test then
loads that list into DuckDB as ``core.fct_sales`` and runs every insight's query to check it
returns the numbers quoted in the evidence.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from retailhub.analytics.forecast import ForecastResult
from retailhub.analytics.insights import INSIGHT_COLUMNS, generate_insights

PRODUCTS = {  # product_key: (product_id, name, category, sub_category)
    1: ("P1", "Oak table", "Furniture", "Tables"),
    2: ("P2", "Desk chair", "Furniture", "Chairs"),
    3: ("P3", "A4 paper", "Office", "Paper"),
}

ORDERS = [  # (date, product_key, amount): one line per order
    *[
        (d, 1, 1000.0)
        for d in ("2011-10-03", "2011-10-10", "2011-10-17", "2011-10-24", "2011-10-31")
    ],
    *[
        (d, 2, 1000.0)
        for d in ("2011-10-03", "2011-10-10", "2011-10-17", "2011-10-24", "2011-10-31")
    ],
    *[(d, 3, 1000.0) for d in ("2011-10-05", "2011-10-12")],
    *[(d, 1, 1700.0) for d in ("2011-11-07", "2011-11-21")],
    *[(d, 2, 1200.0) for d in ("2011-11-14", "2011-11-14", "2011-11-21", "2011-11-28")],
    *[(d, 3, 700.0) for d in ("2011-11-02", "2011-11-09", "2011-11-16")],
    *[(d, 3, 2000.0) for d in ("2010-11-01", "2010-11-08", "2010-11-15", "2010-11-22")],
]


def fct_sales_frame() -> pd.DataFrame:
    rows = []
    for i, (day, key, amount) in enumerate(ORDERS):
        rows.append(
            {
                "source_system": "superstore",
                "order_id": f"O{i:03d}",
                "order_line": 1,
                "order_date": pd.Timestamp(day),
                "customer_id": f"C{i % 4}",
                "product_key": key,
                "product_id": PRODUCTS[key][0],
                "quantity": 1,
                "net_amount": amount,
                "is_cancellation": False,
                "is_adjustment": False,
                "is_product": True,
            }
        )
    return pd.DataFrame(rows)


# Hand aggregates of ORDERS.
KPIS = pd.DataFrame(
    {
        "month": pd.to_datetime(["2010-11-01", "2011-10-01", "2011-11-01"]),
        "revenue": [8000.0, 12000.0, 10300.0],  # Nov 2010: 4 x 2000; Oct: 5000+5000+2000
        "orders": [4, 12, 9],
    }
)
CATEGORY = pd.DataFrame(
    {
        "month": pd.to_datetime(["2011-10-01"] * 3 + ["2011-11-01"] * 3),
        "category": ["Furniture", "Furniture", "Office"] * 2,
        "sub_category": ["Tables", "Chairs", "Paper"] * 2,
        "revenue": [5000.0, 5000.0, 2000.0, 3400.0, 4800.0, 2100.0],
    }
)
PRODUCT = pd.DataFrame(
    {
        "month": pd.to_datetime(["2011-10-01"] * 3 + ["2011-11-01"] * 3),
        "product_id": ["P1", "P2", "P3"] * 2,
        "product_name": ["Oak table", "Desk chair", "A4 paper"] * 2,
        "revenue": [5000.0, 5000.0, 2000.0, 3400.0, 4800.0, 2100.0],
    }
)
RFM = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "segment": ["Champions", "Champions", "Champions", "Can't Lose Them", "At Risk", "At Risk"],
        "recency_days": [70, 61, 10, 200, 150, 170],
        "monetary": [1000.0, 2000.0, 500.0, 3000.0, 600.0, 1000.0],
        "first_order_date": pd.to_datetime(["2010-11-01"] * 6),
        "reference_date": pd.to_datetime(["2011-12-01"] * 6),
    }
)
ANOMALIES = pd.DataFrame(
    {
        "metric": ["revenue"],
        "date": pd.to_datetime(["2011-11-14"]),
        "observed": [2400.0],
        "expected": [1200.0],
        "residual": [1200.0],
        "score": [6.2],
        "direction": ["up"],
    }
)
FORECAST = ForecastResult(
    forecast=pd.DataFrame(
        {
            "forecast": [11000.0],
            "lower_80": [9000.0],
            "upper_80": [13000.0],
            "lower_95": [8000.0],
            "upper_95": [14000.0],
        },
        index=pd.DatetimeIndex(["2011-12-01"], name="date"),
    ),
    model="ETS(A,A,A) m=12",
    freq="M",
    seasonal_periods=12,
    n_obs=36,
)

# RFM history: 2010-11-01 .. 2011-12-01 = 395 days = 12.977 months (of 30.4375 days)
MONTHS = 395 / 30.4375

EXPECTED = [
    # (kind, text, impact, severity); reference revenue = 10,300 (Nov 2011)
    (
        "category_change",
        "Furniture revenue fell 18% month over month (from 10,000 to 8,200), "
        "driven by Tables (−32%).",
        1800.0,
        "high",
    ),
    (
        "revenue_trend",
        "Revenue fell 14% month over month to 10,300 in 2011-11 (12,000 in 2011-10). "
        "Year over year it is up 29%.",
        1700.0,
        "high",
    ),
    (
        "product_faller",
        "Oak table (P1) revenue fell 32% month over month (from 5,000 to 3,400).",
        1600.0,
        "high",
    ),
    (
        "aov_change",
        "Average order value rose 14% to 1,144.44 in 2011-11 (1,000.00 in 2011-10).",
        (10300 / 9 - 1000) * 9,
        "high",
    ),
    ("anomaly", "Revenue on 2011-11-14 was 100% above expected (2,400 vs 1,200).", 1200.0, "high"),
    (
        "forecast",
        "Revenue is forecast at 11,000 for 2011-12 (80% interval 9,000–13,000), "
        "7% above 2011-11 (10,300). Model: ETS(A,A,A) m=12.",
        700.0,
        "medium",
    ),
    (
        "rfm_cant_lose",
        "1 customer is in Can't Lose Them: they spent 3,000 (37% of customer revenue) but last "
        "ordered a median of 200 days ago. Win them back personally: strong offer, ask what "
        "went wrong.",
        3000 / MONTHS,  # 231 a month = 2.2 % of 10,300
        "low",
    ),
    (
        "rfm_quiet_champions",
        "2 Champions have not ordered for at least 60 days: target them with a win-back offer.",
        3000 / MONTHS,  # same impact as above: ties ordered by KIND_PRIORITY
        "low",
    ),
    (
        "rfm_at_risk",
        "2 customers are in At Risk: they spent 1,600 (20% of customer revenue) but last "
        "ordered a median of 160 days ago. Send personalised win-back emails with offers on "
        "what they used to buy.",
        1600 / MONTHS,
        "low",
    ),
    (
        "category_change",
        "Office revenue rose 5% month over month (from 2,000 to 2,100), driven by Paper (+5%).",
        100.0,
        "low",
    ),
    (
        "product_riser",
        "A4 paper (P3) revenue rose 5% month over month (from 2,000 to 2,100).",
        100.0,
        "low",
    ),
]


@pytest.fixture(scope="module")
def insights() -> pd.DataFrame:
    return generate_insights(KPIS, CATEGORY, PRODUCT, RFM, ANOMALIES, FORECAST)


def test_exact_sentences_in_rank_order(insights: pd.DataFrame) -> None:
    assert list(insights.columns) == list(INSIGHT_COLUMNS)
    assert insights["rank"].tolist() == list(range(1, len(EXPECTED) + 1))
    for (kind, text, impact, severity), row in zip(EXPECTED, insights.itertuples(), strict=True):
        assert row.kind == kind
        assert row.text == text
        assert row.impact == pytest.approx(impact)
        assert row.severity == severity, (kind, row.impact / 10300)


def test_metric_values_and_evidence(insights: pd.DataFrame) -> None:
    by_kind = insights.set_index("title")
    trend = by_kind.loc["Revenue month over month"]
    assert trend["metric_value"] == pytest.approx(-1700 / 12000)
    evidence = json.loads(trend["evidence"])
    assert evidence["revenue"] == 10300 and evidence["previous_revenue"] == 12000
    assert evidence["yoy_growth"] == pytest.approx(2300 / 8000)
    furniture = json.loads(by_kind.loc["Furniture revenue", "evidence"])
    assert furniture["driver"] == "Tables"
    assert furniture["driver_share_of_change"] == pytest.approx(1600 / 1800)


@pytest.fixture(scope="module")
def core_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.register("fct", fct_sales_frame())
    con.execute("CREATE TABLE core.fct_sales AS SELECT * FROM fct")
    dim = pd.DataFrame(
        [(k, *v) for k, v in PRODUCTS.items()],
        columns=["product_key", "product_id", "product_name", "category", "sub_category"],
    )
    con.register("dim", dim)
    con.execute("CREATE TABLE core.dim_product AS SELECT * FROM dim")
    return con


def test_queries_run_and_back_the_numbers(
    insights: pd.DataFrame, core_db: duckdb.DuckDBPyConnection
) -> None:
    for row in insights.itertuples():
        result = core_db.sql(row.query).df()  # every query must run on the core schema
        evidence = json.loads(row.evidence)
        if row.kind == "revenue_trend":
            by_month = result.set_index(result["month"].dt.strftime("%Y-%m"))["revenue"]
            assert by_month["2011-11"] == evidence["revenue"]
            assert by_month["2011-10"] == evidence["previous_revenue"]
            assert by_month["2010-11"] == evidence["year_ago_revenue"]
        elif row.kind == "aov_change":
            assert result["aov"].iloc[-1] == pytest.approx(evidence["aov"])
        elif row.kind == "category_change":
            totals = result.groupby(result["month"].dt.strftime("%Y-%m"))["revenue"].sum()
            assert totals["2011-11"] == evidence["revenue"]
            assert totals["2011-10"] == evidence["previous_revenue"]
        elif row.kind in ("product_riser", "product_faller"):
            assert result["revenue"].iloc[-1] == evidence["revenue"]
        elif row.kind == "anomaly":
            day = result.set_index(result["date"].dt.strftime("%Y-%m-%d"))["revenue"]
            assert day["2011-11-14"] == evidence["observed"]
        elif row.kind == "forecast":
            assert result["revenue"].iloc[-1] == evidence["last_revenue"]


def test_concentration_insight() -> None:
    product = pd.DataFrame(
        {
            "month": pd.to_datetime(["2011-11-01"] * 6),
            "product_id": list("abcdef"),
            "revenue": [100.0, 60.0, 40.0, 30.0, 20.0, 5.0],
        }
    )
    result = generate_insights(product_monthly=product)
    row = result[result["kind"] == "concentration"].iloc[0]
    # total 255; before-shares 0, .39, .63, .78, .90, .98 -> A = a, b, c, d (230 = 90 %)
    assert row["text"] == "67% of products (4 of 6) made 90% of revenue in 2011-11 (class A)."
    assert row["severity"] == "info"
    assert row["rank"] == len(result)


def test_no_inputs_gives_empty_frame_with_columns() -> None:
    result = generate_insights()
    assert result.empty and list(result.columns) == list(INSIGHT_COLUMNS)


def test_currency_prefix() -> None:
    result = generate_insights(KPIS, currency="£")
    assert result["text"].iloc[0].startswith("Revenue fell 14% month over month to £10,300")
