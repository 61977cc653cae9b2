"""What a quality run reports: one :class:`RuleResult` per rule and a :class:`QualityOutcome`.

These are plain dataclasses so the pipeline can store them in the run ledger
(``meta.quality_results``, ``meta.dataset_accounting``), put them in a JSON task payload and rebuild
them on ``--resume`` without the quality layer being involved.

Quality score (0..100), shown on the scorecard and stored per dataset::

    score = 100 * sum(w_r * c_r) / sum(w_r)

* ``c_r`` is the compliance of rule ``r``: its pass rate (share of checked rows that pass) for
  every row-counting kind (completeness, uniqueness, validity, range, accepted_values, regex,
  referential, type), and 1 or 0 (passed or not) for freshness and volume, which count no rows.
* ``w_r`` is 2 for ``severity: error`` and 1 for ``warn``: a breach that would block publication
  weighs twice a warning.
* No rules at all scores 100.

Why this shape: it moves with the share of bad rows (a rule failing 1% of rows costs about 1% of
its weight, not the whole rule), it does not drop to zero because one noisy warning failed, and
anyone can recompute it by hand from ``meta.quality_results``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

#: Kinds judged by a measured value against a limit rather than by a share of rows.
VALUE_KINDS = frozenset({"freshness", "volume"})
SEVERITY_WEIGHT = {"error": 2.0, "warn": 1.0}


@dataclass
class RuleResult:
    """One row of ``meta.quality_results``: the verdict of one rule on one batch."""

    run_id: str
    dataset: str
    rule: str
    kind: str
    column: str | None
    severity: str
    action: str
    #: Pass rate 0..1 for row-counting kinds; the measured value for freshness (age in hours of
    #: the oldest landed file or the newest column value) and volume (accepted rows).
    metric: float
    #: Minimum pass rate; max age in hours for freshness; min_rows (if any) for volume.
    threshold: float | None
    passed: bool
    failing_rows: int
    rows_checked: int
    #: Up to 5 failing examples: ``{"file", "line", "reason", "values": {column: value}}``.
    sample: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    @property
    def compliance(self) -> float:
        """This rule's contribution to the score (see the module docstring)."""
        if self.kind in VALUE_KINDS:
            return 1.0 if self.passed else 0.0
        return max(0.0, min(1.0, self.metric))

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and not self.passed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleResult:
        return cls(**data)

    def ledger_row(self, checked_at: datetime | None = None) -> dict[str, Any]:
        """The row for ``meta.quality_results`` (its column is ``column_name``; sample as JSON)."""
        row = self.to_dict()
        row["column_name"] = row.pop("column")
        row["sample"] = json.dumps(self.sample, default=str)
        row["checked_at"] = checked_at
        return row


@dataclass
class QualityOutcome:
    """What happened to one dataset's batch: the row accounting and every rule's verdict."""

    dataset: str
    input_rows: int
    accepted_rows: int
    quarantined_rows: int
    accepted_table: str
    quarantine_table: str
    results: list[RuleResult] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[RuleResult]:
        """Rules of severity ``error`` that did not pass: the dataset must not be published."""
        return [r for r in self.results if r.blocking]

    @property
    def warnings(self) -> list[RuleResult]:
        return [r for r in self.results if r.severity == "warn" and not r.passed]

    @property
    def score(self) -> float:
        """Quality score 0..100 (formula in the module docstring)."""
        return quality_score(self.results)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = self.score
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityOutcome:
        fields = {k: v for k, v in data.items() if k not in ("results", "score")}
        results = [RuleResult.from_dict(r) for r in data.get("results", [])]
        return cls(**fields, results=results)


def quality_score(results: list[RuleResult]) -> float:
    """Severity-weighted mean compliance of ``results``, in percent, rounded to 0.01."""
    total = sum(SEVERITY_WEIGHT.get(r.severity, 1.0) for r in results)
    if total == 0:
        return 100.0
    weighted = sum(SEVERITY_WEIGHT.get(r.severity, 1.0) * r.compliance for r in results)
    return round(100.0 * weighted / total, 2)


def jsonable(value: Any) -> Any:
    """A sample value that survives ``json.dumps`` unchanged in meaning."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)
