"""CLV: BG/NBD and Gamma-Gamma against the published CDNOW results (Fader, Hardie & Lee 2005).

Known answers, all from the papers (not from running this code):
* BG/NBD on the CDNOW calibration summary: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426,
  log-likelihood -9582.4 (Marketing Science 24(2), section 4).
* Expected purchases in the next 39 weeks of the customer with x = 2, t_x = 30.43, T = 38.86:
  1.226 (Fader, Hardie & Lee, "Implementing the BG/NBD Model for Customer Base Analysis in
  Excel", 2005 note, worked example).
* Gamma-Gamma on the 946 repeat customers: p = 6.25, q = 3.74, gamma = 15.44 (JMR 42(4);
  Fader & Hardie, "The Gamma-Gamma Model of Monetary Value", 2013).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.clv import (
    BGNBDParams,
    GammaGammaParams,
    bgnbd_log_likelihood,
    clv,
    conditional_expected_spend,
    expected_purchases,
    expected_purchases_new_customer,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood_terms,
    p_alive,
    summary_from_transactions,
)

PUBLISHED_BGNBD = BGNBDParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PUBLISHED_GG = GammaGammaParams(p=6.25, q=3.74, gamma=15.44)
REL_TOL = 0.005  # 0.5 % relative


@pytest.fixture(scope="module")
def cdnow(datasets_dir: Path) -> Path:
    return datasets_dir / "cdnow"


@pytest.fixture(scope="module")
def summary(cdnow: Path) -> pd.DataFrame:
    frame = pd.read_csv(cdnow / "cdnow_customers_summary.csv")
    assert list(frame.columns) == ["ID", "frequency", "recency", "T"]
    assert len(frame) == 2357
    return frame


@pytest.fixture(scope="module")
def with_value(cdnow: Path) -> pd.DataFrame:
    frame = pd.read_csv(cdnow / "cdnow_customers_summary_with_transactions.csv")
    assert list(frame.columns) == ["ID", "x", "t_x", "T", "zbar"]
    return frame


@pytest.fixture(scope="module")
def raw_transactions(cdnow: Path) -> pd.DataFrame:
    # fixed-width, no header: master id, sample id (1..2357), YYYYMMDD, number of CDs, dollars
    frame = pd.read_csv(
        cdnow / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer", "date", "cds", "value"],
        dtype={"date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    assert len(frame) == 6919
    assert frame["customer"].nunique() == 2357
    return frame


def test_bgnbd_fit_reproduces_published_estimates(summary: pd.DataFrame) -> None:
    params = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(params, name) == pytest.approx(getattr(PUBLISHED_BGNBD, name), rel=REL_TOL)
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert params.n_customers == 2357


def test_published_bgnbd_log_likelihood(summary: pd.DataFrame) -> None:
    ll = bgnbd_log_likelihood(
        PUBLISHED_BGNBD, summary["frequency"], summary["recency"], summary["T"]
    )
    assert ll == pytest.approx(-9582.4, abs=0.1)


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_published_bgnbd_beats_perturbed(summary: pd.DataFrame, index: int, factor: float) -> None:
    base = list(PUBLISHED_BGNBD.as_tuple())
    perturbed = base.copy()
    perturbed[index] *= factor
    args = (summary["frequency"], summary["recency"], summary["T"])
    assert bgnbd_log_likelihood(tuple(base), *args) > bgnbd_log_likelihood(tuple(perturbed), *args)


def test_expected_purchases_worked_example() -> None:
    value = expected_purchases(PUBLISHED_BGNBD, 39, 2, 30.43, 38.86)
    assert float(value) == pytest.approx(1.226, abs=5e-4)


def test_gamma_gamma_reproduces_published_estimates(with_value: pd.DataFrame) -> None:
    repeat = with_value[with_value["x"] > 0]
    assert len(repeat) == 946
    params = fit_gamma_gamma(repeat["x"], repeat["zbar"])
    for name in ("p", "q", "gamma"):
        assert getattr(params, name) == pytest.approx(getattr(PUBLISHED_GG, name), rel=REL_TOL)
    assert params.n_customers == 946
    # passing the full summary gives the same fit (x == 0 rows carry no information)
    full = fit_gamma_gamma(with_value["x"], with_value["zbar"])
    assert full.n_customers == 946
    assert full.p == pytest.approx(params.p, rel=1e-4)


@pytest.mark.parametrize("index", range(3))
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_published_gamma_gamma_beats_perturbed(
    with_value: pd.DataFrame, index: int, factor: float
) -> None:
    repeat = with_value[with_value["x"] > 0]
    base = list(PUBLISHED_GG.as_tuple())
    perturbed = base.copy()
    perturbed[index] *= factor

    def ll(params: list[float]) -> float:
        terms = gamma_gamma_log_likelihood_terms(tuple(params), repeat["x"], repeat["zbar"])
        return float(terms.sum())

    assert ll(base) > ll(perturbed)


def test_summary_from_raw_transactions_matches_published(
    raw_transactions: pd.DataFrame, with_value: pd.DataFrame, summary: pd.DataFrame
) -> None:
    built = summary_from_transactions(
        raw_transactions, "customer", "date", "value", calibration_end="1997-09-30", freq="W"
    )
    assert len(built) == 2357
    published = summary.set_index("ID").join(with_value.set_index("ID")[["zbar"]])
    built = built.reindex(published.index)
    assert built["frequency"].tolist() == published["frequency"].tolist()
    # the published file rounds to 2 decimals: agree to half a unit in the last place
    half_cent = 0.005 + 1e-9
    assert np.abs(built["recency"] - published["recency"]).max() <= half_cent
    assert np.abs(built["T"] - published["T"]).max() <= half_cent
    assert np.abs(built["monetary_value"] - published["zbar"]).max() <= half_cent
    # customer 1 by hand: purchases 1997-01-01, 01-18, 08-02 (12-12 is after calibration)
    one = built.loc[1]
    assert one["frequency"] == 2
    assert one["recency"] == pytest.approx(213 / 7)  # Jan 1 -> Aug 2
    assert one["T"] == pytest.approx(272 / 7)  # Jan 1 -> Sep 30
    assert one["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)


def test_same_day_purchases_count_once() -> None:
    tx = pd.DataFrame(
        {
            "c": ["a", "a", "a", "a", "b"],
            "d": pd.to_datetime(
                [
                    "2020-01-01 09:00",
                    "2020-01-08 10:00",
                    "2020-01-08 18:00",
                    "2020-01-15 00:00",
                    "2020-01-10 00:00",
                ]
            ),
            "v": [10.0, 5.0, 7.0, 30.0, 3.0],
        }
    )
    out = summary_from_transactions(tx, "c", "d", "v", "2020-01-29", freq="D")
    assert out.loc["a", "frequency"] == 2  # 3 distinct days
    assert out.loc["a", "recency"] == 14
    assert out.loc["a", "T"] == 28
    assert out.loc["a", "monetary_value"] == pytest.approx((12.0 + 30.0) / 2)
    assert out.loc["b", "frequency"] == 0
    assert out.loc["b", "monetary_value"] == 0
    weekly = summary_from_transactions(tx, "c", "d", "v", "2020-01-29", freq="W")
    assert weekly.loc["a", "recency"] == pytest.approx(2.0)
    assert weekly.loc["a", "T"] == pytest.approx(4.0)


def test_p_alive_bounds_and_monotonicity() -> None:
    params = PUBLISHED_BGNBD
    x = np.array([0, 1, 2, 5, 10, 40])
    p = p_alive(params, x, np.where(x > 0, 20.0, 0.0), np.full(6, 38.0))
    assert np.all((p > 0) & (p <= 1))
    assert p[0] == 1.0  # no repeat purchase: BG/NBD says alive with certainty
    # older last purchase (lower recency) at the same age -> less likely alive
    recencies = np.linspace(1, 38, 20)
    by_recency = p_alive(params, np.full(20, 3), recencies, np.full(20, 38.0))
    assert np.all(np.diff(by_recency) > 0)
    # the longer the silence after the last purchase (larger T), the less likely alive
    ages = np.linspace(20, 80, 20)
    by_age = p_alive(params, np.full(20, 3), np.full(20, 20.0), ages)
    assert np.all(np.diff(by_age) < 0)
    # at recency == T (bought just now) more purchases -> more likely alive
    frequent = p_alive(params, np.array([1, 5, 20]), np.full(3, 38.0), np.full(3, 38.0))
    assert np.all(np.diff(frequent) > 0)


def test_expected_purchases_properties() -> None:
    params = PUBLISHED_BGNBD
    horizons = [0, 1, 13, 26, 52, 104]
    values = [float(expected_purchases(params, t, 4, 30.0, 38.0)) for t in horizons]
    assert values[0] == 0
    assert np.all(np.diff(values) > 0)
    # a customer who just bought is expected to buy more than one silent for 30 weeks
    active = expected_purchases(params, 52, 4, 38.0, 38.0)
    silent = expected_purchases(params, 52, 4, 8.0, 38.0)
    assert active > silent
    # the population curve starts at 0 and increases
    curve = expected_purchases_new_customer(params, np.array([0.0, 10.0, 39.0, 78.0]))
    assert curve[0] == 0 and np.all(np.diff(curve) > 0)


def test_conditional_expected_spend_is_a_weighted_average() -> None:
    params = PUBLISHED_GG
    population_mean = params.p * params.gamma / (params.q - 1)
    assert conditional_expected_spend(params, 0, 0.0) == pytest.approx(population_mean)
    for m in (5.0, 100.0):
        few = float(conditional_expected_spend(params, 1, m))
        many = float(conditional_expected_spend(params, 200, m))
        low, high = sorted((m, population_mean))
        assert low <= few <= high
        assert abs(many - m) < abs(few - m)  # more purchases -> closer to own mean


def test_clv_is_purchases_times_spend_and_discount_lowers_it() -> None:
    args = (np.array([0, 2, 6]), np.array([0.0, 30.43, 35.0]), np.full(3, 38.86))
    money = np.array([0.0, 22.35, 40.0])
    value = clv(PUBLISHED_BGNBD, PUBLISHED_GG, *args, money)
    expected = expected_purchases(PUBLISHED_BGNBD, 52, *args) * conditional_expected_spend(
        PUBLISHED_GG, args[0], money
    )
    np.testing.assert_allclose(value, expected)
    discounted = clv(PUBLISHED_BGNBD, PUBLISHED_GG, *args, money, monthly_discount_rate=0.01)
    assert np.all(discounted < value)
    tiny = clv(PUBLISHED_BGNBD, PUBLISHED_GG, *args, money, monthly_discount_rate=1e-9)
    np.testing.assert_allclose(tiny, value, rtol=1e-6)


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="recency"):
        p_alive(PUBLISHED_BGNBD, [2], [40.0], [38.0])
    with pytest.raises(ValueError, match="frequency 0"):
        fit_bgnbd([0, 1], [3.0, 2.0], [10.0, 10.0])
    with pytest.raises(ValueError, match="no customer"):
        fit_gamma_gamma([0, 0], [0.0, 0.0])
