"""The engine-side twins (``*_sql``) compute exactly what the pandas functions compute.

The pipeline runs churn features and labels, the CLV summary, transaction outliers and RFM as
SQL inside DuckDB; these tests run both versions on the same inputs (hand examples, random
frames with ties and edge cases, the CDNOW sample) and require the same result.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.anomalies import transaction_outliers, transaction_outliers_sql
from retailhub.analytics.churn import (
    build_churn_dataset,
    churn_features,
    churn_features_sql,
    churn_labels_sql,
)
from retailhub.analytics.clv import summary_from_transactions, summary_sql
from retailhub.analytics.rfm import rfm_sql


def random_lines(seed: int, n: int = 20_000) -> pd.DataFrame:
    """Orders with one date each, two shops, string ids, many ties in amounts."""
    rng = np.random.default_rng(seed)
    lines = pd.DataFrame(
        {
            "source_system": rng.choice(["a", "b"], n),
            "customer_id": rng.integers(0, 1_500, n).astype(str),
            "order_id": rng.integers(0, 6_000, n).astype(str),
            "order_date": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
            "net_amount": np.where(
                rng.random(n) < 0.4, rng.integers(1, 5, n), rng.gamma(2, 10, n)
            ).round(2),
        }
    )
    lines["order_date"] = lines.groupby("order_id")["order_date"].transform("min")
    return lines


def sql_frame(lines: pd.DataFrame, sql: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("lines", lines)
    return con.sql(sql).df()


# --------------------------------------------------------------------------------------------
# churn
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("active", [None, 120])
def test_churn_features_sql_equals_pandas(seed: int, active: int | None) -> None:
    lines = random_lines(seed)
    cutoff = date(2021, 10, 1)
    expected = churn_features(lines, cutoff, product_col=None, active_within_days=active)
    got = sql_frame(
        lines, churn_features_sql("lines", cutoff, active_within_days=active)
    ).set_index(["source_system", "customer_id"])
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


def test_churn_features_sql_hand_example() -> None:
    # customer x: orders on day -200, -100, -20 (two lines), -5 before the cutoff; one after
    cutoff = pd.Timestamp("2022-01-01")
    rows = [
        ("x", "o1", -200, 10.0),
        ("x", "o2", -100, 20.0),
        ("x", "o3", -20, 5.0),
        ("x", "o3", -20, 15.0),
        ("x", "o4", -5, 40.0),
        ("x", "o5", 3, 99.0),  # after the cutoff: ignored
    ]
    lines = pd.DataFrame(
        [(c, o, cutoff + pd.Timedelta(days=d), a) for c, o, d, a in rows],
        columns=["customer_id", "order_id", "order_date", "net_amount"],
    )
    got = sql_frame(lines, churn_features_sql("lines", cutoff.date(), source_col=None))
    row = got.set_index("customer_id").loc["x"]
    assert row["recency_days"] == 5
    assert row["tenure_days"] == 200
    assert row["frequency"] == 4
    assert row["monetary"] == 90.0
    assert row["avg_order_value"] == 22.5
    assert row["purchase_days"] == 4
    assert row["avg_days_between_purchases"] == pytest.approx(195 / 3)
    assert row["recency_to_gap_ratio"] == pytest.approx(5 / 65)
    assert (row["orders_last_30d"], row["orders_last_90d"], row["orders_prev_90d"]) == (2, 2, 1)
    assert row["revenue_last_90d"] == 60.0
    assert row["trend"] == pytest.approx((2 - 1) / 3)


def test_churn_labels_sql_equals_build_churn_dataset() -> None:
    lines = random_lines(3)
    cutoff = date(2021, 9, 1)
    _, expected = build_churn_dataset(lines, cutoff, 90, product_col=None)
    got = sql_frame(lines, churn_labels_sql("lines", cutoff, 90))
    got = got.set_index(["source_system", "customer_id"])["churned"]
    assert got.index.equals(expected.index)
    assert (got.to_numpy() == expected.to_numpy()).all()
    assert 0 < expected.mean() < 1


# --------------------------------------------------------------------------------------------
# CLV summary
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["D", "W"])
def test_clv_summary_sql_equals_pandas(freq: str) -> None:
    lines = random_lines(4)
    lines = lines[lines["source_system"] == "a"]
    end = date(2021, 12, 31)
    expected = summary_from_transactions(
        lines, "customer_id", "order_date", "net_amount", end, freq=freq
    )
    got = sql_frame(lines, summary_sql("lines", end, freq, source_col=None)).set_index(
        "customer_id"
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_names=False, rtol=1e-12)


def test_clv_summary_sql_reproduces_the_published_cdnow_summary(datasets_dir: Path) -> None:
    cdnow = datasets_dir / "cdnow"
    raw = pd.read_csv(
        cdnow / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "value"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    got = sql_frame(
        raw,
        summary_sql(
            "lines",
            date(1997, 9, 30),
            "W",
            customer_col="customer",
            date_col="date",
            value_col="value",
            source_col=None,
        ),
    ).set_index("customer_id")
    published = pd.read_csv(cdnow / "cdnow_customers_summary.csv").set_index("ID")
    zbar = pd.read_csv(cdnow / "cdnow_customers_summary_with_transactions.csv").set_index("ID")
    got = got.reindex(published.index)
    assert len(got) == 2_357
    assert got["frequency"].tolist() == published["frequency"].tolist()
    half_cent = 0.005 + 1e-9  # the published file has 2 decimals
    assert (got["recency"] - published["recency"]).abs().max() <= half_cent
    assert (got["T"] - published["T"]).abs().max() <= half_cent
    assert (got["monetary_value"] - zbar["zbar"]).abs().max() <= half_cent


# --------------------------------------------------------------------------------------------
# transaction outliers
# --------------------------------------------------------------------------------------------


def outlier_lines(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 30_000
    lines = pd.DataFrame(
        {
            "line_id": np.arange(n),
            "product_id": rng.integers(0, 300, n).astype(str),
            "quantity": np.where(rng.random(n) < 0.6, 12, rng.integers(-3, 150, n)),
            "net_amount": rng.lognormal(2, 1, n).round(2),
        }
    )
    lines.loc[rng.integers(0, n, 40), "quantity"] = 4_000
    # products whose MAD is 0 (mean absolute deviation fallback) and tiny products (< 5 lines)
    odd = lines["product_id"].isin(["1", "2"])
    lines.loc[odd, "quantity"] = np.where(rng.random(odd.sum()) < 0.55, 6, 600)
    lines.loc[lines.index[:3], "product_id"] = "tiny"
    return lines


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transaction_outliers_sql_equals_pandas(seed: int) -> None:
    lines = outlier_lines(seed)
    expected = transaction_outliers(lines)
    got = sql_frame(lines, transaction_outliers_sql("lines", keep_cols=("line_id",)))
    key = ["outlier_metric", "line_id"]
    a = expected[[*key, "robust_z", "group_median"]].sort_values(key).reset_index(drop=True)
    b = got[[*key, "robust_z", "group_median"]].sort_values(key).reset_index(drop=True)
    assert len(a) > 50
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)
    # largest |z| first
    assert got["robust_z"].abs().is_monotonic_decreasing


def test_transaction_outliers_sql_even_count_median() -> None:
    # 14 lines: 7 x 2, 5 x 8, 2 x 4,000. Sorted, lines 7 and 8 are 2 and 8, so the median of
    # ln(quantity) is (ln 2 + ln 8) / 2 = ln 4; every 2 and 8 deviates by ln 2 (the MAD), so
    # scale = 1.4826 ln 2 and 4,000 (1,000 x the typical 4) scores ln(1000) / (1.4826 ln 2).
    lines = pd.DataFrame(
        {
            "product_id": ["p"] * 14,
            "quantity": [2] * 7 + [8] * 5 + [4_000] * 2,
            "net_amount": [1.0] * 14,
        }
    )
    got = sql_frame(lines, transaction_outliers_sql("lines", value_cols=("quantity",)))
    expected = transaction_outliers(lines, value_cols=("quantity",))
    assert got["outlier_value"].tolist() == expected["outlier_value"].tolist() == [4_000] * 2
    assert got["group_median"].iloc[0] == pytest.approx(4.0)
    z = np.log(1000) / (1.4826 * np.log(2))
    assert got["robust_z"].tolist() == pytest.approx([z, z])
    assert expected["robust_z"].tolist() == pytest.approx([z, z])


# --------------------------------------------------------------------------------------------
# RFM on DECIMAL money: exact and identical from run to run
# --------------------------------------------------------------------------------------------


def test_rfm_sql_sums_decimal_money_exactly() -> None:
    lines = random_lines(5, n=60_000)
    con = duckdb.connect(config={"threads": 2})
    con.register("raw", lines)
    con.execute(
        "create table lines as select source_system, customer_id, order_id, order_date, "
        "cast(net_amount as decimal(18, 4)) as net_amount from raw"
    )
    runs = [con.sql(rfm_sql("lines", where=None)).df() for _ in range(3)]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)
    exact = con.sql(
        "select source_system, customer_id, cast(sum(net_amount) as double) as m from lines "
        "group by all order by all"
    ).df()
    assert runs[0]["monetary"].tolist() == exact["m"].tolist()
