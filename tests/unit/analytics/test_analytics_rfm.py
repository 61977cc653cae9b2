"""RFM: hand-computed scores and segments, pandas == DuckDB SQL, speed."""

from __future__ import annotations

import time
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.rfm import (
    RFM_COLUMNS,
    SEGMENT_ACTIONS,
    SEGMENT_GRID,
    SEGMENTS,
    quintile_scores,
    rfm_sql,
    rfm_table,
    segment_for,
)

REF = date(2024, 1, 31)

# customer: (last order date, number of orders, total spend). Hand-computed below.
CUSTOMERS = {
    "c01": (date(2024, 1, 30), 1, 10.0),
    "c02": (date(2024, 1, 30), 5, 500.0),
    "c03": (date(2024, 1, 20), 2, 40.0),
    "c04": (date(2024, 1, 10), 2, 300.0),
    "c05": (date(2023, 12, 31), 1, 40.0),
    "c06": (date(2023, 12, 1), 3, 120.0),
    "c07": (date(2023, 11, 1), 1, 5.0),
    "c08": (date(2023, 10, 1), 4, 800.0),
    "c09": (date(2023, 7, 1), 1, 60.0),
    "c10": (date(2023, 1, 1), 1, 20.0),
}


def hand_lines() -> pd.DataFrame:
    """Orders every 7 days back from the last one; spend split evenly; c02 has a 2-line order."""
    rows = []
    for cust, (last, n_orders, spend) in CUSTOMERS.items():
        for k in range(n_orders):
            day = last - timedelta(days=7 * k)
            order = f"{cust}-o{k}"
            amount = spend / n_orders
            if cust == "c02" and k == 0:  # two lines in one order, with a time of day
                rows.append((cust, order, pd.Timestamp(day) + pd.Timedelta(hours=15), amount / 4))
                rows.append(
                    (cust, order, pd.Timestamp(day) + pd.Timedelta(hours=15), amount * 3 / 4)
                )
            else:
                rows.append((cust, order, pd.Timestamp(day) + pd.Timedelta(hours=9), amount))
    return pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "net_amount"])


# Hand computation (n = 10, score = 1 + floor(5 * (rank - 1) / 10), worst first, ties by id):
# recency days: c01 1, c02 1, c03 11, c04 21, c05 31, c06 61, c07 91, c08 122, c09 214, c10 395
#   order c10 c09 | c08 c07 | c06 c05 | c04 c03 | c01 c02  -> R 1 1 2 2 3 3 4 4 5 5
# frequency ascending: c01 c05 | c07 c09 | c10 c03 | c04 c06 | c08 c02 (1,1,1,1,1,2,2,3,4,5)
# monetary ascending: c07 5, c01 10 | c10 20, c03 40 | c05 40, c09 60 | c06 120, c04 300 |
#   c02 500, c08 800 (tie c03/c05 at 40 broken by id)
# FM = (F + M + 1) // 2, segment from SEGMENT_GRID[R][FM].
EXPECTED = {
    #       recency, freq, R, F, M, FM, segment
    "c01": (1, 1, 5, 1, 1, 1, "New Customers"),
    "c02": (1, 5, 5, 5, 5, 5, "Champions"),
    "c03": (11, 2, 4, 3, 2, 3, "Potential Loyalists"),
    "c04": (21, 2, 4, 4, 4, 4, "Champions"),
    "c05": (31, 1, 3, 1, 3, 2, "About to Sleep"),
    "c06": (61, 3, 3, 4, 4, 4, "Loyal Customers"),
    "c07": (91, 1, 2, 2, 1, 2, "Hibernating"),
    "c08": (122, 4, 2, 5, 5, 5, "Can't Lose Them"),
    "c09": (214, 1, 1, 2, 3, 3, "At Risk"),
    "c10": (395, 1, 1, 3, 2, 3, "At Risk"),
}


def test_hand_computed_example() -> None:
    result = rfm_table(hand_lines(), REF).set_index("customer_id")
    assert list(result.index) == sorted(CUSTOMERS)
    for cust, (recency, freq, r, f, m, fm, segment) in EXPECTED.items():
        row = result.loc[cust]
        assert row["recency_days"] == recency, cust
        assert row["frequency"] == freq, cust
        assert row["monetary"] == pytest.approx(CUSTOMERS[cust][2]), cust
        assert (row["r_score"], row["f_score"], row["m_score"], row["fm_score"]) == (r, f, m, fm)
        assert row["rfm_score"] == f"{r}{f}{m}"
        assert row["segment"] == segment, cust
        assert row["recommended_action"] == SEGMENT_ACTIONS[segment]
    assert result.loc["c06", "first_order_date"] == pd.Timestamp("2023-11-17")
    assert result.loc["c06", "last_order_date"] == pd.Timestamp("2023-12-01")


def test_default_reference_date_is_day_after_last_order() -> None:
    lines = hand_lines()
    default = rfm_table(lines)
    assert (default["reference_date"] == pd.Timestamp(REF)).all()
    pd.testing.assert_frame_equal(default, rfm_table(lines, REF))


def test_explicit_reference_date_ignores_later_lines() -> None:
    lines = hand_lines()
    as_of = date(2023, 12, 31)
    earlier = lines[lines["order_date"] < pd.Timestamp(as_of)]
    result = rfm_table(lines, as_of)
    pd.testing.assert_frame_equal(result, rfm_table(earlier, as_of))
    assert (result["recency_days"] >= 1).all()
    # c05's only order is on 2023-12-31 itself: not yet visible
    assert "c05" not in set(result["customer_id"])
    _assert_same(result, _run_sql(lines, reference_date=as_of, source_col=None))


def test_output_columns() -> None:
    assert list(rfm_table(hand_lines()).columns) == list(RFM_COLUMNS)


def test_quintile_rule_hand_values() -> None:
    # n = 7: 1 + floor(5 * (r - 1) / 7) for r = 1..7 -> 0/7, 5/7, 10/7, 15/7, 20/7, 25/7, 30/7
    assert quintile_scores(np.arange(1, 8), np.full(7, 7)).tolist() == [1, 1, 2, 3, 3, 4, 5]
    # n = 3: 0, 5/3, 10/3 -> scores 1, 2, 4 (small groups skip scores, by construction)
    assert quintile_scores(np.arange(1, 4), np.full(3, 3)).tolist() == [1, 2, 4]


@pytest.mark.parametrize("n", range(1, 61))
def test_quintiles_are_equal_sized(n: int) -> None:
    scores = quintile_scores(np.arange(1, n + 1), np.full(n, n))
    assert scores.min() >= 1 and scores.max() <= 5
    assert np.all(np.diff(scores) >= 0)
    sizes = np.bincount(scores, minlength=6)[1:]
    if n >= 5:
        assert sizes.max() - sizes.min() <= 1


@pytest.mark.parametrize(
    ("r", "fm", "segment"),
    [
        (1, 1, "Lost"),
        (1, 2, "Hibernating"),
        (2, 1, "Hibernating"),
        (2, 2, "Hibernating"),
        (1, 3, "At Risk"),
        (2, 4, "At Risk"),
        (1, 5, "Can't Lose Them"),
        (2, 5, "Can't Lose Them"),
        (3, 1, "About to Sleep"),
        (3, 2, "About to Sleep"),
        (3, 3, "Need Attention"),
        (3, 4, "Loyal Customers"),
        (3, 5, "Loyal Customers"),
        (4, 1, "Promising"),
        (5, 1, "New Customers"),
        (4, 2, "Potential Loyalists"),
        (5, 3, "Potential Loyalists"),
        (4, 4, "Champions"),
        (5, 5, "Champions"),
    ],
)
def test_segment_grid(r: int, fm: int, segment: str) -> None:
    assert segment_for(np.array([r]), np.array([fm]))[0] == segment


def test_grid_uses_exactly_the_eleven_segments() -> None:
    used = {name for row in SEGMENT_GRID for name in row}
    assert used == set(SEGMENTS) == set(SEGMENT_ACTIONS)
    assert len(SEGMENTS) == 11


def test_scores_ranked_within_source_system_with_own_reference_date() -> None:
    a = hand_lines().assign(source_system="online_retail")
    b = hand_lines().assign(source_system="superstore")
    b["order_date"] = b["order_date"] + pd.Timedelta(days=365)  # later data in source b
    result = rfm_table(pd.concat([a, b], ignore_index=True))
    assert list(result.columns[:2]) == ["source_system", "customer_id"]
    for source, ref in (("online_retail", "2024-01-31"), ("superstore", "2025-01-30")):
        part = result[result["source_system"] == source].set_index("customer_id")
        assert (part["reference_date"] == pd.Timestamp(ref)).all()
        for cust, expected in EXPECTED.items():
            assert part.loc[cust, "recency_days"] == expected[0]
            assert part.loc[cust, "segment"] == expected[6]


def test_null_customer_is_rejected() -> None:
    lines = hand_lines()
    lines.loc[0, "customer_id"] = None
    with pytest.raises(ValueError, match="unknown"):
        rfm_table(lines)


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="net_amount"):
        rfm_table(hand_lines().drop(columns="net_amount"))


def _run_sql(lines: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("purchase_lines_input", lines)
    return con.sql(rfm_sql("purchase_lines_input", where=None, **kwargs)).df()  # type: ignore[arg-type]


def _assert_same(py: pd.DataFrame, sql: pd.DataFrame) -> None:
    assert list(py.columns) == list(sql.columns)
    assert len(py) == len(sql)
    for col in py.columns:
        left, right = py[col], sql[col]
        if col.endswith("_date"):
            assert (pd.to_datetime(left) == pd.to_datetime(right)).all(), col
        elif col == "monetary":
            np.testing.assert_allclose(left.to_numpy(float), right.to_numpy(float), rtol=1e-12)
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), col


def test_sql_matches_pandas_on_hand_example() -> None:
    lines = hand_lines()
    sql = _run_sql(lines, reference_date=REF, source_col=None)
    _assert_same(rfm_table(lines, REF), sql)
    assert sql.set_index("customer_id").loc["c08", "segment"] == "Can't Lose Them"
    # and with the default reference date
    _assert_same(rfm_table(lines), _run_sql(lines, source_col=None))


def test_sql_matches_pandas_on_random_frame_with_ties_and_sources() -> None:
    rng = np.random.default_rng(42)
    n = 30_000
    lines = pd.DataFrame(
        {
            "source_system": rng.choice(["online_retail", "superstore"], n),
            "customer_id": rng.integers(0, 4_000, n).astype(str),
            "order_id": rng.integers(0, 9_000, n).astype(str),
            "order_date": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 400 * 24, n), unit="h"),
            # cents, and many exact ties in monetary (small integer amounts)
            "net_amount": np.where(rng.random(n) < 0.5, rng.integers(1, 5, n), rng.gamma(2, 9, n))
            .round(2)
            .astype(float),
        }
    )
    py = rfm_table(lines)
    sql = _run_sql(lines)
    _assert_same(py, sql)
    assert py["segment"].nunique() == 11
    ref = rfm_table(lines, date(2022, 6, 1))
    _assert_same(ref, _run_sql(lines, reference_date=date(2022, 6, 1)))


def test_sql_default_filter_on_fct_sales_shape() -> None:
    fct = hand_lines().assign(
        source_system="superstore",
        is_cancellation=False,
        is_adjustment=False,
        is_product=True,
    )
    noise = fct.iloc[:3].assign(
        order_id="x", is_cancellation=True, net_amount=-1000.0, customer_id="c01"
    )
    unknown = fct.iloc[:2].assign(customer_id=None, order_id="y")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    con.register("fct", pd.concat([fct, noise, unknown], ignore_index=True))
    con.execute("CREATE TABLE core.fct_sales AS SELECT * FROM fct")
    sql = con.sql(rfm_sql(reference_date=REF)).df()
    _assert_same(rfm_table(fct, REF), sql)


def test_speed_100k_customers() -> None:
    rng = np.random.default_rng(0)
    n = 300_000
    customers = np.concatenate([np.arange(100_000), rng.integers(0, 100_000, n - 100_000)])
    lines = pd.DataFrame(
        {
            "customer_id": customers,
            "order_id": rng.integers(0, 200_000, n),
            "order_date": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "net_amount": rng.gamma(2, 10, n),
        }
    )
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = rfm_table(lines)
        best = min(best, time.perf_counter() - start)
    assert len(result) == 100_000
    assert best < 1.0, f"rfm_table took {best:.2f}s for {len(result)} customers"
