"""Products: ABC classes on hand-computed boundaries, calendar-aligned growth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.products import abc_classes, month_over_month, year_over_year


def test_abc_hand_example_with_exact_boundaries() -> None:
    revenue = pd.Series(
        {
            "p4": 100.0,
            "p1": 400.0,
            "p9": -10.0,
            "p2": 300.0,
            "p3": 100.0,
            "p5": 50.0,
            "p6": 30.0,
            "p7": 20.0,
            "p8": 0.0,
        }
    )
    result = abc_classes(revenue).set_index("product_id")
    # positive total 1000; ranked p1 400, p2 300, p3 100, p4 100 (tie -> id), p5 50, p6 30, p7 20,
    # p8 0, p9 -10; share of revenue ranked above: 0, .4, .7, .8, .9, .95, .98, 1, 1
    assert list(result.index) == ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"]
    assert result["rank"].tolist() == list(range(1, 10))
    np.testing.assert_allclose(
        result["cumulative_share_before"], [0, 0.4, 0.7, 0.8, 0.9, 0.95, 0.98, 1, 1]
    )
    # A: before < 80 %; B: before < 95 %; C otherwise; exactly 80 % / 95 % start B / C
    assert result["abc_class"].to_dict() == {
        "p1": "A",
        "p2": "A",
        "p3": "A",
        "p4": "B",
        "p5": "B",
        "p6": "C",
        "p7": "C",
        "p8": "C",
        "p9": "C",
    }
    assert result.loc["p9", "share"] == 0
    assert result.loc["p3", "cumulative_share"] == pytest.approx(0.8)


def test_abc_single_dominant_product_and_frame_input() -> None:
    frame = pd.DataFrame({"sku": ["a", "b", "c"], "sales": [90.0, 5.0, 5.0]})
    result = abc_classes(frame, product_col="sku", revenue_col="sales")
    assert result["abc_class"].tolist() == ["A", "B", "C"]  # before: 0, .90, .95


def test_abc_float_rounding_does_not_move_boundary() -> None:
    # 0.1 * 8 accumulates to 0.7999999999999999 in floats; the 9th product starts at 80 %
    revenue = pd.Series([0.1] * 10, index=[f"p{i:02d}" for i in range(10)])
    result = abc_classes(revenue)
    assert result["abc_class"].tolist() == ["A"] * 8 + ["B", "B"]


def test_abc_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="one row per product"):
        abc_classes(pd.DataFrame({"product_id": ["a", "a"], "revenue": [1.0, 2.0]}))


def monthly() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": pd.to_datetime(
                [
                    "2023-01-01",
                    "2023-02-01",
                    "2023-04-01",
                    "2024-01-01",
                    "2024-02-01",
                    "2023-01-01",
                    "2023-02-01",
                ]
            ),
            "category": ["X"] * 5 + ["Y"] * 2,
            "revenue": [100.0, 120.0, 90.0, 150.0, 60.0, 0.0, 10.0],
        }
    )


def test_month_over_month_matches_calendar_not_rows() -> None:
    result = month_over_month(monthly(), group_cols=["category"])
    x = result[result["category"] == "X"]
    # Feb vs Jan: +20 %; Apr has no March row -> NaN; Jan 2024 has no Dec 2023 -> NaN;
    # Feb 2024 vs Jan 2024: 60 / 150 - 1 = -60 %
    np.testing.assert_allclose(x["growth"], [np.nan, 0.2, np.nan, np.nan, -0.6])
    np.testing.assert_allclose(x["change"], [np.nan, 20, np.nan, np.nan, -90])
    y = result[result["category"] == "Y"]
    assert np.isnan(y["growth"]).all()  # previous month revenue 0 -> growth undefined
    assert y["change"].iloc[1] == 10


def test_year_over_year() -> None:
    result = year_over_year(monthly(), group_cols=["category"])
    x = result[result["category"] == "X"].set_index("month")
    assert x.loc["2024-01-01", "growth"] == pytest.approx(0.5)  # 150 vs 100
    assert x.loc["2024-02-01", "growth"] == pytest.approx(-0.5)  # 60 vs 120
    assert np.isnan(x.loc["2023-04-01", "growth"])


def test_growth_rejects_duplicate_periods() -> None:
    frame = pd.DataFrame({"month": pd.to_datetime(["2023-01-01", "2023-01-15"]), "revenue": [1, 2]})
    with pytest.raises(ValueError, match="one row per"):
        month_over_month(frame)
