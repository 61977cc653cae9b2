"""The year-over-year growth model (one to two years of history) and the backtest plan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.forecast import (
    backtest,
    backtest_folds,
    forecast_revenue,
    yoy_growth_forecast,
)

SEASON = np.array([0.75, 0.75, 0.9, 0.85, 0.95, 0.9, 0.9, 0.9, 1.15, 1.25, 1.6, 1.45])


def monthly(n: int, growth: float = 0.17, noise: float = 0.0, seed: int = 0) -> pd.Series:
    """Seasonal retail months growing ``growth`` a year, with multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 1000 * SEASON[t % 12] * (1 + growth) ** (t / 12)
    values = values * np.exp(rng.normal(0, noise, n))
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="MS"))


def weekly(n: int, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    season = 1 + 0.35 * np.sin(2 * np.pi * t / 52) + 0.2 * np.sin(4 * np.pi * t / 52)
    values = 5000 * season * 1.15 ** (t / 52) * np.exp(rng.normal(0, 0.04, n))
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="7D"))


def test_exact_growth_is_recovered() -> None:
    # constant year-over-year growth: the smoothed growth is that constant, and the forecast
    # is last year's month times 1.17
    y = monthly(20).to_numpy()
    cols, one_step = yoy_growth_forecast(y, 12, 6)
    expected = y[8:14] * 1.17
    assert cols["forecast"] == pytest.approx(expected, rel=1e-6)
    assert one_step == pytest.approx(y[12:], rel=1e-6)
    for level in ("80", "95"):  # a noiseless growth: intervals collapse onto the forecast
        assert (cols[f"lower_{level}"] <= cols["forecast"] * (1 + 1e-9)).all()
        assert (cols[f"upper_{level}"] >= cols["forecast"] * (1 - 1e-9)).all()


def test_beyond_one_season_last_year_is_grown_twice() -> None:
    y = monthly(20).to_numpy()
    cols, _ = yoy_growth_forecast(y, 12, 14)
    assert cols["forecast"][12] == pytest.approx(y[8] * 1.17**2, rel=1e-6)  # h = 13


def test_growth_model_is_chosen_between_one_and_two_years() -> None:
    result = forecast_revenue(monthly(24, noise=0.03), "M", 6)
    assert result.model == "ETS(A,N,N) on YoY log growth m=12"
    assert any("in-sample one-step MAE" in note for note in result.notes)
    table = result.forecast
    assert (table["lower_95"] < table["lower_80"]).all()
    assert (table["upper_80"] < table["upper_95"]).all()
    # January forecast is below December (the season), above last January (the growth)
    assert table["forecast"].iloc[0] < monthly(24).iloc[-1]
    assert table["forecast"].iloc[0] > monthly(24).iloc[12]


def test_growth_model_not_used_outside_its_range() -> None:
    assert forecast_revenue(monthly(17, noise=0.03), "M", 3).model.startswith("ETS(A,")
    assert "YoY" not in forecast_revenue(monthly(17, noise=0.03), "M", 3).model
    assert "YoY" not in forecast_revenue(monthly(30, noise=0.03), "M", 3).model  # seasonal ETS
    negative = monthly(24, noise=0.03)
    negative.iloc[5] = -10.0  # net revenue can be negative; logs cannot
    assert "YoY" not in forecast_revenue(negative, "M", 3).model


def test_no_seasonality_keeps_plain_ets() -> None:
    rng = np.random.default_rng(7)
    flat = pd.Series(
        1000 + rng.normal(0, 50, 80), index=pd.date_range("2024-01-01", periods=80, freq="7D")
    )
    # last year's noise adds noise: the plain level model fits better one step ahead
    assert forecast_revenue(flat, "W", 4).model == "ETS(A,N,N)"


@pytest.mark.parametrize(
    ("series", "freq", "folds", "horizon"),
    [(monthly(24, noise=0.03), "M", 1, 6), (weekly(104), "W", 3, 12)],
)
def test_two_years_beat_seasonal_naive(
    series: pd.Series, freq: str, folds: int, horizon: int
) -> None:
    assert backtest_folds(len(series), freq, horizon) == folds  # type: ignore[arg-type]
    result = backtest(series, freq, folds, horizon)  # type: ignore[arg-type]
    assert result.winner == "model"
    assert result.model_smape < result.baseline_smape


@pytest.mark.parametrize(
    ("n", "freq", "horizon", "folds"),
    [
        (208, "W", 12, 4),  # two seasons + 2 = 106 to train: (208 - 106) // 12 = 8 -> 4
        (104, "W", 12, 3),  # one season + 6 = 58: (104 - 58) // 12 = 3
        (52, "W", 12, 2),  # half the series: (52 - 26) // 12 = 2
        (48, "M", 6, 3),  # (48 - 26) // 6 = 3
        (24, "M", 6, 1),  # (24 - 18) // 6 = 1
        (12, "M", 6, 1),  # (12 - 6) // 6 = 1
        (8, "M", 6, 0),  # too short: (8 - 4) // 6 = 0
    ],
)
def test_backtest_folds(n: int, freq: str, horizon: int, folds: int) -> None:
    assert backtest_folds(n, freq, horizon) == folds  # type: ignore[arg-type]


def test_backtest_folds_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="freq"):
        backtest_folds(10, "D", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="horizon"):
        backtest_folds(10, "M", 0)
