"""What every compiled rule shares: its identity, the run facts, and the pass-rate verdict.

A compiled check contributes SQL to at most three statements of a quality run:

* ``scan_items``: ``<expr> AS <name>`` columns added to the checked table by the one scan
  (flags evaluated once per row, so later queries only read booleans);
* ``aggregates``: items of the one aggregate query over the checked table;
* ``sample_specs``: conditions whose first failing rows (by file, line) become the sample.

It then turns the aggregate row and the samples into :class:`RuleResult` objects. Nothing here
touches a connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from retailhub.quality.results import RuleResult, jsonable

SAMPLE_SIZE = 5
Samples = Mapping[str, list[dict[str, Any]]]


@dataclass
class Env:
    """What the checks need to turn aggregates into verdicts."""

    run_id: str
    dataset: str
    total_rows: int
    accepted_rows: int
    now: datetime
    file_times: Sequence[tuple[str, datetime]]
    previous_rows: int | None
    #: (name, rows read) of every file landed this run, for messages that name the file.
    file_rows: Sequence[tuple[str, int]] = ()


@dataclass
class RuleInfo:
    """The resolved identity of a rule (defaults applied)."""

    name: str
    kind: str
    column: str | None
    severity: str
    action: str
    threshold: float | None

    def result(self, env: Env, **fields: Any) -> RuleResult:
        return RuleResult(
            run_id=env.run_id,
            dataset=env.dataset,
            rule=self.name,
            kind=self.kind,
            column=self.column,
            severity=self.severity,
            action=self.action,
            threshold=self.threshold,
            **fields,
        )


@dataclass(frozen=True)
class SampleSpec:
    """Rows of the checked table where ``condition`` holds, first 5 by (file, line)."""

    key: str
    condition: str
    reason: str
    columns: tuple[str, ...]


class Check:
    """Base of every compiled rule."""

    info: RuleInfo

    def scan_items(self) -> list[str]:
        return []

    def aggregates(self) -> list[str]:
        return []

    def sample_specs(self) -> list[SampleSpec]:
        return []

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        raise NotImplementedError


def clean_sample(raw: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    out = []
    for item in raw or []:
        entry = jsonable(dict(item))
        entry.setdefault("values", {})
        out.append(entry)
    return out


def pass_rate_result(
    info: RuleInfo,
    env: Env,
    failing: int,
    checked: int,
    sample: Sequence[Mapping[str, Any]] | None,
    what: str,
) -> RuleResult:
    """Verdict of a row-counting rule: its pass rate against the threshold."""
    rate = 1.0 if checked == 0 else 1.0 - failing / checked
    threshold = info.threshold if info.threshold is not None else 1.0
    # Compare counts, not rounded rates, so a rate exactly at the threshold passes.
    passed = failing <= (1.0 - threshold) * checked + 1e-9
    verb = ">=" if passed else "<"
    message = (
        f"{failing:,} of {checked:,} rows {what}; pass rate {rate:.2%} {verb} "
        f"threshold {threshold:.2%}"
    )
    if info.action == "quarantine" and failing:
        message += f"; {failing:,} quarantined"
    return info.result(
        env,
        metric=rate,
        passed=passed,
        failing_rows=failing,
        rows_checked=checked,
        sample=clean_sample(sample),
        message=message,
    )
