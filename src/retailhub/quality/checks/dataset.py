"""Dataset-level checks: completeness, freshness (files or a column) and volume.

They judge the batch as a whole and quarantine nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from retailhub.quality.checks.base import (
    SAMPLE_SIZE,
    Check,
    Env,
    RuleInfo,
    Samples,
    SampleSpec,
    pass_rate_result,
)
from retailhub.quality.results import RuleResult
from retailhub.quality.sqltext import TYPE_ERRORS, ident, literal, type_error_in


@dataclass
class CompletenessCheck(Check):
    """Share of rows where the column is present.

    Missing means NULL, or blank for text columns. A value that was present but failed to parse
    is a type error, not a missing value, so it is not counted here: it is reported once, under
    ``type:<column>``.
    """

    info: RuleInfo
    index: int
    column: str
    is_text: bool

    @property
    def flag(self) -> str:
        return f"__rh_c{self.index}"

    def scan_items(self) -> list[str]:
        col = ident(self.column)
        not_type_error = (
            f"CASE WHEN len(coalesce({TYPE_ERRORS}, [])) = 0 THEN true "
            f"ELSE NOT ({type_error_in(self.column)}) END"
        )
        # CASE, not OR: DuckDB then trims only the few values that could be blank.
        blank = f"WHEN {col} = '' THEN true WHEN starts_with({col}, ' ') THEN trim({col}) = '' "
        missing = (
            f"CASE WHEN {col} IS NULL THEN {not_type_error} "
            f"{blank if self.is_text else ''}ELSE false END"
        )
        return [f"{missing} AS {self.flag}"]

    def aggregates(self) -> list[str]:
        return [f"count(*) FILTER (WHERE {self.flag}) AS {self.flag}_fail"]

    def sample_specs(self) -> list[SampleSpec]:
        reason = literal(f"{self.info.name}: {self.column} is missing")
        return [SampleSpec(self.flag, self.flag, reason, (self.column,))]

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        failing = int(agg[f"{self.flag}_fail"])
        sample = samples.get(self.flag)
        what = f"have no {self.column}"
        return [pass_rate_result(self.info, env, failing, env.total_rows, sample, what)]


def naive_utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC; aware ones are converted to it."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def age_hours(now: datetime, then: datetime) -> float:
    return (naive_utc(now) - naive_utc(then)).total_seconds() / 3600.0


@dataclass
class FileFreshnessCheck(Check):
    """Every file landed this run was modified within ``max_age_hours`` of ``now``.

    metric: age in hours of the oldest landed file; failing_rows: the stale files, which the
    sample names. No landed file (an API source, or nothing new) cannot be stale: passed,
    metric 0, rows_checked 0.
    """

    info: RuleInfo
    max_age_hours: float

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        ages = sorted(
            ((uri, ts, age_hours(env.now, ts)) for uri, ts in env.file_times),
            key=lambda item: -item[2],
        )
        stale = [a for a in ages if a[2] > self.max_age_hours]
        oldest = ages[0][2] if ages else 0.0
        sample = [
            {
                "file": uri,
                "line": None,
                "reason": f"{self.info.name}: {uri} is {age:.1f} h old",
                "values": {"modified_at": ts.isoformat(), "age_hours": round(age, 2)},
            }
            for uri, ts, age in stale[:SAMPLE_SIZE]
        ]
        if ages:
            message = (
                f"{len(stale)} of {len(ages)} landed files older than {self.max_age_hours:g} h; "
                f"oldest {oldest:.1f} h"
            )
        else:
            message = "no file landed this run; nothing to judge"
        return [
            self.info.result(
                env,
                metric=round(oldest, 4),
                passed=not stale,
                failing_rows=len(stale),
                rows_checked=len(ages),
                sample=sample,
                message=message,
            )
        ]


@dataclass
class ColumnFreshnessCheck(Check):
    """The newest value of a date/timestamp column is within ``max_age_hours`` of ``now``.

    A DATE counts as the end of its day (a daily batch landing next morning is fresh). Naive
    timestamps are taken as UTC. metric: age in hours of the newest value; failing_rows: 0 when
    fresh, else every row with a value (not one of them is recent enough). A column without any
    value fails: freshness cannot be shown.
    """

    info: RuleInfo
    index: int
    column: str
    max_age_hours: float

    def scan_items(self) -> list[str]:
        return [f"{ident(self.column)} AS __rh_t{self.index}"]

    def aggregates(self) -> list[str]:
        col = f"__rh_t{self.index}"
        return [f"max({col}) AS {col}_max", f"count({col}) AS {col}_n"]

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        newest = agg[f"__rh_t{self.index}_max"]
        present = int(agg[f"__rh_t{self.index}_n"])
        if newest is None:
            return [
                self.info.result(
                    env,
                    metric=float("inf"),
                    passed=False,
                    failing_rows=0,
                    rows_checked=0,
                    message=f"{self.column} has no value; freshness cannot be shown",
                )
            ]
        if not isinstance(newest, datetime) and isinstance(newest, date):
            newest = datetime.combine(newest, time()) + timedelta(days=1)
        age = age_hours(env.now, newest)
        passed = age <= self.max_age_hours
        verb = "<=" if passed else ">"
        return [
            self.info.result(
                env,
                metric=round(age, 4),
                passed=passed,
                failing_rows=0 if passed else present,
                rows_checked=present,
                message=(
                    f"newest {self.column} {newest.isoformat()} is {age:.1f} h old "
                    f"{verb} {self.max_age_hours:g} h"
                ),
            )
        ]


@dataclass
class VolumeCheck(Check):
    """Accepted rows within [min_rows, max_rows] and within max_change_pct of the last run.

    metric: accepted rows. The change test is skipped when there is no previous run (or it had
    no rows): a first load cannot swing.
    """

    info: RuleInfo
    min_rows: int | None
    max_rows: int | None
    max_change_pct: float | None

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        rows = env.accepted_rows
        problems, notes = [], [f"{rows:,} accepted rows"]
        if self.min_rows is not None and rows < self.min_rows:
            problems.append(f"fewer than min_rows {self.min_rows:,}")
            if env.total_rows > rows:
                problems.append(f"{env.total_rows - rows:,} of {env.total_rows:,} quarantined")
            empty = [name for name, read in env.file_rows if read == 0]
            if empty:
                # A file holding only its header blocks every run until it is replaced:
                # it is never recorded as ingested while the gate refuses its batch.
                more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
                problems.append(
                    f"new file(s) with no data rows: {', '.join(empty[:3])}{more} (replace "
                    "them with the full export, or remove them)"
                )
        if self.max_rows is not None and rows > self.max_rows:
            problems.append(f"more than max_rows {self.max_rows:,}")
        if self.max_change_pct is not None:
            previous = env.previous_rows
            if previous:
                change = abs(rows - previous) / previous * 100.0
                notes.append(f"{change:.1f}% change from {previous:,} in the previous run")
                if change > self.max_change_pct:
                    problems.append(f"change above max_change_pct {self.max_change_pct:g}%")
            else:
                notes.append("no previous run to compare with")
        return [
            self.info.result(
                env,
                metric=float(rows),
                passed=not problems,
                failing_rows=0,
                rows_checked=rows,
                message="; ".join(notes + problems),
            )
        ]
