"""The implicit, always-on type check: rows whose ``_type_errors`` list is not empty.

Contract with the staging step: each ``_type_errors`` element reads ``<column>: <message>``
(e.g. ``quantity: could not convert 'x' to INTEGER``). The rows are always quarantined with
``type:<element>`` reasons; the results are broken down per column as ``type:<column>``.
Messages whose prefix names no canonical column count under ``type:other``. With no type error
at all, one passing ``type:*`` result keeps the check visible on the scorecard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from retailhub.quality.checks.base import (
    Check,
    Env,
    RuleInfo,
    Samples,
    SampleSpec,
    pass_rate_result,
)
from retailhub.quality.results import RuleResult
from retailhub.quality.sqltext import TYPE_ERRORS, literal

#: Scan column: the column names the row's type errors are about; NULL for clean rows.
ERROR_COLUMNS = "__rh_tec"


@dataclass
class TypeErrorChecks(Check):
    columns: list[str]
    severity: str
    threshold: float

    def _info(self, column: str | None, name: str) -> RuleInfo:
        return RuleInfo(name, "type", column, self.severity, "quarantine", self.threshold)

    def _known(self) -> str:
        return ", ".join(literal(c) for c in self.columns) or "''"

    def _conditions(self) -> list[tuple[str, str | None, str, str]]:
        """(alias, column, condition over the checked table, first matching message)."""
        out = []
        for i, column in enumerate(self.columns):
            prefix = literal(column + ":")
            out.append(
                (
                    f"__rh_te{i}",
                    column,
                    f"list_contains({ERROR_COLUMNS}, {literal(column)})",
                    f"list_filter({TYPE_ERRORS}, lambda e: starts_with(e, {prefix}))[1]",
                )
            )
        unknown = f"split_part(e, ':', 1) NOT IN ({self._known()})"
        out.append(
            (
                "__rh_te_other",
                None,
                f"len(list_filter({ERROR_COLUMNS}, lambda c: c NOT IN ({self._known()}))) > 0",
                f"list_filter({TYPE_ERRORS}, lambda e: {unknown})[1]",
            )
        )
        return out

    def scan_items(self) -> list[str]:
        return [
            f"CASE WHEN len(coalesce({TYPE_ERRORS}, [])) > 0 THEN "
            f"list_transform({TYPE_ERRORS}, lambda e: split_part(e, ':', 1)) END AS {ERROR_COLUMNS}"
        ]

    def aggregates(self) -> list[str]:
        return [
            f"count(*) FILTER (WHERE {cond}) AS {alias}_fail"
            for alias, _, cond, _ in self._conditions()
        ]

    def sample_specs(self) -> list[SampleSpec]:
        return [
            SampleSpec(alias, cond, f"'type:' || {first}", ())
            for alias, _, cond, first in self._conditions()
        ]

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        out = []
        for alias, column, _, _ in self._conditions():
            failing = int(agg[f"{alias}_fail"])
            if not failing:
                continue
            name = f"type:{column}" if column else "type:other"
            what = (
                f"hold a value of {column} that does not fit its type"
                if column
                else "have type errors"
            )
            sample = samples.get(alias)
            info = self._info(column, name)
            out.append(pass_rate_result(info, env, failing, env.total_rows, sample, what))
        if not out:
            what = "hold a value that does not fit its type"
            out.append(
                pass_rate_result(self._info(None, "type:*"), env, 0, env.total_rows, [], what)
            )
        return out
