"""mart_kpi_daily on a hand-built fct_sales: every figure computed by hand below."""

from __future__ import annotations

from datetime import date

import pytest
from tests.integration.marts.conftest import CoreData, build, line, mart

D1, D2, D3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)

LINES = [
    # D1: three purchase orders (one without a customer) and a postage line (not a product)
    line("O1", D1, "P1", 2, 10.0, customer="A", profit=8.0),
    line("O1", D1, "P2", 1, 5.0, customer="A"),
    line("O1", D1, "POST", 1, 3.0, customer="A", is_product=False),
    line("O2", D1, "P1", 1, 10.0, customer="B", profit=4.0),
    line("O3", D1, "P3", 4, 2.5),
    # D2: A cancels one P1 (-10), C buys (15) and gets a free P1, a stock adjustment (-100)
    line("C1", D2, "P1", -1, 10.0, customer="A", profit=-4.0, cancellation=True),
    line("O4", D2, "P2", 3, 5.0, customer="C"),
    line("O4", D2, "P1", 1, 0.0, customer="C"),
    line("ADJ", D2, "P9", -10, 10.0, adjustment=True),
    # D3: A again (not new), D is new
    line("O5", D3, "P2", 2, 5.0, customer="A"),
    line("O6", D3, "P3", 2, 2.5, customer="D"),
    # another shop in another currency: never added to "shop"
    line("X1", D1, "Q1", 1, 99.0, customer="A", source="other", currency="USD"),
]

# date -> revenue, gross, cancelled_amount, orders, cancelled_orders, cancellation_rate,
#         customers, new_customers, aov, units, margin_amount, margin_rate
EXPECTED = {
    # revenue 20 + 5 + 10 + 10; orders O1 O2 O3; customers A B (both new); units 2+1+1+4;
    # margin 8 + 4 on the 30 of revenue whose profit is known
    D1: (45.0, 45.0, 0.0, 3, 0, 0.0, 2, 2, 15.0, 8, 12.0, 0.4),
    # revenue -10 + 15 + 0; one purchase order (O4) and one cancellation: rate 1 / 2;
    # AOV = net revenue / purchase orders = 5 / 1; units -1 + 3 + 1; margin -4 on -10
    D2: (5.0, 15.0, 10.0, 1, 1, 0.5, 1, 1, 5.0, 3, -4.0, 0.4),
    # revenue 10 + 5; customers A and D, only D new; no known profit
    D3: (15.0, 15.0, 0.0, 2, 0, 0.0, 2, 1, 7.5, 4, None, None),
}
COLUMNS = (
    "revenue",
    "gross_revenue",
    "cancelled_amount",
    "orders",
    "cancelled_orders",
    "cancellation_rate",
    "customers",
    "new_customers",
    "avg_order_value",
    "units",
    "margin_amount",
    "margin_rate",
)


def test_daily_kpis_match_the_hand_computation(core_con) -> None:
    build(core_con, CoreData(LINES))
    kpis = mart(core_con, "mart_kpi_daily", "source_system = 'shop'").set_index("date")
    assert list(kpis.index.date) == [D1, D2, D3]
    assert set(kpis["currency_code"]) == {"GBP"}
    for day, expected in EXPECTED.items():
        row = kpis.loc[str(day)]
        for col, value in zip(COLUMNS, expected, strict=True):
            if value is None:
                assert row[col] is None or row[col] != row[col], (day, col)  # NULL / NaN
            else:
                assert float(row[col]) == pytest.approx(value), (day, col)


def test_sources_are_never_mixed(core_con) -> None:
    build(core_con, CoreData(LINES))
    other = mart(core_con, "mart_kpi_daily", "source_system = 'other'")
    assert len(other) == 1
    assert other["currency_code"].iloc[0] == "USD"
    assert float(other["revenue"].iloc[0]) == 99.0
    # customer "A" of the other shop is a different person: new there on D1 as well
    assert int(other["new_customers"].iloc[0]) == 1


def test_money_is_exact_decimal(core_con) -> None:
    build(core_con, CoreData(LINES))
    types = dict(
        core_con.sql(
            "select column_name, data_type from duckdb_columns() "
            "where database_name = 'work' and table_name = 'mart_kpi_daily'"
        ).fetchall()
    )
    assert types["revenue"] == "DECIMAL(18,4)"
    assert types["orders"] == "BIGINT"
    assert types["avg_order_value"] == "DOUBLE"
