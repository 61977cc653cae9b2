"""``marts.mart_forecast``: weekly and monthly revenue forecasts with their backtest.

Per source, the net revenue of ``mart_kpi_daily`` is summed per Monday-to-Sunday week and per
calendar month, **complete periods only** (a partial first or last period would read as a
collapse). :func:`retailhub.analytics.forecast.forecast_revenue` produces the forecast with 80 %
and 95 % intervals; a rolling-origin :func:`~retailhub.analytics.forecast.backtest` at the same
horizon measures it against seasonal naive, and both errors are stored on every row and in
``mart_model_evaluation``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retailhub.analytics.forecast import backtest, backtest_folds, forecast_revenue
from retailhub.pipeline.marts import kpis
from retailhub.pipeline.marts.base import SOURCES, partial_month_sql, partial_week_sql
from retailhub.pipeline.marts.context import MartContext, SourceInfo, json_text

if TYPE_CHECKING:
    import pandas as pd

    from retailhub.analytics.forecast import BacktestResult, ForecastResult

log = logging.getLogger(__name__)

NAME = "mart_forecast"
COLUMNS = {
    "source_system": "VARCHAR",
    "currency_code": "VARCHAR",
    "freq": "VARCHAR",
    "period_start": "DATE",
    "step": "BIGINT",
    "forecast": "DOUBLE",
    "lower_80": "DOUBLE",
    "upper_80": "DOUBLE",
    "lower_95": "DOUBLE",
    "upper_95": "DOUBLE",
    "model": "VARCHAR",
    "history_periods": "BIGINT",
    "backtest_folds": "BIGINT",
    "backtest_horizon": "BIGINT",
    "backtest_mape": "DOUBLE",
    "backtest_smape": "DOUBLE",
    "baseline_mape": "DOUBLE",
    "baseline_smape": "DOUBLE",
    "beats_baseline": "BOOLEAN",
    "notes": "VARCHAR",
}
FREQS = {"W": ("week", partial_week_sql), "M": ("month", partial_month_sql)}


@dataclass
class ForecastOutcome:
    """One source's forecast at one frequency (for the insights)."""

    source: str
    freq: str
    result: ForecastResult | None
    backtest: BacktestResult | None
    reason: str = ""


def build(ctx: MartContext) -> tuple[dict[str, Any], list[ForecastOutcome]]:
    import pandas as pd

    frames = []
    outcomes = []
    for source in ctx.sources:
        for freq in FREQS:
            outcome = _forecast(ctx, source, freq)
            outcomes.append(outcome)
            if outcome.result is not None:
                frames.append(_rows(source, outcome))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    mart = ctx.create_mart_from_frame(
        NAME,
        table,
        COLUMNS,
        "source_system, freq, period_start",
        ("marts.mart_kpi_daily",),
        grain=("source_system", "freq", "period_start"),
    )
    return mart, outcomes


def revenue_series(ctx: MartContext, source: SourceInfo, freq: str) -> pd.Series:
    """Net revenue per complete week (Monday) or month (first day) of ``source``."""
    import pandas as pd

    unit, partial = FREQS[freq]
    frame = ctx.frame(
        f"""
        with periods as (
            select cast(date_trunc('{unit}', k.date) as date) as period_start,
                   sum(k.revenue) as revenue
            from {ctx.mart(kpis.NAME)} as k
            where k.source_system = {source.sql}
            group by 1
        )
        select p.period_start, cast(p.revenue as double) as revenue
        from periods as p join {SOURCES} as s on s.source_system = {source.sql}
        where not {partial("p.period_start", "s")}
        order by p.period_start
        """,
        NAME,
    )
    series = pd.Series(
        frame["revenue"].to_numpy(dtype=float),
        index=pd.DatetimeIndex(pd.to_datetime(frame["period_start"])),
        name="revenue",
    )
    return series


def _forecast(ctx: MartContext, source: SourceInfo, freq: str) -> ForecastOutcome:
    name = source.source_system
    model_name = f"forecast_{FREQS[freq][0]}"
    horizon = (
        ctx.config.forecast_horizon_weeks if freq == "W" else ctx.config.forecast_horizon_months
    )
    series = revenue_series(ctx, source, freq)
    ctx.record(name, model_name, "history_periods", len(series))
    if len(series) == 0:
        reason = "no complete period of data"
        ctx.record(name, model_name, "skipped", None, reason)
        return ForecastOutcome(name, freq, None, None, reason)
    with ctx.timed("forecast"):
        try:
            result = forecast_revenue(series, freq, horizon, levels=(0.8, 0.95))  # type: ignore[arg-type]
        except (ValueError, RuntimeError) as exc:
            ctx.record(name, model_name, "skipped", None, str(exc))
            return ForecastOutcome(name, freq, None, None, str(exc))
    ctx.record(name, model_name, "model", None, result.model)
    ctx.record(name, model_name, "notes", None, result.notes)
    folds = backtest_folds(result.n_obs, freq, horizon)  # type: ignore[arg-type]
    bt = None
    if folds >= 1:
        with ctx.timed("forecast backtest"):
            try:
                bt = backtest(series, freq, folds, horizon)  # type: ignore[arg-type]
            except ValueError as exc:
                ctx.record(name, model_name, "backtest_skipped", None, str(exc))
    else:
        ctx.record(name, model_name, "backtest_skipped", None, "history too short for one fold")
    if bt is not None:
        for key, value in bt.as_dict().items():
            if key in ("winner", "models_used"):
                ctx.record(name, model_name, f"backtest_{key}", None, value)
            else:
                ctx.record(name, model_name, f"backtest_{key}", value)
        ctx.record(name, model_name, "backtest_folds", folds)
        ctx.record(name, model_name, "backtest_horizon", horizon)
    return ForecastOutcome(name, freq, result, bt)


def _rows(source: SourceInfo, outcome: ForecastOutcome) -> pd.DataFrame:
    import pandas as pd

    result = outcome.result
    assert result is not None
    table = result.forecast.reset_index()
    bt = outcome.backtest
    folds = int(len(bt.folds) / bt.folds["step"].max()) if bt is not None else None
    horizon = int(bt.folds["step"].max()) if bt is not None else None
    return pd.DataFrame(
        {
            "source_system": source.source_system,
            "currency_code": source.currency_code,
            "freq": FREQS[outcome.freq][0],
            "period_start": pd.to_datetime(table["date"]).dt.date,
            "step": range(1, len(table) + 1),
            "forecast": table["forecast"],
            "lower_80": table.get("lower_80"),
            "upper_80": table.get("upper_80"),
            "lower_95": table.get("lower_95"),
            "upper_95": table.get("upper_95"),
            "model": result.model,
            "history_periods": result.n_obs,
            "backtest_folds": folds,
            "backtest_horizon": horizon,
            "backtest_mape": bt.model_mape if bt else None,
            "backtest_smape": bt.model_smape if bt else None,
            "baseline_mape": bt.baseline_mape if bt else None,
            "baseline_smape": bt.baseline_smape if bt else None,
            "beats_baseline": (bt.winner == "model") if bt else None,
            "notes": json_text(result.notes),
        }
    )
