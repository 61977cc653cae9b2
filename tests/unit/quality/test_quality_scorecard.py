"""Score formula (known answers), scorecard shape, outcome round trip."""

from __future__ import annotations

import json

import pytest

from retailhub.quality.results import QualityOutcome, RuleResult, quality_score
from retailhub.quality.scorecard import build_scorecard


def rr(rule: str, kind: str, severity: str, metric: float, passed: bool, failing: int = 0):
    return RuleResult(
        run_id="r",
        dataset="ds",
        rule=rule,
        kind=kind,
        column=None,
        severity=severity,
        action="metric",
        metric=metric,
        threshold=0.9,
        passed=passed,
        failing_rows=failing,
        rows_checked=100,
        sample=[{"file": "f.csv", "line": 2, "reason": "x", "values": {}}] if failing else [],
        message=rule,
    )


def test_score_is_severity_weighted_mean_compliance():
    results = [
        rr("a", "validity", "error", 0.9, True, 10),  # weight 2, compliance 0.9
        rr("b", "completeness", "warn", 0.75, False, 25),  # weight 1, compliance 0.75
        rr("c", "freshness", "warn", 30.0, False),  # measured value: failed -> 0
        rr("d", "volume", "error", 1000.0, True),  # passed -> 1
    ]
    # (2*0.9 + 1*0.75 + 1*0 + 2*1) / 6 = 4.55 / 6
    assert quality_score(results) == pytest.approx(round(100 * 4.55 / 6, 2))
    assert quality_score([]) == 100.0


def test_scorecard_lists_worst_failures_first():
    ok = QualityOutcome("sales", 100, 90, 10, "acc", "q", [
        rr("fine", "validity", "error", 1.0, True),
        rr("warned", "completeness", "warn", 0.5, False, 50),
        rr("blocked", "validity", "error", 0.8, False, 20),
    ])  # fmt: skip
    empty = QualityOutcome("catalog", 0, 0, 0, "acc2", "q2", [])
    card = build_scorecard([ok, empty])
    sales = card.datasets[0]
    assert (sales.rules_passed, sales.rules_failed, sales.blocking) == (1, 2, 1)
    assert [w["rule"] for w in sales.worst] == ["blocked", "warned"]
    assert sales.worst[0]["example"]["file"] == "f.csv"
    assert card.overall_score == sales.score  # weighted by input rows; catalog has none
    assert card.publishable is False
    json.dumps(card.to_dict())  # plain data


def test_outcome_round_trips_through_json():
    outcome = QualityOutcome(
        "sales", 3, 2, 1, "acc", "q", [rr("a", "range", "warn", 0.5, False, 1)]
    )
    again = QualityOutcome.from_dict(json.loads(json.dumps(outcome.to_dict())))
    assert again == outcome
    row = outcome.results[0].ledger_row()
    assert row["column_name"] is None and json.loads(row["sample"])[0]["line"] == 2
