"""The quality scorecard as plain data (the CLI and web render it), and the default rule sets.

One entry per dataset: input / accepted / quarantined rows, the score (formula in
:mod:`retailhub.quality.results`), rules passed and failed, and the worst failures first:
blocking ones, then by how many rows they hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from retailhub.config.quality import RuleConfig, layout_names, layout_rules
from retailhub.quality.results import QualityOutcome, RuleResult

WORST = 3


@dataclass
class DatasetScore:
    dataset: str
    input_rows: int
    accepted_rows: int
    quarantined_rows: int
    score: float
    rules_passed: int
    rules_failed: int
    blocking: int
    worst: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Scorecard:
    datasets: list[DatasetScore]
    #: Input-row weighted mean of the dataset scores (100 with no rows).
    overall_score: float
    #: True when no dataset has a blocking failure.
    publishable: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _severity_rank(result: RuleResult) -> int:
    return 0 if result.blocking else 1


def _worst(results: list[RuleResult], limit: int = WORST) -> list[dict[str, Any]]:
    failed = [r for r in results if not r.passed]
    failed.sort(key=lambda r: (_severity_rank(r), r.compliance, -r.failing_rows, r.rule))
    return [
        {
            "rule": r.rule,
            "kind": r.kind,
            "severity": r.severity,
            "failing_rows": r.failing_rows,
            "metric": r.metric,
            "threshold": r.threshold,
            "message": r.message,
            "example": r.sample[0] if r.sample else None,
        }
        for r in failed[:limit]
    ]


def dataset_score(outcome: QualityOutcome) -> DatasetScore:
    passed = sum(1 for r in outcome.results if r.passed)
    return DatasetScore(
        dataset=outcome.dataset,
        input_rows=outcome.input_rows,
        accepted_rows=outcome.accepted_rows,
        quarantined_rows=outcome.quarantined_rows,
        score=outcome.score,
        rules_passed=passed,
        rules_failed=len(outcome.results) - passed,
        blocking=len(outcome.blocking_failures),
        worst=_worst(outcome.results),
    )


def build_scorecard(outcomes: Iterable[QualityOutcome]) -> Scorecard:
    """Scorecard of a run from its per-dataset outcomes (order kept)."""
    entries = [dataset_score(o) for o in outcomes]
    rows = sum(e.input_rows for e in entries)
    if rows:
        overall = sum(e.score * e.input_rows for e in entries) / rows
    elif entries:
        overall = sum(e.score for e in entries) / len(entries)
    else:
        overall = 100.0
    return Scorecard(
        datasets=entries,
        overall_score=round(overall, 2),
        publishable=all(e.blocking == 0 for e in entries),
    )


def default_rules(layout_name: str) -> list[RuleConfig]:
    """The documented default rules of a built-in layout.

    The rules and the reasons for each (real quirks of UCI Online Retail, Superstore, the
    product catalogs and the customer-behaviour table) live in
    ``retailhub.config.quality.LAYOUT_RULES_YAML``, next to the models, because the config
    layer uses them for datasets that declare no rules of their own.
    """
    return layout_rules(layout_name)


def default_layouts() -> list[str]:
    return layout_names()
