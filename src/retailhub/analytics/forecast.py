"""Revenue forecasting with exponential smoothing (ETS) and an honest rolling-origin backtest.

Why ETS: weekly/monthly revenue of a retailer is mostly level + trend + yearly seasonality;
additive-error ETS models (``statsmodels`` ``ETSModel``) capture that with few parameters, fit in
milliseconds, and give analytic prediction intervals. The model is chosen per series by AICc
among a small candidate set, and falls back to simpler models when the history is too short for
seasonality (fewer than two full years), so the caller always gets a forecast *and* the name of
the model that produced it. Between one and two years of history (too short for seasonal ETS,
long enough to see last year) a second family competes: ETS on the **year-over-year log growth**
(``y[t] / y[t - m]``), which carries last year's seasonal shape forward and tracks how much the
business grows; the better one-step in-sample fit wins. Every forecast claim should be checked
against the seasonal-naive baseline with :func:`backtest`; the docs report which one wins on the
sample data.

``statsmodels`` is imported inside the functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

Freq = Literal["W", "M"]

#: Seasonal period (observations per year) per frequency.
SEASONAL_PERIODS: dict[str, int] = {"W": 52, "M": 12}

#: The year-over-year growth model needs at least this many growth ratios (n >= m + this).
MIN_GROWTH_OBS = 6


@dataclass
class ForecastResult:
    """A forecast: the table, the model that made it and why.

    ``forecast`` is indexed by period date with columns ``forecast`` and, per level ``L`` (in
    percent), ``lower_L`` / ``upper_L``.
    """

    forecast: pd.DataFrame
    model: str
    freq: str
    seasonal_periods: int
    n_obs: int
    aicc: float = float("nan")
    candidates: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class BacktestResult:
    """Rolling-origin accuracy of the model and of the seasonal-naive baseline (percent)."""

    folds: pd.DataFrame
    model_mape: float
    model_smape: float
    baseline_mape: float
    baseline_smape: float
    winner: Literal["model", "seasonal_naive", "tie"]
    models_used: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "folds"}


def _level_key(level: float) -> str:
    pct = level * 100
    return str(round(pct)) if abs(pct - round(pct)) < 1e-9 else f"{pct:g}".replace(".", "_")


def _regularise(series: pd.Series, freq: Freq) -> tuple[pd.Series, list[str], str]:
    """Sort, check the spacing and fill missing periods with 0 (no sales = zero revenue)."""
    import pandas as pd

    if freq not in SEASONAL_PERIODS:
        raise ValueError(f"freq must be 'W' or 'M', got {freq!r}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError("series must have a DatetimeIndex")
    if len(series) == 0:
        raise ValueError("empty series")
    s = series.astype(float).sort_index()
    if s.index.has_duplicates:
        raise ValueError("series has duplicate dates")
    if s.isna().any():
        raise ValueError("series has missing values; pass 0 for periods without revenue")
    notes: list[str] = []
    if freq == "W":
        start = s.index[0]
        offsets = (s.index - start).days
        if np.any(offsets % 7 != 0):
            raise ValueError("weekly series dates must be 7 days apart")
        full = pd.date_range(start, s.index[-1], freq="7D")
        anchor = "W"
    else:
        periods = s.index.to_period("M")
        if periods.has_duplicates:
            raise ValueError("monthly series has two dates in the same month")
        if all(s.index.is_month_start):
            anchor = "start"
        elif all(s.index.is_month_end):
            anchor = "end"
        else:
            anchor = "start"
            notes.append("dates are neither month starts nor month ends; output uses starts")
        s = pd.Series(s.to_numpy(), index=periods)
        full_p = pd.period_range(periods[0], periods[-1], freq="M")
        s = s.reindex(full_p)
        full = _period_dates(full_p, anchor)
        s.index = full
    filled = int(s.reindex(full).isna().sum())
    s = s.reindex(full).fillna(0.0)
    if filled:
        notes.append(f"filled {filled} missing period(s) with 0")
    return s, notes, anchor


def _period_dates(periods: pd.PeriodIndex, anchor: str) -> pd.DatetimeIndex:
    if anchor == "end":
        return periods.to_timestamp(how="end").normalize()
    return periods.to_timestamp(how="start")


def _future_index(s: pd.Series, freq: Freq, horizon: int, anchor: str) -> pd.DatetimeIndex:
    import pandas as pd

    if freq == "W":
        return pd.DatetimeIndex(s.index[-1] + pd.to_timedelta(7 * np.arange(1, horizon + 1), "D"))
    last = s.index[-1].to_period("M")
    return _period_dates(pd.period_range(last + 1, periods=horizon, freq="M"), anchor)


def _candidates(n: int, m: int) -> tuple[list[tuple[str | None, bool, str | None]], str, str]:
    """ETS candidates (trend, damped, seasonal), initialisation and a note for this length."""
    non_seasonal: list[tuple[str | None, bool, str | None]] = [(None, False, None)]
    if n >= 10:
        non_seasonal += [("add", True, None)]
    if n >= 2 * m + 2:
        seasonal: list[tuple[str | None, bool, str | None]] = [
            (None, False, "add"),
            ("add", False, "add"),
            ("add", True, "add"),
        ]
        return seasonal + non_seasonal, "heuristic", ""
    note = f"{n} observations < 2 seasons + 2 ({2 * m + 2}): seasonality not modelled"
    return non_seasonal, "estimated", note


def _ets_name(trend: str | None, damped: bool, seasonal: str | None, m: int) -> str:
    t = "N" if trend is None else ("Ad" if damped else "A")
    s = "N" if seasonal is None else "A"
    return f"ETS(A,{t},{s})" + (f" m={m}" if seasonal else "")


def forecast_revenue(
    series: pd.Series,
    freq: Freq,
    horizon: int,
    levels: Sequence[float] = (0.8, 0.95),
    *,
    nonnegative: bool = True,
) -> ForecastResult:
    """Forecast ``horizon`` periods of a weekly (``'W'``) or monthly (``'M'``) revenue series.

    ``series``: revenue per period with a DatetimeIndex (weekly dates 7 days apart, e.g. the
    Monday of ``date_trunc('week')``; monthly dates any day of the month). Missing periods are
    filled with 0 and reported in ``notes``.

    Model choice (reported in ``model``): a constant series gives the constant with zero-width
    intervals; 1-2 observations give the last value (naive) without intervals; otherwise additive
    ETS models fitted by maximum likelihood and chosen by AICc among ETS(A,N,N), ETS(A,Ad,N)
    (n >= 10) and, with at least two seasons + 2 observations (n >= 2m + 2, m = 52 weekly, 12
    monthly), ETS(A,N,A), ETS(A,A,A), ETS(A,Ad,A) with heuristic initial states. With
    ``m + MIN_GROWTH_OBS <= n < 2m + 2`` and positive revenue, the year-over-year growth model
    (:func:`yoy_growth_forecast`) competes with the best non-seasonal ETS and replaces it when
    its in-sample one-step mean absolute error is lower (both errors are in ``notes``).
    Intervals are the analytic ETS prediction intervals at each level. ``nonnegative`` clips
    forecasts and bounds at 0 (revenue cannot be negative).
    """
    import pandas as pd

    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    levels = sorted(float(level) for level in levels)
    if any(not 0 < level < 1 for level in levels):
        raise ValueError("levels must be in (0, 1)")
    s, notes, anchor = _regularise(series, freq)
    m = SEASONAL_PERIODS[freq]
    y = s.to_numpy()
    n = len(y)
    index = _future_index(s, freq, horizon, anchor)
    cols: dict[str, np.ndarray] = {}
    cands: dict[str, float] = {}
    if np.ptp(y) <= 1e-12 * max(1.0, float(np.abs(y).max())):
        cols["forecast"] = np.full(horizon, y[-1])
        for level in levels:
            cols[f"lower_{_level_key(level)}"] = cols["forecast"].copy()
            cols[f"upper_{_level_key(level)}"] = cols["forecast"].copy()
        model_name, aicc = "constant", float("nan")
    elif n < 3:
        notes.append("fewer than 3 observations: naive forecast without intervals")
        cols["forecast"] = np.full(horizon, y[-1])
        for level in levels:
            cols[f"lower_{_level_key(level)}"] = np.full(horizon, np.nan)
            cols[f"upper_{_level_key(level)}"] = np.full(horizon, np.nan)
        model_name, aicc = "naive", float("nan")
    else:
        model_name, aicc, cands, cols, one_step = _fit_best_ets(y, m, horizon, levels, notes)
        if _growth_model_applies(y, m):
            model_name, aicc, cols = _prefer_growth_model(
                y, m, horizon, levels, notes, (model_name, aicc, cols, one_step)
            )

    frame = pd.DataFrame(cols, index=index)
    frame.index.name = "date"
    if nonnegative:
        frame = frame.clip(lower=0)
    return ForecastResult(
        forecast=frame,
        model=model_name,
        freq=freq,
        seasonal_periods=m,
        n_obs=n,
        aicc=aicc,
        candidates=cands,
        notes=notes,
    )


def _fit_best_ets(
    y: np.ndarray, m: int, horizon: int, levels: list[float], notes: list[str]
) -> tuple[str, float, dict[str, float], dict[str, np.ndarray], np.ndarray]:
    """The AICc-best ETS candidate: name, AICc, all AICc, forecast columns, one-step fit."""
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    n = len(y)
    candidates, init, note = _candidates(n, m)
    if note:
        notes.append(note)
    endog = pd.Series(y)  # statsmodels' get_prediction needs a pandas input
    best: tuple[float, str, Any] | None = None
    scores: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for trend, damped, seasonal in candidates:
            name = _ets_name(trend, damped, seasonal, m)
            try:
                model = ETSModel(
                    endog,
                    error="add",
                    trend=trend,
                    damped_trend=damped,
                    seasonal=seasonal,
                    seasonal_periods=m if seasonal else None,
                    initialization_method=init,
                )
                fitted = model.fit(disp=False, maxiter=2000)
            except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - defensive
                notes.append(f"{name} failed: {exc}")
                continue
            score = float(fitted.aicc)
            if not np.isfinite(score):
                continue
            scores[name] = score
            if best is None or score < best[0]:
                best = (score, name, fitted)
        if best is None:
            raise RuntimeError("no ETS model could be fitted")
        score, name, fitted = best
        cols: dict[str, np.ndarray] = {}
        prediction = fitted.get_prediction(start=n, end=n + horizon - 1)
        cols["forecast"] = np.asarray(prediction.predicted_mean, dtype=float)
        for level in levels:
            frame = prediction.summary_frame(alpha=1 - level)
            cols[f"lower_{_level_key(level)}"] = frame["pi_lower"].to_numpy(dtype=float)
            cols[f"upper_{_level_key(level)}"] = frame["pi_upper"].to_numpy(dtype=float)
    return name, score, scores, cols, np.asarray(fitted.fittedvalues, dtype=float)


def _growth_model_applies(y: np.ndarray, m: int) -> bool:
    """Between one season (+ a few growth ratios) and two seasons, with positive revenue."""
    n = len(y)
    return m + MIN_GROWTH_OBS <= n < 2 * m + 2 and bool(np.all(y > 0))


def _fit_growth_ets(z: np.ndarray) -> Any:
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ETSModel(pd.Series(z), error="add", trend=None).fit(disp=False, maxiter=2000)


def yoy_growth_forecast(
    y: np.ndarray, m: int, horizon: int, levels: Sequence[float] = (0.8, 0.95)
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Forecast from last year's value times the smoothed year-over-year growth.

    ``z[t] = ln y[t] - ln y[t - m]`` (the log growth versus the same period a year earlier) is
    smoothed with ETS(A,N,N) (simple exponential smoothing, fitted by maximum likelihood), and
    ``y_hat[n+h] = y[n+h - m k] * exp(k z_hat)`` with ``k = ceil(h / m)`` (last year's value
    of the same period, grown by the expected growth). Why: with one to two years of history a
    seasonal ETS cannot be estimated, a non-seasonal one ignores the Christmas peak, and plain
    seasonal naive ignores growth; this model keeps the seasonal shape and the trend with two
    parameters. It is SARIMA(0,1,1)(0,1,0)m on ``ln y`` in other words. Intervals: the ETS
    intervals of ``z`` mapped through ``exp`` (exact for ``h <= m``; beyond one season the
    growth uncertainty is scaled by ``k``, an approximation). Needs ``y > 0``.

    Returns the forecast columns (``forecast``, ``lower_L``, ``upper_L``) and the in-sample
    one-step predictions of ``y[m:]``.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < m + 2 or np.any(y <= 0):
        raise ValueError("yoy_growth_forecast needs more than one season of positive values")
    z = np.log(y[m:]) - np.log(y[:-m])
    fitted = _fit_growth_ets(z)
    one_step = y[:-m] * np.exp(np.asarray(fitted.fittedvalues, dtype=float))
    h = np.arange(1, horizon + 1)
    k = np.ceil(h / m).astype(int)
    base = y[n - 1 + h - m * k]
    prediction = fitted.get_prediction(start=len(z), end=len(z) + horizon - 1)
    z_hat = np.asarray(prediction.predicted_mean, dtype=float)
    cols: dict[str, np.ndarray] = {"forecast": base * np.exp(k * z_hat)}
    for level in sorted(levels):
        frame = prediction.summary_frame(alpha=1 - level)
        lo = frame["pi_lower"].to_numpy(dtype=float)
        hi = frame["pi_upper"].to_numpy(dtype=float)
        cols[f"lower_{_level_key(level)}"] = base * np.exp(k * z_hat - k * (z_hat - lo))
        cols[f"upper_{_level_key(level)}"] = base * np.exp(k * z_hat + k * (hi - z_hat))
    return cols, one_step


def _prefer_growth_model(
    y: np.ndarray,
    m: int,
    horizon: int,
    levels: list[float],
    notes: list[str],
    ets: tuple[str, float, dict[str, np.ndarray], np.ndarray],
) -> tuple[str, float, dict[str, np.ndarray]]:
    """Keep the non-seasonal ETS or switch to the growth model, by in-sample one-step MAE."""
    name, aicc, cols, ets_one_step = ets
    try:
        growth_cols, one_step = yoy_growth_forecast(y, m, horizon, levels)
    except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - defensive
        notes.append(f"year-over-year growth model failed: {exc}")
        return name, aicc, cols
    actual = y[m:]
    growth_mae = float(np.mean(np.abs(actual - one_step)))
    ets_mae = float(np.mean(np.abs(actual - ets_one_step[m:])))
    growth_name = f"ETS(A,N,N) on YoY log growth m={m}"
    notes.append(
        f"in-sample one-step MAE over periods {m + 1}..{len(y)}: {name} {ets_mae:,.4g}, "
        f"{growth_name} {growth_mae:,.4g}"
    )
    if growth_mae < ets_mae:
        return growth_name, float("nan"), growth_cols
    return name, aicc, cols


def seasonal_naive(y: np.ndarray, m: int, horizon: int) -> np.ndarray:
    """``y_hat[n+h] = y[n+h - m*ceil(h/m)]`` (same period last year); naive if n < m."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < m:
        return np.full(horizon, y[-1])
    h = np.arange(1, horizon + 1)
    return y[n - 1 + h - m * np.ceil(h / m).astype(int)]


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error in percent, over periods with a non-zero actual."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    keep = a != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(a[keep] - p[keep]) / np.abs(a[keep])) * 100)


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE in percent: mean of 2|a - p| / (|a| + |p|), with 0/0 counted as 0."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    denom = np.abs(a) + np.abs(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(denom > 0, 2 * np.abs(a - p) / denom, 0.0)
    return float(np.mean(terms) * 100)


def backtest(series: pd.Series, freq: Freq, folds: int, horizon: int) -> BacktestResult:
    """Rolling-origin evaluation of :func:`forecast_revenue` against seasonal naive.

    Fold ``k`` (1..folds) trains on everything before origin ``n - (folds - k + 1) * horizon``
    and forecasts the next ``horizon`` periods, so the test windows are consecutive,
    non-overlapping and together cover the last ``folds * horizon`` periods. Errors are pooled
    over all test points. ``winner`` compares sMAPE (defined even when revenue is 0), with a
    relative tolerance of 1e-9 for a tie.
    """
    import pandas as pd

    s, _, _ = _regularise(series, freq)
    y = s.to_numpy()
    n = len(y)
    m = SEASONAL_PERIODS[freq]
    if folds < 1 or horizon < 1:
        raise ValueError("folds and horizon must be >= 1")
    if n - folds * horizon < 3:
        raise ValueError(
            f"series of {n} periods too short for {folds} folds of {horizon} (need >= 3 to train)"
        )
    rows = []
    used: dict[str, int] = {}
    for k in range(1, folds + 1):
        origin = n - (folds - k + 1) * horizon
        train = s.iloc[:origin]
        result = forecast_revenue(train, freq, horizon, levels=(0.8,))
        used[result.model] = used.get(result.model, 0) + 1
        base = seasonal_naive(train.to_numpy(), m, horizon)
        for h in range(horizon):
            rows.append(
                {
                    "fold": k,
                    "origin": s.index[origin - 1],
                    "step": h + 1,
                    "date": s.index[origin + h],
                    "actual": y[origin + h],
                    "model_forecast": result.forecast["forecast"].iloc[h],
                    "baseline_forecast": base[h],
                    "model": result.model,
                }
            )
    table = pd.DataFrame(rows)
    a = table["actual"].to_numpy()
    model_smape = smape(a, table["model_forecast"].to_numpy())
    base_smape = smape(a, table["baseline_forecast"].to_numpy())
    if abs(model_smape - base_smape) <= 1e-9 * max(1.0, abs(base_smape)):
        winner: Literal["model", "seasonal_naive", "tie"] = "tie"
    else:
        winner = "model" if model_smape < base_smape else "seasonal_naive"
    return BacktestResult(
        folds=table,
        model_mape=mape(a, table["model_forecast"].to_numpy()),
        model_smape=model_smape,
        baseline_mape=mape(a, table["baseline_forecast"].to_numpy()),
        baseline_smape=base_smape,
        winner=winner,
        models_used=used,
    )


def backtest_folds(n: int, freq: Freq, horizon: int, max_folds: int = 4) -> int:
    """How many rolling-origin folds of ``horizon`` periods a series of ``n`` periods allows.

    Each fold must train on enough history for the model family the final forecast will use:
    two seasons + 2 (seasonal ETS) if the series allows at least one such fold, else one season
    + :data:`MIN_GROWTH_OBS` (the year-over-year growth model), else half the series. So the
    backtest measures the same kind of model that is published. Returns 0 when even half the
    series cannot hold one fold (the caller reports "too short to backtest").
    """
    if freq not in SEASONAL_PERIODS:
        raise ValueError(f"freq must be 'W' or 'M', got {freq!r}")
    if horizon < 1 or max_folds < 1:
        raise ValueError("horizon and max_folds must be >= 1")
    m = SEASONAL_PERIODS[freq]
    for min_train in (2 * m + 2, m + MIN_GROWTH_OBS, max(3, n // 2)):
        folds = min(max_folds, (n - min_train) // horizon)
        if folds >= 1:
            return folds
    return 0
