"""mart_customer_360: RFM as the analytics module defines it, profile columns by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from tests.integration.marts.conftest import CoreData, build, customer_key, line, mart

from retailhub.analytics.rfm import rfm_table

REF = date(2024, 1, 31)  # the day after the last line
# customer: (last order date, orders, spend) — the hand example of test_analytics_rfm.py
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
# Hand scores (n = 10, score = 1 + floor(5 (rank - 1) / 10), worst first, ties by id) and
# segments, derived step by step in test_analytics_rfm.py:
#          recency, frequency, R, F, M, segment
EXPECTED = {
    "c01": (1, 1, 5, 1, 1, "New Customers"),
    "c02": (1, 5, 5, 5, 5, "Champions"),
    "c05": (31, 1, 3, 1, 3, "About to Sleep"),
    "c08": (122, 4, 2, 5, 5, "Can't Lose Them"),
    "c10": (395, 1, 1, 3, 2, "At Risk"),
}


def rfm_lines() -> list[dict]:
    lines = []
    for cust, (last, n_orders, spend) in CUSTOMERS.items():
        for k in range(n_orders):
            day = last - timedelta(days=7 * k)
            lines.append(line(f"{cust}-o{k}", day, "P1", 1, spend / n_orders, customer=cust))
    return lines


def profile_lines() -> list[dict]:
    """c02 also: a cancellation, orders from two countries, sales channel web."""
    extra = [
        line("c02-c", date(2024, 1, 29), "P1", -1, 50.0, customer="c02", cancellation=True),
        line("c02-fr1", date(2023, 12, 30), "P2", 1, 10.0, customer="c02", country=2),
        line("c02-fr2", date(2023, 12, 29), "P2", 1, 10.0, customer="c02", country=2),
        line("c03-de", date(2023, 12, 29), "P2", 1, 10.0, customer="c03", country=3),
    ]
    return rfm_lines() + extra


def test_rfm_columns_equal_the_analytics_definition(core_con) -> None:
    build(core_con, CoreData(rfm_lines()))
    c360 = mart(core_con, "mart_customer_360").set_index("customer_id")
    lines = pd.DataFrame(rfm_lines())
    expected = rfm_table(lines).set_index("customer_id")
    for col in ("recency_days", "frequency", "r_score", "f_score", "m_score", "rfm_score"):
        assert c360[col].astype(str).tolist() == expected[col].astype(str).tolist(), col
    assert c360["segment"].tolist() == expected["segment"].tolist()
    assert c360["monetary"].to_numpy() == pytest.approx(expected["monetary"].to_numpy())
    assert (c360["reference_date"] == pd.Timestamp(REF)).all()
    for cust, (recency, frequency, r, f, m, segment) in EXPECTED.items():
        row = c360.loc[cust]
        assert (row["recency_days"], row["frequency"]) == (recency, frequency), cust
        assert (row["r_score"], row["f_score"], row["m_score"]) == (r, f, m), cust
        assert (row["rfm_score"], row["segment"]) == (f"{r}{f}{m}", segment), cust


def test_profile_columns_by_hand(core_con) -> None:
    data = CoreData(
        profile_lines(),
        activity=[
            # c03 uses the mobile app most (orders), the web more in sessions
            (customer_key("shop", "c03"), 2, 5, 1),
            (customer_key("shop", "c03"), 1, 2, 30),
            (customer_key("shop", "c03"), 0, 50, 50),  # unknown channel: ignored
        ],
    )
    build(core_con, data)
    c360 = mart(core_con, "mart_customer_360").set_index("customer_id")
    c02 = c360.loc["c02"]
    # 5 purchase orders of 100 + two French orders of 10; the cancellation of 50 is netted
    assert int(c02["orders"]) == 7
    assert int(c02["cancelled_orders"]) == 1
    assert float(c02["revenue"]) == pytest.approx(500 + 20 - 50)
    assert c02["avg_order_value"] == pytest.approx((500 + 20 - 50) / 7)
    assert c02["clv_historical"] == pytest.approx(470.0)
    assert c02["monetary"] == pytest.approx(520.0)  # RFM: purchases only
    assert c02["preferred_country"] == "United Kingdom"  # 5 UK orders vs 2 French
    assert c02["preferred_channel"] == "web"  # no activity: the sales channel
    c03 = c360.loc["c03"]
    # 2 UK orders vs 1 German: UK; activity says mobile (5 orders) beats web (2)
    assert c03["preferred_country"] == "United Kingdom"
    assert c03["preferred_channel"] == "mobile"
    assert c360.loc["c01", "first_purchase_date"] == pd.Timestamp("2024-01-30")
    assert c360.loc["c02", "first_purchase_date"] == pd.Timestamp("2023-12-29")


def test_a_line_without_customer_does_not_take_the_orders_customer_key(core_con) -> None:
    """An order of c01 with one line whose customer id is missing (key 0, the unknown
    member): the order and the customer keep c01's key (min() used to pick the 0)."""
    lines = [*rfm_lines(), line("c01-o0", date(2024, 1, 30), "P2", 1, 5.0)]
    build(core_con, CoreData(lines))
    c360 = mart(core_con, "mart_customer_360").set_index("customer_id")
    assert int(c360.loc["c01", "customer_key"]) == customer_key("shop", "c01")
    assert (c360["customer_key"] != 0).all()


def test_country_tie_is_broken_by_name(core_con) -> None:
    lines = [
        line("a1", date(2024, 1, 2), "P1", 1, 10.0, customer="t", country=2),  # France
        line("a2", date(2024, 1, 3), "P1", 1, 10.0, customer="t", country=3),  # Germany
    ]
    build(core_con, CoreData(lines))
    assert mart(core_con, "mart_customer_360")["preferred_country"].tolist() == ["France"]


def test_short_history_publishes_no_churn_scores_and_says_why(core_con) -> None:
    # 91 days of data cannot hold two 90-day label windows
    recent = [r for r in rfm_lines() if r["order_date"] >= date(2023, 11, 1)]
    build(core_con, CoreData(recent))
    c360 = mart(core_con, "mart_customer_360")
    assert c360["churn_probability"].isna().all()
    assert c360["churn_risk"].isna().all()
    evaluation = mart(core_con, "mart_model_evaluation", "model = 'churn'").set_index("metric")
    assert evaluation.loc["published", "value"] == 0.0
    assert "history too short" in evaluation.loc["published", "detail"]
    notes = mart(core_con, "mart_insights", "kind = 'model_check'")["text"].tolist()
    assert any(t.startswith("Churn scores are not published: history too short") for t in notes)
    # ten customers are too few to fit BG/NBD: NULL rather than noise, with the reason
    assert c360["clv_12m"].isna().all()
    clv = mart(core_con, "mart_model_evaluation", "model = 'clv'").set_index("metric")
    assert f"{len(c360)} customers < 30" in clv.loc["bgnbd_skipped", "detail"]
