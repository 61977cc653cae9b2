"""The marts on the real public datasets, checked against plain pandas over the raw files.

Nothing here uses retailhub code to compute an expected value: the raw CSV files are read with
pandas and the conventions of docs/analytics.md are applied by hand (revenue = net product
revenue, RFM on purchase lines with a customer, equal-sized quintiles with ties by id, ...).
The pipeline runs once for the module on ``examples/public-datasets``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from tests.e2e.helpers import warehouse_path
from tests.e2e.insight_checks import check_insight

from retailhub.pipeline.project import Project

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "public-datasets"
UCI = "online_retail"
SUPERSTORE = "superstore"
PRODUCT_CODE = r"^[0-9]{5}[A-Z]*$"


# --------------------------------------------------------------------------------------------
# fixtures: one pipeline run, the raw files read independently
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, datasets_dir: Path):
    project = tmp_path_factory.mktemp("public-marts")
    shutil.copy(EXAMPLE / "retailhub.yaml", project / "retailhub.yaml")
    mp = pytest.MonkeyPatch()
    mp.setenv("RETAILHUB_DATASETS_DIR", str(datasets_dir))
    report = Project.load(project).run()
    mp.undo()
    assert report.exit_code == 0, report.error
    con = duckdb.connect(str(warehouse_path(project)), read_only=True)
    yield con
    con.close()


def mart(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.sql(sql).df()


@pytest.fixture(scope="module")
def uci(datasets_dir: Path) -> pd.DataFrame:
    """All 305 daily files; exact duplicate rows dropped (the quality gate quarantines them)."""
    files = sorted((datasets_dir / "online-retail" / "by-day").glob("*.csv"))
    raw = pd.concat(
        (pd.read_csv(f, dtype=str, keep_default_na=False) for f in files), ignore_index=True
    )
    assert len(raw) == 541_909
    raw = raw.drop_duplicates(keep="first").reset_index(drop=True)
    assert len(raw) == 536_641
    quantity = raw["Quantity"].astype(np.int64)
    # exact money: prices have at most 3 decimals, so amounts are whole thousandths of a pound
    price_milli = (raw["UnitPrice"].astype(float) * 1000).round().astype(np.int64)
    customer = raw["CustomerID"].str.replace(r"\.0$", "", regex=True)
    frame = pd.DataFrame(
        {
            "invoice": raw["InvoiceNo"],
            "code": raw["StockCode"].str.upper(),
            "day": pd.to_datetime(raw["InvoiceDate"].str[:10]),
            "quantity": quantity,
            "amount_milli": quantity * price_milli,
            "customer": customer.where(customer != "", None),
        }
    )
    cancellation = frame["invoice"].str.startswith("C")
    adjustment = frame["invoice"].str.startswith("A") | (
        (price_milli == 0) & frame["customer"].isna()
    )
    product = frame["code"].str.match(PRODUCT_CODE)
    frame["product_line"] = product & ~adjustment
    frame["purchase"] = frame["product_line"] & ~cancellation & (frame["amount_milli"] > 0)
    frame["cancellation"] = cancellation
    return frame


@pytest.fixture(scope="module")
def superstore(datasets_dir: Path) -> pd.DataFrame:
    raw = pd.read_csv(
        datasets_dir / "superstore" / "Sample - Superstore.csv",
        dtype=str,
        encoding="utf-8-sig",
        keep_default_na=False,
    )
    assert len(raw) == 9_994
    return pd.DataFrame(
        {
            "order": raw["Order ID"],
            "customer": raw["Customer ID"],
            "day": pd.to_datetime(raw["Order Date"], format="%m/%d/%Y"),
            "category": raw["Category"],
            "sub_category": raw["Sub-Category"],
            "product": raw["Product ID"],
            # Sales has at most 4 decimals: whole ten-thousandths of a dollar
            "amount_e4": (raw["Sales"].astype(float) * 10_000).round().astype(np.int64),
            "quantity": raw["Quantity"].astype(np.int64),
        }
    )


# --------------------------------------------------------------------------------------------
# independent RFM (the documented rule, written again with pandas)
# --------------------------------------------------------------------------------------------


def rfm_by_hand(purchases: pd.DataFrame, amount: str, scale: int, reference: str) -> pd.DataFrame:
    """recency, frequency, monetary and the three scores per customer, by the stated rule."""
    ref = pd.Timestamp(reference)
    per = purchases.groupby("customer").agg(
        last=("day", "max"),
        frequency=("order", "nunique"),
        monetary=(amount, "sum"),
    )
    per["recency_days"] = (ref - per["last"]).dt.days
    per["monetary"] = per["monetary"] / scale
    per = per.sort_index()  # customer id ascending (text): the tie-break
    n = len(per)
    for score, column, ascending in (
        ("r_score", "recency_days", False),
        ("f_score", "frequency", True),
        ("m_score", "monetary", True),
    ):
        order = per[column].sort_values(ascending=ascending, kind="mergesort")  # stable: ids
        rank = pd.Series(np.arange(1, n + 1), index=order.index)
        per[score] = 1 + (5 * (rank - 1)) // n
    return per


# --------------------------------------------------------------------------------------------
# Online Retail
# --------------------------------------------------------------------------------------------


def test_uci_total_and_monthly_revenue(warehouse, uci) -> None:
    lines = uci[uci["product_line"]]
    by_hand = lines.groupby(lines["day"].dt.to_period("M"))["amount_milli"].sum() / 1000
    kpis = mart(
        warehouse,
        "select strftime(date, '%Y-%m') as month, sum(revenue) as revenue "
        f"from marts.mart_kpi_daily where source_system = '{UCI}' group by 1 order by 1",
    )
    got = kpis.set_index("month")["revenue"].astype(float)
    assert list(got.index) == [str(p) for p in by_hand.index]  # 2010-12 .. 2011-12
    assert got.to_numpy() == pytest.approx(by_hand.to_numpy(), abs=1e-6)
    assert got.sum() == pytest.approx(by_hand.sum(), abs=1e-6)
    # monthly product revenue adds up to the same figure
    products = mart(
        warehouse,
        f"select sum(revenue) from marts.mart_product_performance where source_system = '{UCI}'",
    )
    assert float(products.iloc[0, 0]) == pytest.approx(by_hand.sum(), abs=1e-6)


def test_uci_daily_orders_customers_and_cancellations(warehouse, uci) -> None:
    for day in ("2010-12-01", "2011-06-10", "2011-12-09"):
        lines = uci[(uci["day"] == day) & uci["product_line"]]
        purchases = lines[lines["purchase"]]
        row = mart(
            warehouse,
            f"select * from marts.mart_kpi_daily where source_system = '{UCI}' "
            f"and date = DATE '{day}'",
        ).iloc[0]
        assert row["orders"] == purchases["invoice"].nunique(), day
        assert row["customers"] == purchases["customer"].dropna().nunique(), day
        assert row["cancelled_orders"] == lines[lines["cancellation"]]["invoice"].nunique()
        assert float(row["gross_revenue"]) == pytest.approx(
            purchases["amount_milli"].sum() / 1000, abs=1e-6
        )
        revenue = lines["amount_milli"].sum() / 1000
        assert row["avg_order_value"] == pytest.approx(revenue / purchases["invoice"].nunique())


def test_uci_customers_and_rfm(warehouse, uci) -> None:
    purchases = uci[uci["purchase"] & uci["customer"].notna()].rename(columns={"invoice": "order"})
    reference = (uci["day"].max() + pd.Timedelta(days=1)).date().isoformat()
    assert reference == "2011-12-10"
    hand = rfm_by_hand(purchases, "amount_milli", 1000, reference)
    c360 = mart(
        warehouse, f"select * from marts.mart_customer_360 where source_system = '{UCI}'"
    ).set_index("customer_id")
    assert len(c360) == len(hand) == 4_334
    c360 = c360.loc[hand.index]
    for col in ("recency_days", "frequency", "r_score", "f_score", "m_score"):
        assert (c360[col].to_numpy() == hand[col].to_numpy()).all(), col
    assert c360["monetary"].to_numpy() == pytest.approx(hand["monetary"].to_numpy(), abs=1e-6)
    # quintiles are equal-sized: 4,334 = 5 x 866.8
    for col in ("r_score", "f_score", "m_score"):
        assert sorted(c360[col].value_counts().tolist()) == [866, 867, 867, 867, 867], col
    # three customers written out (values checked by hand against the raw files)
    assert tuple(c360.loc["12346", ["recency_days", "frequency", "monetary", "revenue"]]) == (
        326,
        1,
        pytest.approx(77_183.6),
        0.0,  # the 74,215-unit order was cancelled (C541433): RFM counts the purchase
    )
    # 12347: last purchase 2011-12-07 15:52, 7 invoices, 4,310.00
    assert tuple(c360.loc["12347", ["recency_days", "frequency"]]) == (3, 7)
    assert c360.loc["12347", "monetary"] == pytest.approx(4_310.0)
    # 17850: the first customer of the file, last purchase 2010-12-02, 34 invoices
    assert tuple(c360.loc["17850", ["recency_days", "frequency"]]) == (373, 34)
    assert c360.loc["17850", "monetary"] == pytest.approx(5_391.21)


def test_uci_product_month_and_abc(warehouse, uci) -> None:
    lines = uci[uci["product_line"] & (uci["day"].dt.to_period("M") == "2011-11")]
    revenue = (lines.groupby("code")["amount_milli"].sum() / 1000).rename("revenue")
    perf = mart(
        warehouse,
        "select product_id, revenue, abc_class, orders from marts.mart_product_performance "
        f"where source_system = '{UCI}' and month = DATE '2011-11-01'",
    ).set_index("product_id")
    assert len(perf) == len(revenue)
    assert perf["revenue"].astype(float).reindex(revenue.index).to_numpy() == pytest.approx(
        revenue.to_numpy(), abs=1e-6
    )
    # ABC by hand: rank by revenue desc then id, A while the share before is < 80 %
    ranked = revenue.reset_index().sort_values(["revenue", "code"], ascending=[False, True])
    positive = ranked["revenue"].clip(lower=0)
    before = (positive.cumsum() - positive) / positive.sum()
    classes = np.where(
        ranked["revenue"] <= 0, "C", np.where(before < 0.8, "A", np.where(before < 0.95, "B", "C"))
    )
    expected = pd.Series(classes, index=ranked["code"])
    assert (perf["abc_class"].reindex(expected.index) == expected).all()
    purchases = lines[lines["purchase"]]
    orders = purchases.groupby("code")["invoice"].nunique()
    assert (perf["orders"].reindex(orders.index) == orders).all()


# --------------------------------------------------------------------------------------------
# Superstore
# --------------------------------------------------------------------------------------------


def test_superstore_totals_months_and_categories(warehouse, superstore) -> None:
    kpis = mart(
        warehouse,
        "select sum(revenue) as revenue, sum(orders) as orders from marts.mart_kpi_daily "
        f"where source_system = '{SUPERSTORE}'",
    ).iloc[0]
    assert float(kpis["revenue"]) == pytest.approx(2_297_200.8603, abs=1e-6)
    by_month = superstore.groupby(superstore["day"].dt.to_period("M"))["amount_e4"].sum() / 1e4
    months = mart(
        warehouse,
        "select strftime(date, '%Y-%m') as month, sum(revenue) as revenue "
        f"from marts.mart_kpi_daily where source_system = '{SUPERSTORE}' group by 1 order by 1",
    )
    assert len(months) == 48
    assert months["revenue"].astype(float).to_numpy() == pytest.approx(
        by_month.to_numpy(), abs=1e-6
    )
    # orders per day summed = distinct (order, day): an order has one date
    assert kpis["orders"] == superstore.groupby("day")["order"].nunique().sum()
    dec = superstore[superstore["day"].dt.to_period("M") == "2019-12"]
    cats = dec.groupby("category")["amount_e4"].sum() / 1e4
    trends = mart(
        warehouse,
        "select category, revenue from marts.mart_category_trends "
        f"where source_system = '{SUPERSTORE}' and level = 'category' "
        "and month = DATE '2019-12-01'",
    ).set_index("category")
    assert trends["revenue"].astype(float).reindex(cats.index).to_numpy() == pytest.approx(
        cats.to_numpy(), abs=1e-6
    )


def test_superstore_rfm(warehouse, superstore) -> None:
    hand = rfm_by_hand(superstore, "amount_e4", 10_000, "2019-12-31")
    c360 = mart(
        warehouse,
        f"select * from marts.mart_customer_360 where source_system = '{SUPERSTORE}'",
    ).set_index("customer_id")
    assert len(c360) == len(hand) == 793
    c360 = c360.loc[hand.index]
    for col in ("recency_days", "frequency", "r_score", "f_score", "m_score"):
        assert (c360[col].to_numpy() == hand[col].to_numpy()).all(), col
    assert sorted(c360["r_score"].value_counts().tolist()) == [158, 158, 159, 159, 159]
    # Sean Miller, the largest spender of the sample
    top = hand["monetary"].idxmax()
    assert top == "SM-20320"
    assert c360.loc[top, "monetary"] == pytest.approx(25_043.05, abs=0.01)
    assert c360.loc[top, "m_score"] == 5


# --------------------------------------------------------------------------------------------
# models: honest about what they are worth
# --------------------------------------------------------------------------------------------


def evaluation(con: duckdb.DuckDBPyConnection, source: str, model: str) -> dict:
    rows = con.sql(
        "select metric, value, detail from marts.mart_model_evaluation "
        f"where source_system = '{source}' and model = '{model}'"
    ).fetchall()
    return {m: (v if v is not None else d) for m, v, d in rows}


def test_churn_scores_only_where_the_model_beats_recency(warehouse) -> None:
    uci_churn = evaluation(warehouse, UCI, "churn")
    assert uci_churn["published"] == 1.0
    assert uci_churn["roc_auc"] > uci_churn["baseline_auc"]
    ss = evaluation(warehouse, SUPERSTORE, "churn")
    assert ss["published"] == 0.0  # Superstore shows no churn signal
    nulls = mart(
        warehouse,
        "select source_system, count(churn_probability) as scored, count(*) as customers "
        "from marts.mart_customer_360 group by 1 order by 1",
    ).set_index("source_system")
    assert nulls.loc[UCI, "scored"] == nulls.loc[UCI, "customers"]
    assert nulls.loc[SUPERSTORE, "scored"] == 0
    checks = mart(
        warehouse,
        "select source_system, text from marts.mart_insights where kind = 'model_check' "
        "and title = 'Churn model check'",
    ).set_index("source_system")["text"]
    assert checks[SUPERSTORE].startswith("Churn scores are not published")
    assert checks[UCI].startswith("The churn model beats the recency-only baseline")


def test_forecasts_say_whether_they_beat_seasonal_naive(warehouse) -> None:
    rows = mart(
        warehouse,
        "select source_system, freq, min(model) as model, bool_and(beats_baseline) as beats, "
        "min(backtest_smape) as model_smape, min(baseline_smape) as baseline_smape "
        "from marts.mart_forecast group by 1, 2 order by 1, 2",
    )
    assert len(rows) == 4
    for r in rows.itertuples(index=False):
        assert r.beats == (r.model_smape < r.baseline_smape), r
    checks = mart(
        warehouse,
        "select source_system, title, text from marts.mart_insights "
        "where kind = 'model_check' and title like '%forecast check'",
    )
    assert len(checks) == 4
    for r in checks.itertuples(index=False):
        word = "beats" if "beats seasonal naive" in r.text else "does not beat"
        assert word in r.text


def test_every_insight_query_reproduces_its_numbers(warehouse) -> None:
    insights = warehouse.sql("select kind, evidence, query from marts.mart_insights").fetchall()
    assert len(insights) >= 10
    for kind, evidence, query in insights:
        check_insight(lambda sql: warehouse.sql(sql).df(), kind, evidence, query)
