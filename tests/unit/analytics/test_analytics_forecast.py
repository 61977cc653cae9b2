"""Forecast: ETS beats seasonal naive on trend + season, intervals nest, fallbacks are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retailhub.analytics.forecast import (
    backtest,
    forecast_revenue,
    mape,
    seasonal_naive,
    smape,
)


def monthly_trend_season(n: int = 72, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 1000 + 8 * t + 150 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 20, n)
    return pd.Series(values, index=pd.date_range("2018-01-01", periods=n, freq="MS"))


def weekly_trend_season(n: int = 160, seed: int = 1) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 5000 + 10 * t + 800 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 100, n)
    return pd.Series(values, index=pd.date_range("2019-01-07", periods=n, freq="7D"))


def test_mape_and_smape_hand_values() -> None:
    actual = np.array([100.0, 200.0, 0.0])
    predicted = np.array([110.0, 150.0, 0.0])
    # MAPE skips the zero actual: (10/100 + 50/200) / 2 = 17.5 %
    assert mape(actual, predicted) == pytest.approx(17.5)
    # sMAPE: (20/210 + 100/350 + 0) / 3
    assert smape(actual, predicted) == pytest.approx((20 / 210 + 100 / 350) / 3 * 100)


def test_seasonal_naive_hand_values() -> None:
    y = np.arange(1.0, 9.0)  # 1..8, season of 4: last season is 5, 6, 7, 8
    assert seasonal_naive(y, 4, 6).tolist() == [5, 6, 7, 8, 5, 6]
    assert seasonal_naive(y[:3], 4, 2).tolist() == [3, 3]  # shorter than a season: naive


@pytest.mark.parametrize(
    ("series", "freq", "folds", "horizon"),
    [(monthly_trend_season(), "M", 4, 6), (weekly_trend_season(), "W", 4, 8)],
)
def test_model_beats_seasonal_naive_on_trend_and_season(
    series: pd.Series, freq: str, folds: int, horizon: int
) -> None:
    result = backtest(series, freq, folds, horizon)  # type: ignore[arg-type]
    assert result.winner == "model"
    assert result.model_smape < result.baseline_smape
    assert result.model_mape < result.baseline_mape
    assert len(result.folds) == folds * horizon
    period = 12 if freq == "M" else 52
    assert all(f"m={period}" in name for name in result.models_used)  # seasonal models used
    # test windows are consecutive and end at the series end
    assert result.folds["date"].iloc[-1] == series.index[-1]
    assert result.folds["date"].is_monotonic_increasing


def test_intervals_nest_and_contain_the_forecast() -> None:
    result = forecast_revenue(monthly_trend_season(), "M", 12, levels=(0.8, 0.95))
    table = result.forecast
    assert list(table.columns) == ["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert len(table) == 12
    assert (table["lower_95"] < table["lower_80"]).all()
    assert (table["lower_80"] < table["forecast"]).all()
    assert (table["forecast"] < table["upper_80"]).all()
    assert (table["upper_80"] < table["upper_95"]).all()
    # intervals widen with the horizon
    width = table["upper_95"] - table["lower_95"]
    assert width.iloc[-1] > width.iloc[0]
    assert result.model.startswith("ETS(") and "m=12" in result.model
    assert table.index[0] == pd.Timestamp("2024-01-01")


def test_constant_series_has_zero_error() -> None:
    constant = pd.Series(500.0, index=pd.date_range("2020-01-06", periods=60, freq="7D"))
    result = backtest(constant, "W", 3, 4)
    assert result.model_mape == 0 and result.model_smape == 0
    forecast = forecast_revenue(constant, "W", 4)
    assert forecast.model == "constant"
    assert (forecast.forecast == 500.0).all().all()
    # nearly constant (rounding noise) goes through ETS and is still ~exact
    rng = np.random.default_rng(3)
    almost = constant + rng.normal(0, 1e-6, len(constant))
    result = backtest(almost, "W", 3, 4)
    assert result.model_mape < 1e-3


def test_short_series_falls_back_and_says_so() -> None:
    short = monthly_trend_season().iloc[:8]
    result = forecast_revenue(short, "M", 3)
    assert result.model == "ETS(A,N,N)"
    assert any("seasonality not modelled" in note for note in result.notes)
    tiny = forecast_revenue(short.iloc[:2], "M", 2)
    assert tiny.model == "naive"
    assert tiny.forecast["forecast"].tolist() == [short.iloc[1]] * 2


def test_missing_periods_are_filled_with_zero_and_reported() -> None:
    series = weekly_trend_season().drop(index=weekly_trend_season().index[[10, 11]])
    result = forecast_revenue(series, "W", 2)
    assert result.n_obs == 160
    assert "filled 2 missing period(s) with 0" in result.notes
    assert result.forecast.index[0] == pd.Timestamp("2019-01-07") + pd.Timedelta(weeks=160)


def test_month_end_dates_are_kept() -> None:
    series = monthly_trend_season(30)
    series.index = series.index + pd.offsets.MonthEnd(0)
    result = forecast_revenue(series, "M", 2)
    assert list(result.forecast.index) == [pd.Timestamp("2020-07-31"), pd.Timestamp("2020-08-31")]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="7 days"):
        forecast_revenue(
            pd.Series([1.0, 2.0], index=pd.to_datetime(["2020-01-01", "2020-01-05"])), "W", 1
        )
    with pytest.raises(ValueError, match="too short"):
        backtest(monthly_trend_season(10), "M", 3, 3)
