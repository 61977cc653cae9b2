"""Shapes analysts expect: Pareto customers, Nov/Dec peak, quiet weekends, growth."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from tests.unit.demo.demo_checks import online_retail

from retailhub.demo import GenerationReport

Line = tuple[str, dt.datetime, float]


def test_top_fifth_of_customers_carry_most_revenue(large_revenue: list[Line]) -> None:
    by_customer: dict[str, float] = defaultdict(float)
    for cust, _, value in large_revenue:
        by_customer[cust] += value
    values = sorted(by_customer.values(), reverse=True)
    top = values[: max(1, len(values) // 5)]
    assert sum(top) / sum(values) > 0.5


def test_top_fifth_of_products_carry_most_lines(large: GenerationReport) -> None:
    lines = Counter(r.fields[1] for r in online_retail(large.out_dir))
    counts = sorted(lines.values(), reverse=True)
    assert sum(counts[: len(counts) // 5]) / sum(counts) > 0.5


def test_december_beats_june_and_the_trend_is_up(large_revenue: list[Line]) -> None:
    by_month: dict[tuple[int, int], float] = defaultdict(float)
    for _, when, value in large_revenue:
        by_month[(when.year, when.month)] += value
    for year in (2024, 2025):
        assert by_month[(year, 12)] > by_month[(year, 6)] * 1.2
        assert by_month[(year, 11)] > by_month[(year, 2)] * 1.2
    y2024 = sum(v for (y, _), v in by_month.items() if y == 2024)
    y2025 = sum(v for (y, _), v in by_month.items() if y == 2025)
    assert y2025 > y2024


def test_no_saturdays_and_quiet_sundays(large_revenue: list[Line]) -> None:
    weekdays = Counter(when.weekday() for _, when, _ in large_revenue)
    assert weekdays[5] == 0
    assert weekdays[6] < min(weekdays[d] for d in range(5))


def test_many_customers_and_products(large: GenerationReport) -> None:
    rows = online_retail(large.out_dir)
    assert len({r.fields[6] for r in rows}) > 300
    assert len({r.fields[1] for r in rows}) > 500
