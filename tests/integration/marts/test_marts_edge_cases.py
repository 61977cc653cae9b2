"""Edge cases: no sales at all, and a source with a single day, build every mart."""

from __future__ import annotations

from datetime import date

from tests.integration.marts.conftest import CoreData, build, line, mart

from retailhub.pipeline.marts import MART_NAMES


def test_no_sales_builds_every_mart_empty(core_con) -> None:
    _, built = build(core_con, CoreData([]))
    assert [m["name"] for m in built] == list(MART_NAMES)
    assert all(m["rows"] == 0 for m in built)
    assert all(m["relation"] == f"work.marts.{m['name']}" for m in built)
    # the columns are there even without rows (a stable schema for every warehouse)
    c360 = mart(core_con, "mart_customer_360")
    assert {"rfm_score", "clv_12m", "churn_probability", "recommended_action"} <= set(c360)


def test_one_day_of_data(core_con) -> None:
    lines = [line("o1", date(2024, 5, 2), "P1", 1, 10.0, customer="a")]
    _, built = build(core_con, CoreData(lines))
    rows = {m["name"]: m["rows"] for m in built}
    assert rows["mart_kpi_daily"] == 1
    assert rows["mart_customer_360"] == 1
    assert rows["mart_forecast"] == 0  # no complete week or month
    reasons = mart(core_con, "mart_model_evaluation", "metric like '%skipped'")["detail"]
    assert any("no complete period" in r for r in reasons)
    c360 = mart(core_con, "mart_customer_360").iloc[0]
    assert c360["rfm_score"] == "111"  # one customer: every rank is 1 of 1
    # no complete month: no trend insight, but the model checks still say what is missing
    insights = mart(core_con, "mart_insights")
    assert set(insights["kind"]) == {"model_check"}
    assert insights["text"].str.startswith("Churn scores are not published").any()
