"""Churn model per source: time-separated evaluation first, publication only if it earns it.

With horizon ``h`` and reference date ``R`` (day after the source's last line):

* **evaluate**: train at ``c1 = R - 2h`` (label: no purchase in ``[c1, c1 + h)``), evaluate at
  ``c2 = R - h`` whose label window ``[c2, R)`` is the last ``h`` days of data — never seen in
  training. ROC AUC, the recency-only baseline AUC, Brier score, precision and lift in the top
  decile and a 10-bin calibration table go to ``mart_model_evaluation``.
* **publish**: only when the model beats recency alone (AUC > baseline AUC) and reaches
  ``analytics.churn_min_auc``. Then the same procedure is re-run one horizon later (train at
  ``c2``, score every customer as of ``R``). Otherwise ``churn_probability`` stays NULL for the
  source and an insight says why: a score without signal would be read as if it were one.

Features and labels are computed in the engine (``churn_features_sql``, ``churn_labels_sql``);
the model trains on a deterministic sample of customers, one thread, fixed seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from retailhub.analytics.churn import (
    churn_features_sql,
    churn_labels_sql,
    churn_scores,
    evaluate_churn,
    train_churn_model,
)
from retailhub.pipeline.marts.context import MartContext, SourceInfo
from retailhub.pipeline.marts.sampling import hash_sample

if TYPE_CHECKING:
    import pandas as pd

    from retailhub.analytics.churn import ChurnReport

log = logging.getLogger(__name__)

MODEL = "churn"


@dataclass
class ChurnOutcome:
    """What the churn step decided for one source (for the insights)."""

    source: str
    published: bool
    reason: str
    report: ChurnReport | None = None
    scores: pd.DataFrame | None = None  # index customer_id: churn_probability, churn_risk


@dataclass
class ChurnData:
    """The engine's part of one source's churn model: every frame the fits need.

    Fetched up front, so that training, evaluation and scoring (:func:`churn_for_source`)
    never touch the connection and can run on a worker thread while it builds other marts.
    ``problem`` says why there is nothing to fit (history too short, no lines before a cutoff).
    """

    train: tuple[pd.DataFrame, pd.Series] | None = None
    evaluation: tuple[pd.DataFrame, pd.Series] | None = None
    current: pd.DataFrame | None = None
    problem: str | None = None


def _cutoffs(ctx: MartContext, source: SourceInfo) -> tuple[date, date]:
    """(train cutoff c1, evaluation cutoff c2) for ``source``."""
    c2 = source.reference_date - timedelta(days=ctx.config.churn_horizon_days)
    return c2 - timedelta(days=ctx.config.churn_horizon_days), c2


def churn_data(ctx: MartContext, source: SourceInfo, orders: str) -> ChurnData:
    """Features and labels at both cutoffs, and today's features, of ``source``'s customers."""
    horizon = ctx.config.churn_horizon_days
    c1, c2 = _cutoffs(ctx, source)
    if source.first_date >= c1:
        return ChurnData(
            problem=f"history too short: {source.first_date} to {source.last_date} does not "
            f"hold two {horizon}-day label windows after some history (need data before {c1})"
        )
    try:
        return ChurnData(
            train=_dataset(ctx, source, orders, c1),
            evaluation=_dataset(ctx, source, orders, c2),
            current=_features(ctx, source, orders, source.reference_date),
        )
    except ValueError as exc:  # no lines before a cutoff, ...
        return ChurnData(problem=f"model could not be evaluated: {exc}")


def churn_for_source(ctx: MartContext, source: SourceInfo, data: ChurnData) -> ChurnOutcome:
    """Evaluate, and if it beats the baseline, score every customer of ``source``.

    Works on ``data`` (:func:`churn_data`) alone: no engine access.
    """
    name = source.source_system
    c1, c2 = _cutoffs(ctx, source)
    ctx.record(name, MODEL, "horizon_days", ctx.config.churn_horizon_days)
    ctx.record(name, MODEL, "train_cutoff", None, c1.isoformat())
    ctx.record(name, MODEL, "evaluation_cutoff", None, c2.isoformat())
    if data.problem or data.train is None or data.evaluation is None or data.current is None:
        return _not_published(ctx, name, data.problem or "no data")
    try:
        train_x, train_y = _sample(ctx, *data.train)
        model = train_churn_model(train_x, train_y, random_state=0, max_threads=1)
        eval_x, eval_y = data.evaluation
        report = evaluate_churn(model, eval_x, eval_y)
    except ValueError as exc:  # single-class labels, ...
        return _not_published(ctx, name, f"model could not be evaluated: {exc}")
    _record_report(ctx, name, report)
    min_auc = ctx.config.churn_min_auc
    if report.roc_auc <= report.baseline_auc:
        return _not_published(
            ctx,
            name,
            f"no churn signal beyond recency: ROC AUC {report.roc_auc:.3f} vs "
            f"{report.baseline_auc:.3f} for days since the last order",
            report,
        )
    if report.roc_auc < min_auc:
        return _not_published(
            ctx,
            name,
            f"ROC AUC {report.roc_auc:.3f} is below analytics.churn_min_auc ({min_auc})",
            report,
        )
    final_x, final_y = _sample(ctx, eval_x, eval_y)  # the evaluation population, labelled
    final = train_churn_model(final_x, final_y, random_state=0, max_threads=1)
    scores = churn_scores(final, data.current)
    ctx.record(name, MODEL, "published", 1.0, "model beats the recency-only baseline")
    ctx.record(name, MODEL, "customers_scored", len(scores))
    return ChurnOutcome(name, True, "beats the recency-only baseline", report, scores)


def _features(ctx: MartContext, source: SourceInfo, orders: str, cutoff: Any) -> pd.DataFrame:
    sql = churn_features_sql(orders, cutoff, where=f"source_system = {source.sql}", source_col=None)
    return ctx.frame(sql, "mart_customer_360").set_index("customer_id")


def _dataset(
    ctx: MartContext, source: SourceInfo, orders: str, cutoff: Any
) -> tuple[pd.DataFrame, pd.Series]:
    features = _features(ctx, source, orders, cutoff)
    labels = ctx.frame(
        churn_labels_sql(
            orders,
            cutoff,
            ctx.config.churn_horizon_days,
            where=f"source_system = {source.sql}",
            source_col=None,
        ),
        "mart_customer_360",
    ).set_index("customer_id")["churned"]
    return features, labels.reindex(features.index).astype("int64")


def _sample(
    ctx: MartContext, features: pd.DataFrame, label: pd.Series
) -> tuple[pd.DataFrame, pd.Series]:
    sample = hash_sample(features, ctx.config.churn_fit_customers)
    return sample, label.loc[sample.index]


def _record_report(ctx: MartContext, name: str, report: ChurnReport) -> None:
    for metric in (
        "n_customers",
        "churn_rate",
        "roc_auc",
        "baseline_auc",
        "auc_improvement",
        "brier",
        "precision_at_top_decile",
        "lift_at_top_decile",
    ):
        ctx.record(name, MODEL, metric, getattr(report, metric))
    ctx.record(
        name,
        MODEL,
        "calibration",
        len(report.calibration),
        report.calibration.to_dict(orient="records"),
    )


def _not_published(
    ctx: MartContext, name: str, reason: str, report: ChurnReport | None = None
) -> ChurnOutcome:
    log.warning("churn scores not published for %s: %s", name, reason)
    ctx.record(name, MODEL, "published", 0.0, reason)
    return ChurnOutcome(name, False, reason, report)
