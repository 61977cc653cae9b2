"""Churn: hand-checked features and labels, no leakage, and a model that beats recency."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.churn import (
    FEATURE_COLUMNS,
    build_churn_dataset,
    calibration_table,
    churn_features,
    churn_scores,
    evaluate_churn,
    time_split_evaluation,
    train_churn_model,
)

CUTOFF = date(2024, 4, 1)


def hand_lines() -> pd.DataFrame:
    rows = [
        # customer, order, date, amount, product
        ("A", "a1", "2024-01-01", 10.0, "p1"),
        ("A", "a1", "2024-01-01", 20.0, "p2"),
        ("A", "a2", "2024-03-02", 30.0, "p1"),
        ("A", "a3", "2024-04-10", 50.0, "p1"),  # in the label window
        ("B", "b1", "2023-12-01", 100.0, "p3"),
        ("C", "c1", "2024-05-01", 70.0, "p1"),  # first purchase after the cutoff
        ("D", "d1", "2024-03-31", 10.0, "p2"),
        ("D", "d2", "2024-04-01", 20.0, "p2"),  # on the cutoff day: label window, not features
        ("E", "e1", "2024-02-01", 15.0, "p4"),
        ("E", "e2", "2024-06-30", 15.0, "p4"),  # day after the window [04-01, 06-30)
    ]
    frame = pd.DataFrame(
        rows, columns=["customer_id", "order_id", "order_date", "net_amount", "product_id"]
    )
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    return frame


def test_hand_features_and_labels() -> None:
    features, label = build_churn_dataset(hand_lines(), CUTOFF, 90)
    assert list(features.index) == ["A", "B", "D", "E"]  # C is unknown at the cutoff
    assert label.to_dict() == {"A": 0, "B": 1, "D": 0, "E": 1}
    a = features.loc["A"]
    assert a["recency_days"] == 30  # 2024-03-02 -> 2024-04-01
    assert a["tenure_days"] == 91  # 2024-01-01 -> 2024-04-01 (leap year)
    assert a["frequency"] == 2
    assert a["monetary"] == 60
    assert a["avg_order_value"] == 30
    assert a["purchase_days"] == 2
    assert a["avg_days_between_purchases"] == 61
    assert a["recency_to_gap_ratio"] == pytest.approx(30 / 61)
    assert (a["orders_last_30d"], a["orders_last_90d"], a["orders_prev_90d"]) == (1, 1, 1)
    assert a["revenue_last_90d"] == 30
    assert a["trend"] == 0
    assert a["distinct_products"] == 2
    b = features.loc["B"]
    assert (b["recency_days"], b["tenure_days"], b["frequency"]) == (122, 122, 1)
    assert np.isnan(b["avg_days_between_purchases"]) and np.isnan(b["recency_to_gap_ratio"])
    assert (b["orders_last_90d"], b["orders_prev_90d"], b["trend"]) == (0, 1, -1)
    d = features.loc["D"]
    assert (d["recency_days"], d["frequency"], d["monetary"]) == (1, 1, 10)
    assert list(features.columns) == list(FEATURE_COLUMNS)


def test_features_ignore_everything_after_cutoff() -> None:
    lines = hand_lines()
    before = lines[lines["order_date"] < pd.Timestamp(CUTOFF)]
    pd.testing.assert_frame_equal(churn_features(lines, CUTOFF), churn_features(before, CUTOFF))


def test_label_window_must_be_covered_by_data() -> None:
    lines = hand_lines()
    with pytest.raises(ValueError, match="not covered"):
        build_churn_dataset(lines, date(2024, 5, 1), 90)
    _, label = build_churn_dataset(lines, date(2024, 5, 1), 90, allow_partial_horizon=True)
    # C's first purchase is on the cutoff day, so C is not in the population
    assert label.to_dict() == {"A": 1, "B": 1, "D": 1, "E": 0}


def test_active_within_days_filter() -> None:
    features = churn_features(hand_lines(), CUTOFF, active_within_days=100)
    assert list(features.index) == ["A", "D", "E"]  # B last bought 122 days before


def test_source_system_keys() -> None:
    lines = pd.concat(
        [hand_lines().assign(source_system="s1"), hand_lines().assign(source_system="s2")]
    )
    features, label = build_churn_dataset(lines, CUTOFF, 90)
    assert features.index.names == ["source_system", "customer_id"]
    assert label.loc[("s2", "B")] == 1 and label.loc[("s1", "A")] == 0


class StubModel:
    """predict_proba returns a fixed probability per row (to test the report arithmetic)."""

    feature_names_in_ = np.array(["recency_days"])

    def __init__(self, p: np.ndarray) -> None:
        self.p = p

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.column_stack([1 - self.p, self.p])


def test_report_arithmetic_with_stub_model() -> None:
    # 20 customers; predicted p = 0.05 * i; churned = rows 17, 18 (top), 3, 5, 9
    p = np.arange(20) * 0.05
    y = np.zeros(20, dtype=int)
    y[[17, 18, 3, 5, 9]] = 1
    features = pd.DataFrame({"recency_days": np.arange(20)[::-1].astype(float)})
    report = evaluate_churn(StubModel(p), features, pd.Series(y))
    assert report.n_customers == 20
    assert report.churn_rate == pytest.approx(5 / 20)
    # top decile = 2 highest p = rows 19, 18 -> one churner
    assert report.precision_at_top_decile == pytest.approx(0.5)
    assert report.lift_at_top_decile == pytest.approx(0.5 / 0.25)
    # recency is reversed p, so the baseline AUC is 1 - model AUC
    assert report.baseline_auc == pytest.approx(1 - report.roc_auc)
    # AUC by hand: pairs (churner, stayer) where churner has higher p; churners at 3,5,9,17,18
    # stayers below each: 3 -> 3, 5 -> 4, 9 -> 7, 17 -> 14, 18 -> 14; total 42 of 5*15 = 75
    assert report.roc_auc == pytest.approx(42 / 75)
    assert report.brier == pytest.approx(np.mean((p - y) ** 2))
    assert report.calibration["n"].tolist() == [2] * 10
    assert report.calibration["mean_predicted"].iloc[0] == pytest.approx(0.025)
    assert report.auc_improvement == pytest.approx(report.roc_auc - report.baseline_auc)


def test_calibration_bins_are_equal_sized() -> None:
    table = calibration_table(np.linspace(0, 1, 23), np.zeros(23))
    assert table["n"].sum() == 23 and table["n"].max() - table["n"].min() <= 1
    assert table["bin"].tolist() == list(range(1, 11))


def test_risk_thresholds() -> None:
    features = pd.DataFrame({"recency_days": np.zeros(5)}, index=list("vwxyz"))
    scores = churn_scores(StubModel(np.array([0.1, 0.4, 0.69, 0.7, 0.95])), features)
    assert scores["churn_risk"].tolist() == ["low", "medium", "medium", "high", "high"]
    assert list(scores.index) == list("vwxyz")


def synthetic_lines(n_customers: int = 4000, seed: int = 7) -> pd.DataFrame:
    """Customers who leave at 90-day boundaries; low-value customers leave far more often.

    Leaving *at* the cutoff is invisible to recency, but visible in order value: a model
    using order value must beat the recency-only baseline.
    """
    rng = np.random.default_rng(seed)
    birth = rng.uniform(0, 600, n_customers)  # day of first purchase
    rate = rng.gamma(2.0, 1 / 40.0, n_customers)  # purchases per day while active
    aov = rng.lognormal(3.5, 0.6, n_customers)
    hazard = np.where(aov < np.median(aov), 0.6, 0.05)  # leave at each 90-day boundary
    death = (np.floor(birth / 90) + rng.geometric(hazard)) * 90
    end = np.minimum(death, 720)
    n_repeat = rng.poisson(rate * (end - birth))
    customer = np.repeat(np.arange(n_customers), n_repeat + 1)
    first_row = np.r_[0, np.cumsum(n_repeat + 1)[:-1]]
    day = birth[customer] + rng.uniform(0, 1, customer.size) * (end - birth)[customer]
    day[first_row] = birth
    return pd.DataFrame(
        {
            "customer_id": customer,
            "order_id": np.arange(customer.size),
            "order_date": pd.Timestamp("2020-01-01") + pd.to_timedelta(np.floor(day), unit="D"),
            "net_amount": (aov[customer] * rng.lognormal(0, 0.3, customer.size)).round(2),
            "product_id": rng.integers(0, 30, customer.size),
        }
    )


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return synthetic_lines()


@pytest.mark.parametrize("kind", ["gradient_boosting", "logistic"])
def test_model_beats_recency_baseline_on_later_cutoff(synthetic: pd.DataFrame, kind: str) -> None:
    train_cutoff = date(2021, 3, 27)  # day 451 ... the boundaries are every 90 days from day 0
    model, report = time_split_evaluation(synthetic, train_cutoff, 90, kind=kind)  # type: ignore[arg-type]
    assert 0.2 < report.churn_rate < 0.8
    assert report.roc_auc > report.baseline_auc + 0.02, report.as_dict()
    assert report.roc_auc > 0.85
    assert report.precision_at_top_decile > report.churn_rate
    # evaluation population is the one at the second cutoff
    eval_features, _ = build_churn_dataset(synthetic, date(2021, 6, 25), 90)
    assert report.n_customers == len(eval_features)
    scores = churn_scores(model, eval_features)
    assert set(scores["churn_risk"]) <= {"low", "medium", "high"}
    assert scores["churn_probability"].between(0, 1).all()


def test_training_is_deterministic(synthetic: pd.DataFrame) -> None:
    features, label = build_churn_dataset(synthetic, date(2021, 3, 27), 90)
    p1 = churn_scores(train_churn_model(features, label), features)["churn_probability"]
    p2 = churn_scores(train_churn_model(features, label), features)["churn_probability"]
    np.testing.assert_array_equal(p1.to_numpy(), p2.to_numpy())


def test_single_class_label_is_rejected() -> None:
    features, label = build_churn_dataset(hand_lines(), CUTOFF, 90)
    with pytest.raises(ValueError, match="single class"):
        train_churn_model(features, label * 0)
