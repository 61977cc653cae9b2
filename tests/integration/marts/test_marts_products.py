"""mart_product_performance and mart_category_trends on hand-built months."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from tests.integration.marts.conftest import CoreData, build, line, mart

from retailhub.analytics.products import abc_classes

# March 2024: nine products whose revenues are the ABC example of docs/analytics.md:
# 400, 300, 100, 100, 50, 30, 20, 0, -10 -> A A A B B C C C C.
MARCH = date(2024, 3, 1)
REVENUES = {"X1": 400, "X2": 300, "X3": 100, "X4": 100, "X5": 50, "X6": 30, "X7": 20}
ABC = {"X1": "A", "X2": "A", "X3": "A", "X4": "B", "X5": "B", "X6": "C", "X7": "C"}
ABC |= {"X8": "C", "X9": "C"}


def abc_lines() -> list[dict]:
    lines = [
        # X1: 400 in two lines of one order + 0 in another order -> 2 orders
        line("M1", date(2024, 3, 5), "X1", 2, 100.0, customer="a"),
        line("M1", date(2024, 3, 5), "X1", 1, 100.0, customer="a"),
        line("M2", date(2024, 3, 6), "X1", 1, 100.0, customer="b"),
        line("M9", date(2024, 3, 31), "X8", 3, 0.0, customer="c"),  # free: revenue 0
        line("MC", date(2024, 3, 20), "X9", -1, 10.0, customer="c", cancellation=True),
        # history for growth: X1 200 in February (+100 %), 100 a year earlier (+300 %)
        line("F1", date(2024, 2, 10), "X1", 2, 100.0, customer="a"),
        line("Y1", date(2023, 3, 10), "X1", 1, 100.0, customer="a"),
    ]
    for k, (pid, revenue) in enumerate(REVENUES.items()):
        if pid != "X1":
            lines.append(line(f"N{k}", date(2024, 3, 10), pid, 1, float(revenue), customer="d"))
    return lines


def test_abc_classes_shares_and_growth_by_hand(core_con) -> None:
    build(core_con, CoreData(abc_lines()))
    perf = mart(core_con, "mart_product_performance", f"month = DATE '{MARCH}'")
    perf = perf.set_index("product_id")
    assert perf["abc_class"].to_dict() == ABC
    assert perf.loc["X1", "revenue_share"] == pytest.approx(0.4)
    assert int(perf.loc["X1", "orders"]) == 2  # two lines of M1 are one order
    assert int(perf.loc["X8", "orders"]) == 0  # a free line is not a purchase
    assert float(perf.loc["X9", "revenue"]) == -10.0
    assert perf.loc["X1", "growth_mom"] == pytest.approx(1.0)  # 400 vs 200
    assert perf.loc["X1", "growth_yoy"] == pytest.approx(3.0)  # 400 vs 100
    assert pd.isna(perf.loc["X2", "revenue_prev_month"])  # no sale in February
    assert pd.isna(perf.loc["X2", "growth_mom"])
    assert list(perf.sort_values("revenue_rank").index[:4]) == ["X1", "X2", "X3", "X4"]


def test_abc_classes_equal_the_analytics_function(core_con) -> None:
    build(core_con, CoreData(abc_lines()))
    perf = mart(core_con, "mart_product_performance", f"month = DATE '{MARCH}'")
    expected = abc_classes(
        perf.assign(revenue=perf["revenue"].astype(float))[["product_id", "revenue"]]
    ).set_index("product_id")
    got = perf.set_index("product_id")
    assert (got["abc_class"] == expected["abc_class"].reindex(got.index)).all()
    assert got["cumulative_share_before"].to_numpy() == pytest.approx(
        expected["cumulative_share_before"].reindex(got.index).to_numpy()
    )


# Category trends: one line on the 1st of each month Jan..Jun 2024, plus a line on Jun 30 so
# every month is complete.
MONTHS = [date(2024, m, 1) for m in range(1, 7)]
SERIES = {
    ("Up", "U1"): [100, 100, 100, 130, 130, 130],  # last 3 months +30 % vs the 3 before
    ("Flat", "F1"): [100, 100, 100, 102, 102, 102],  # +2 %: within +-5 %
    ("Down", "D1"): [100, 100, 100, 90, 90, 90],  # -10 %
    ("Gap", "G1"): [100, 0, 100, 100, 100, 100],  # no sale in February
}


def trend_data() -> CoreData:
    lines, products = [], []
    for (category, pid), values in SERIES.items():
        products.append(("shop", pid, f"{category} product", category, f"{category} sub"))
        for k, (month, value) in enumerate(zip(MONTHS, values, strict=True)):
            if value:
                lines.append(line(f"{pid}-{k}", month, pid, 1, float(value), customer="z"))
    lines.append(line("END", date(2024, 6, 30), "E1", 1, 1.0, customer="z"))
    products.append(("shop", "E1", "Edge", "Edge", "Edge"))
    return CoreData(lines, products)


def test_category_trends_by_hand(core_con) -> None:
    build(core_con, trend_data())
    trends = mart(core_con, "mart_category_trends", "level = 'category'")
    june = trends[trends["month"] == pd.Timestamp("2024-06-01")].set_index("category")
    assert june.loc["Up", "trend_direction"] == "up"
    assert june.loc["Up", "trend_basis"] == "previous_3_months"
    assert june.loc["Up", "trend_change"] == pytest.approx(0.30)
    assert june.loc["Flat", "trend_direction"] == "flat"
    assert june.loc["Down", "trend_direction"] == "down"
    assert june.loc["Down", "trend_change"] == pytest.approx(-0.10)
    assert not june["is_partial_month"].any()
    gap = trends[trends["category"] == "Gap"].set_index("month")
    # the month without sales is a row with revenue 0: February -100 %, March from 0 -> NULL
    assert float(gap.loc["2024-02-01", "revenue"]) == 0.0
    assert gap.loc["2024-02-01", "mom_growth"] == pytest.approx(-1.0)
    assert pd.isna(gap.loc["2024-03-01", "mom_growth"])
    # no basis before six months of history
    assert trends[trends["month"] < pd.Timestamp("2024-06-01")]["trend_direction"].isna().all()
    # sub-category rows exist beside the category totals and add up to them
    subs = mart(core_con, "mart_category_trends", "level = 'sub_category'")
    totals = subs.groupby(["category", "month"])["revenue"].sum()
    cats = trends.set_index(["category", "month"])["revenue"]
    assert (totals.reindex(cats.index) == cats).all()


def test_partial_last_month_has_no_trend(core_con) -> None:
    data = trend_data()
    data.lines = [r for r in data.lines if r["order_id"] != "END"]  # data now ends on Jun 1
    build(core_con, data)
    trends = mart(core_con, "mart_category_trends", "level = 'category'")
    june = trends[trends["month"] == pd.Timestamp("2024-06-01")]
    assert june["is_partial_month"].all()
    assert june["trend_direction"].isna().all()
