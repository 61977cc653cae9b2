"""mart_anomalies: a planted day is found, explained and its order line flagged; known values."""

from __future__ import annotations

import math
import statistics
from datetime import date, timedelta

import pytest
from tests.integration.marts.conftest import CoreData, build, line, mart

START = date(2024, 1, 1)
DAYS = 70  # ten weeks
SPIKE = date(2024, 2, 7)  # a Wednesday in the middle
WHALE = 5_000.0  # one order of 500 x P1 at 10


def normal_orders(day: date) -> int:
    return 4 + day.day % 3  # 4..6 orders a day, not aligned with the weekday


def lines() -> list[dict]:
    out = []
    for i in range(DAYS):
        day = START + timedelta(days=i)
        for k in range(normal_orders(day)):
            product = f"P{1 + k % 3}"
            out.append(line(f"{day}-{k}", day, product, 2, 10.0, customer=f"c{k}"))
    out.append(line("BIG", SPIKE, "P1", 500, 10.0, customer="whale"))
    return out


def daily_revenue(day: date) -> float:
    return 20.0 * normal_orders(day) + (WHALE if day == SPIKE else 0.0)


def test_planted_spike_is_found_with_its_expected_value_and_driver(core_con) -> None:
    build(core_con, CoreData(lines()))
    found = mart(core_con, "mart_anomalies", "kind = 'daily_kpi' and metric = 'revenue'")
    assert found["date"].dt.date.tolist() == [SPIKE]  # and no other day
    row = found.iloc[0]
    neighbours = [SPIKE + timedelta(days=7 * k) for k in (-4, -3, -2, -1, 1, 2, 3, 4)]
    expected = statistics.median(daily_revenue(d) for d in neighbours if d >= START)
    assert row["observed"] == pytest.approx(daily_revenue(SPIKE))
    assert row["expected"] == pytest.approx(expected)
    assert row["direction"] == "up"
    assert row["driver_dimension"] == "product"
    assert row["driver_member"] == "P1 (P1)"
    assert row["explanation"].startswith(
        f"Revenue on {SPIKE} was {(daily_revenue(SPIKE) - expected) / expected:.0%} above expected"
    )
    assert "product P1 (P1) +£" in row["explanation"]


def test_planted_order_line_is_a_transaction_outlier(core_con) -> None:
    build(core_con, CoreData(lines()))
    lines_found = mart(core_con, "mart_anomalies", "kind = 'transaction'")
    big = lines_found[lines_found["order_id"] == "BIG"].set_index("metric")
    # P1 sells 2 a line; 500 is ln(250) / ln(2) = 7.97 robust units above (scale floor ln 2)
    assert big.loc["line_quantity", "observed"] == 500
    assert big.loc["line_quantity", "expected"] == pytest.approx(2.0)
    assert big.loc["line_quantity", "score"] == pytest.approx(math.log(250) / math.log(2))
    assert big.loc["line_quantity", "explanation"] == (
        f"Order BIG on {SPIKE}: quantity 500 of P1 (P1) is 250 times the product's typical 2 "
        "(robust z 8.0)."
    )
    assert set(lines_found["order_id"]) == {"BIG"}  # normal lines are never flagged


def test_detector_statistics_are_stored(core_con) -> None:
    build(core_con, CoreData(lines()))
    stats = mart(core_con, "mart_model_evaluation", "model = 'anomalies'").set_index("metric")
    # four metrics, scored on days with 4 same-weekday neighbours or more (3 min): 70 days
    assert stats.loc["threshold", "value"] == 3.5
    assert stats.loc["n_flagged", "value"] >= 1
    tested = stats.loc["n_tested", "value"]
    flagged = stats.loc["n_flagged", "value"]
    assert stats.loc["flag_rate", "value"] == pytest.approx(flagged / tested)
    assert stats.loc["transaction_lines_tested", "value"] == len(lines())
