"""Customer lifetime value per source: BG/NBD + Gamma-Gamma fitted on the marts' summary.

The per-customer summary (frequency, recency, T, mean repeat value; weeks) is computed in the
engine by :func:`retailhub.analytics.clv.summary_sql`, the models are fitted on a deterministic
sample of customers (parameters are population-level) and applied to every customer. A source
on which a model cannot be fitted (too few repeat customers) gets NULL predictions and a note in
``mart_model_evaluation``; it does not fail the run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from retailhub.analytics.clv import (
    WEEKS_PER_MONTH,
    clv,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    summary_sql,
)
from retailhub.pipeline.marts.context import MartContext, SourceInfo
from retailhub.pipeline.marts.sampling import hash_sample

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

MODEL = "clv"
#: Months of the predictive CLV.
CLV_MONTHS = 12
#: Fewer customers (BG/NBD) or repeat customers (Gamma-Gamma) than this: no fit. A handful
#: of customers cannot identify four parameters (the likelihood is flat and the optimiser
#: wanders for seconds to return noise).
MIN_FIT_CUSTOMERS = 30


def customer_summary(ctx: MartContext, source: SourceInfo, orders: str) -> pd.DataFrame:
    """The engine's part: one row per customer of ``source`` (frequency, recency, T, mean
    repeat value; weeks), indexed by ``customer_id``.

    ``orders``: relation of purchase orders with a customer (one row per order: source_system,
    customer_id, order_id, order_date, net_amount).
    """
    return ctx.frame(
        summary_sql(
            orders,
            source.last_date,
            "W",
            where=f"source_system = {source.sql}",
            source_col=None,
        ),
        "mart_customer_360",
    ).set_index("customer_id")


def customer_value(ctx: MartContext, source: SourceInfo, summary: pd.DataFrame) -> pd.DataFrame:
    """``customer_id`` → ``clv_12m``, ``expected_orders_12m``, ``p_alive`` (NaN if not fitted).

    Fits and scores ``summary`` (:func:`customer_summary`) without touching the engine, so it
    can run on a worker thread while the connection builds other marts.
    """
    import pandas as pd

    out = pd.DataFrame(
        {"clv_12m": np.nan, "expected_orders_12m": np.nan, "p_alive": np.nan},
        index=summary.index,
    )
    if summary.empty:
        return out
    fit_on = hash_sample(summary, ctx.config.clv_fit_customers)
    name = source.source_system
    if len(fit_on) < MIN_FIT_CUSTOMERS:
        _skipped(ctx, name, "bgnbd", f"{len(fit_on)} customers < {MIN_FIT_CUSTOMERS}")
        return out
    try:
        bg = fit_bgnbd(fit_on["frequency"], fit_on["recency"], fit_on["T"])
    except ValueError as exc:
        _skipped(ctx, name, "bgnbd", exc)
        return out
    x, t_x, big_t = summary["frequency"], summary["recency"], summary["T"]
    horizon = CLV_MONTHS * WEEKS_PER_MONTH
    # A degenerate fit (a = 1 on a handful of customers) divides by zero in eq. 10: such
    # values become NULL rather than inf.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out["p_alive"] = _finite(p_alive(bg, x, t_x, big_t))
        out["expected_orders_12m"] = _finite(expected_purchases(bg, horizon, x, t_x, big_t))
    for metric, value in (
        ("bgnbd_r", bg.r),
        ("bgnbd_alpha", bg.alpha),
        ("bgnbd_a", bg.a),
        ("bgnbd_b", bg.b),
        ("bgnbd_log_likelihood", bg.log_likelihood),
        ("bgnbd_customers_fitted", bg.n_customers),
        ("mean_dropout_probability", bg.mean_dropout_probability),
    ):
        ctx.record(name, MODEL, metric, value)
    ctx.record(name, MODEL, "customers_scored", len(summary), "time unit: weeks")
    repeaters = int(((fit_on["frequency"] > 0) & (fit_on["monetary_value"] > 0)).sum())
    if repeaters < MIN_FIT_CUSTOMERS:
        _skipped(ctx, name, "gamma_gamma", f"{repeaters} repeat customers < {MIN_FIT_CUSTOMERS}")
        return out
    try:
        gg = fit_gamma_gamma(fit_on["frequency"], fit_on["monetary_value"])
    except ValueError as exc:
        _skipped(ctx, name, "gamma_gamma", exc)
        return out
    repeat = summary[summary["frequency"] > 0]
    correlation = (
        float(np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1])
        if len(repeat) > 2
        else float("nan")
    )
    for metric, value in (
        ("gamma_gamma_p", gg.p),
        ("gamma_gamma_q", gg.q),
        ("gamma_gamma_gamma", gg.gamma),
        ("gamma_gamma_log_likelihood", gg.log_likelihood),
        ("gamma_gamma_customers_fitted", gg.n_customers),
        ("frequency_spend_correlation", correlation),
    ):
        ctx.record(name, MODEL, metric, value)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out["clv_12m"] = _finite(
            clv(
                bg,
                gg,
                x,
                t_x,
                big_t,
                summary["monetary_value"],
                months=CLV_MONTHS,
                periods_per_month=WEEKS_PER_MONTH,
            )
        )
    return out


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, np.nan)


def _skipped(ctx: MartContext, source: str, part: str, reason: Exception | str) -> None:
    log.warning("CLV %s not fitted for %s: %s", part, source, reason)
    ctx.record(source, MODEL, f"{part}_skipped", None, str(reason))
