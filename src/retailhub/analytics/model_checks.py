"""Insights about the models themselves: is a score worth using, who is at risk.

Why: a churn probability or a forecast is only useful if it beats the naive alternative, and a
reader of a dashboard cannot see the backtest. These builders turn the evaluation numbers into
the same insight rows as :mod:`retailhub.analytics.insights` (kind, title, text, metric_value,
evidence, query, severity, impact), so "the churn model has no signal here" is said as plainly
as "revenue fell 14 %". Pure functions on plain numbers.
"""

from __future__ import annotations

from typing import Any

from retailhub.analytics.insights import evidence_json, insight_row

#: Kinds produced here (``model_check`` rows are warnings or information, impact 0).
CHURN_RISK = "churn_risk"
MODEL_CHECK = "model_check"

_PERIOD = {"W": ("Weekly", "weeks"), "M": ("Monthly", "months")}


def _row(
    kind: str,
    title: str,
    text: str,
    metric_value: float,
    evidence: str,
    query: str,
    severity: str,
    impact: float = 0.0,
) -> dict[str, Any]:
    return insight_row(kind, title, text, metric_value, evidence, query, impact, severity=severity)


def churn_model_insight(
    *,
    published: bool,
    reason: str,
    roc_auc: float | None,
    baseline_auc: float | None,
    evaluation_query: str,
) -> dict[str, Any]:
    """Whether churn scores were published, with the evidence (AUC vs recency-only AUC)."""
    if published and roc_auc is not None and baseline_auc is not None:
        text = (
            f"The churn model beats the recency-only baseline: ROC AUC {roc_auc:.3f} vs "
            f"{baseline_auc:.3f} (+{roc_auc - baseline_auc:.3f}) on a later, unseen period; "
            "churn scores are published."
        )
        severity = "info"
    else:
        text = f"Churn scores are not published: {reason}."
        severity = "warning"
    return _row(
        MODEL_CHECK,
        "Churn model check",
        text,
        roc_auc if roc_auc is not None else float("nan"),
        evidence_json(
            published=published,
            reason=reason,
            roc_auc=roc_auc,
            baseline_auc=baseline_auc,
        ),
        evaluation_query,
        severity,
    )


def churn_risk_insight(
    *,
    high_risk_customers: int,
    customers: int,
    high_risk_monetary: float,
    monthly_revenue: float,
    threshold: float,
    min_m_score: int,
    currency: str,
    query: str,
) -> dict[str, Any] | None:
    """High-value customers with a high churn probability; impact = their monthly revenue.

    Only customers whose spend puts them in the top quintiles (``m_score >= min_m_score``) are
    counted: in a shop where most customers buy once a year nearly everyone has a high
    probability of no purchase in 90 days, and the list worth acting on is the valuable part.
    """
    if high_risk_customers <= 0:
        return None
    share = high_risk_customers / customers if customers else float("nan")
    share_text = f"{share:.1%}" if share < 0.01 else f"{share:.0%}"
    who = "customer" if high_risk_customers == 1 else "customers"
    verb = "has" if high_risk_customers == 1 else "have"
    text = (
        f"{high_risk_customers:,} high-spending {who} (M score {min_m_score}+) {verb} a high "
        f"churn risk (probability at least {threshold:.0%}; {share_text} of all customers); "
        f"they spent {currency}{high_risk_monetary:,.0f} so far: contact them before they lapse."
    )
    return _row(
        CHURN_RISK,
        "High-value customers at risk",
        text,
        high_risk_customers,
        evidence_json(
            customers=high_risk_customers,
            share_of_customers=share,
            monetary=high_risk_monetary,
            monthly_revenue=monthly_revenue,
            min_m_score=min_m_score,
        ),
        query,
        "medium",
        monthly_revenue,
    )


def forecast_check_insight(
    *,
    freq: str,
    model: str,
    model_smape: float | None,
    baseline_smape: float | None,
    winner: str | None,
    folds: int,
    horizon: int,
    query: str,
) -> dict[str, Any]:
    """Whether the forecast model beat seasonal naive in its rolling-origin backtest."""
    label, unit = _PERIOD.get(freq, ("", "periods"))
    if winner is None or model_smape is None or baseline_smape is None:
        text = (
            f"{label} revenue forecast ({model}) has no backtest: the history is too short "
            "to hold out a full horizon; treat it as indicative."
        )
        severity = "warning"
    elif winner == "model":
        text = (
            f"{label} revenue forecast ({model}) beats seasonal naive in the backtest: sMAPE "
            f"{model_smape:.1f}% vs {baseline_smape:.1f}% over {folds} fold(s) of {horizon} "
            f"{unit}."
        )
        severity = "info"
    else:
        text = (
            f"{label} revenue forecast ({model}) does not beat seasonal naive in the backtest "
            f"(sMAPE {model_smape:.1f}% vs {baseline_smape:.1f}% over {folds} fold(s) of "
            f"{horizon} {unit}): plan with last year's figures instead."
        )
        severity = "warning"
    return _row(
        MODEL_CHECK,
        f"{label} forecast check",
        text,
        model_smape if model_smape is not None else float("nan"),
        evidence_json(
            model=model,
            model_smape=model_smape,
            baseline_smape=baseline_smape,
            winner=winner,
            folds=folds,
            horizon=horizon,
        ),
        query,
        severity,
    )
