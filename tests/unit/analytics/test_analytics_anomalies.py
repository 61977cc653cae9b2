"""Anomalies: planted spikes/drops are found, normal weeks rarely flag, attribution is exact."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.anomalies import (
    ANOMALY_COLUMNS,
    anomaly_scores,
    detect_anomalies,
    explain_anomaly,
    transaction_outliers,
)

WEEKLY = np.array([1.0, 1.1, 1.05, 1.0, 1.2, 0.7, 0.5])  # Monday .. Sunday


def normal_days(rng: np.random.Generator, n_days: int = 364) -> pd.DataFrame:
    """Trend x weekly pattern x 5 % noise (revenue) and Poisson orders: no anomaly inside."""
    dates = pd.date_range("2023-01-02", periods=n_days, freq="D")  # starts on a Monday
    pattern = WEEKLY[dates.day_of_week]
    level = 1000 * (1 + 0.3 * np.arange(n_days) / n_days)
    return pd.DataFrame(
        {
            "date": dates,
            "revenue": level * pattern * (1 + rng.normal(0, 0.05, n_days)),
            "orders": rng.poisson(level / 20 * pattern),
        }
    )


def test_planted_spike_and_drop_are_found_with_direction() -> None:
    daily = normal_days(np.random.default_rng(5))
    spike_day, drop_day = daily["date"][100], daily["date"][200]
    daily.loc[100, "revenue"] *= 1.6
    daily.loc[200, "revenue"] *= 0.5
    found = detect_anomalies(daily, ["revenue", "orders"])
    assert list(found.columns) == list(ANOMALY_COLUMNS)
    revenue = found[found["metric"] == "revenue"].set_index("date")
    assert revenue.loc[spike_day, "direction"] == "up"
    assert revenue.loc[drop_day, "direction"] == "down"
    assert revenue.loc[spike_day, "score"] > 3.5
    assert revenue.loc[drop_day, "score"] < -3.5
    # the expectation is the usual level for that weekday, not dragged by the spike
    assert revenue.loc[spike_day, "expected"] == pytest.approx(
        daily.loc[100, "revenue"] / 1.6, rel=0.15
    )
    assert len(found) <= 3  # at most one chance false positive besides the two planted days
    assert found.attrs["n_tested"] == 2 * 364
    assert found.attrs["threshold"] == 3.5


def test_false_positive_rate_on_normal_weeks_is_below_one_percent() -> None:
    rng = np.random.default_rng(2024)
    flagged = tested = 0
    for _ in range(200):
        result = detect_anomalies(normal_days(rng), ["revenue", "orders"])
        flagged += result.attrs["n_flagged"]
        tested += result.attrs["n_tested"]
    fpr = flagged / tested
    print(f"measured false-positive rate: {fpr:.4%} ({flagged} of {tested} day-metrics)")
    assert tested == 200 * 2 * 364
    assert fpr < 0.01


@pytest.mark.parametrize(("shift", "min_rate"), [(0.40, 0.95), (0.25, 0.70)])
def test_detection_rate_of_planted_shifts(shift: float, min_rate: float) -> None:
    """A shift of s on 5 % noise is about s / (0.05 * 1.09) robust sd (the 1.09 is the noise
    of the median of 8 neighbours): 7.3 sd for 40 % (always found), 4.6 sd for 25 % (found
    when the noise does not pull it under 3.5, i.e. about 86 % of the time)."""
    rng = np.random.default_rng(77)
    hits = 0
    trials = 100
    for i in range(trials):
        daily = normal_days(rng)
        day = int(rng.integers(35, 330))
        factor = 1 + shift if i % 2 == 0 else 1 - shift
        daily.loc[day, "revenue"] *= factor
        found = detect_anomalies(daily, ["revenue"])
        match = found[found["date"] == daily["date"][day]]
        expected_direction = "up" if factor > 1 else "down"
        hits += int(len(match) == 1 and match["direction"].iloc[0] == expected_direction)
    print(f"detected {hits} of {trials} planted +/-{shift:.0%} shifts")
    assert hits >= min_rate * trials


def test_missing_days_are_not_scored() -> None:
    daily = normal_days(np.random.default_rng(1))
    no_saturdays = daily[daily["date"].dt.day_of_week != 5]
    scores = anomaly_scores(no_saturdays, ["revenue"])
    assert (scores["date"].dt.day_of_week != 5).all()
    # the first and last weeks still have >= 3 same-weekday neighbours on one side
    assert scores["date"].min() == daily["date"].min()


def test_noiseless_series_flags_any_deviation() -> None:
    dates = pd.date_range("2024-01-01", periods=70, freq="D")
    values = 100 * WEEKLY[dates.day_of_week]
    daily = pd.DataFrame({"date": dates, "revenue": values})
    assert detect_anomalies(daily, ["revenue"]).empty
    daily.loc[30, "revenue"] += 1
    found = detect_anomalies(daily, ["revenue"])
    assert found["date"].tolist() == [dates[30]]
    assert found["direction"].tolist() == ["up"]


def test_explain_anomaly_hand_example() -> None:
    mondays = pd.date_range("2024-02-05", periods=9, freq="7D")  # anomaly = the 5th Monday
    rows = []
    for i, day in enumerate(mondays):
        anomaly = i == 4
        rows += [
            (day, "UK", 300.0 if anomaly else 100.0),
            (day, "DE", 60.0 if anomaly else 50.0),
            (day, "FR", 10.0 if anomaly else 20.0),
        ]
    breakdown = pd.DataFrame(rows, columns=["date", "dimension", "value"])
    result = explain_anomaly(breakdown, mondays[4].date())
    # expected = 100 + 50 + 20 = 170, observed = 370, deviation +200 = 118 % of 170
    assert (result.observed, result.expected, result.deviation) == (370, 170, 200)
    assert result.sentence == (
        "Revenue on 2024-03-04 was 118% above expected (370 vs 170), driven by "
        "UK (+200, 100% of the change) and DE (+10, 5%)."
    )
    table = result.contributions.set_index("member")
    assert table.loc["FR", "deviation"] == -10
    assert table["deviation"].sum() == result.deviation


def test_explain_anomaly_counts_absent_member_as_zero() -> None:
    days = pd.date_range("2024-01-01", periods=5, freq="7D")
    rows = [(d, "A", 100.0) for d in days] + [(d, "B", 50.0) for d in days if d != days[2]]
    result = explain_anomaly(pd.DataFrame(rows, columns=["date", "dimension", "value"]), days[2])
    assert result.deviation == -50
    assert result.sentence.startswith("Revenue on 2024-01-15 was 33% below expected (100 vs 150)")
    assert "B (−50, 100% of the change)" in result.sentence


def test_transaction_outliers_per_product_on_log_scale() -> None:
    lines = pd.DataFrame(
        {
            "product_id": ["p1"] * 8 + ["p2"] * 3 + ["p1"],
            "quantity": [1, 2, 1, 2, 1, 2, 1, 500, 1, 1, 900, -5],
            "net_amount": [2.0, 4, 2, 4, 2, 4, 2, 1000, 3, 3, 2700, -10],
        },
        index=[10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
    )
    found = transaction_outliers(lines)
    # p2 has only 3 lines (< min_group_size 5); the negative line is not scored on log scale
    assert sorted(found.index.unique().tolist()) == [17]
    assert sorted(found["outlier_metric"]) == ["net_amount", "quantity"]
    row = found[found["outlier_metric"] == "quantity"].iloc[0]
    # log values: four 0, three ln 2, ln 500 -> median = ln2 / 2, MAD = ln2 / 2;
    # 1.4826 * MAD = 0.514 is below the ln 2 floor, so the scale is ln 2
    half = math.log(2) / 2
    assert row["robust_z"] == pytest.approx((math.log(500) - half) / math.log(2))
    assert row["group_median"] == pytest.approx(math.sqrt(2))
    assert row["outlier_value"] == 500
    # without the floor the scale is 1.4826 * MAD
    raw = transaction_outliers(lines, min_scale=0.0)
    row = raw[raw["outlier_metric"] == "quantity"].iloc[0]
    assert row["robust_z"] == pytest.approx((math.log(500) - half) / (1.4826 * half))


def test_transaction_outliers_floor_ignores_pack_size_noise() -> None:
    # a product sold by the dozen (19 lines of 12) plus lines of 2, 240 and 1.
    # log scale: median ln 12, MAD 0 -> 1.2533 * mean abs dev = 1.2533 * (ln6 + ln20 + ln12) / 22
    # = 0.414 < ln 2, so the floor ln 2 applies: z(1) = -ln12/ln2 = -3.58 (flagged),
    # z(2) = -ln6/ln2 = -2.58 (not), z(240) = ln20/ln2 = 4.32 (flagged)
    lines = pd.DataFrame(
        {"product_id": ["p"] * 22, "quantity": [12] * 19 + [2, 240, 1], "net_amount": [1.0] * 22}
    )
    found = transaction_outliers(lines, value_cols=["quantity"])
    assert sorted(found["outlier_value"].tolist()) == [1, 240]
    z = found.set_index("outlier_value")["robust_z"]
    assert z[1] == pytest.approx(-math.log(12) / math.log(2))
    # without the floor the line of 2 (6x below the usual dozen) is flagged too
    no_floor = transaction_outliers(lines, value_cols=["quantity"], min_scale=0.0)
    assert sorted(no_floor["outlier_value"].tolist()) == [1, 2, 240]
