"""Compiled rules: each rule config becomes one object that knows its SQL fragments.

A row-level check contributes to the single scan over the staged table: optional select items
and joins for the ``base`` step (window functions, anti-join markers), one boolean ``fails``
expression and one ``reason`` expression (a string naming the rule and the offending values).
Every check may contribute aggregate items to the single aggregate query, and turns that
query's row into :class:`RuleResult` objects. Nothing here touches a connection.

SQL scopes: ``fails`` is evaluated over the ``base`` step (staged columns plus base items);
``reason`` and aggregates over the checked table (staged columns plus the kept ``__rh_*``
columns), which is why uniqueness keeps its "first seen at" column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from retailhub.quality.results import RuleResult, jsonable
from retailhub.quality.sqltext import (
    TYPE_ERRORS,
    assignments,
    ident,
    literal,
    type_error_in,
)

SAMPLE_SIZE = 5
_ORDER = "_source_file, _line"


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


class Check:
    """Base of every compiled rule."""

    info: RuleInfo

    def aggregates(self) -> list[str]:
        """``<expr> AS <alias>`` items for the one aggregate query over the checked table."""
        return []

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
        raise NotImplementedError


def sample_sql(condition: str, reason: str, columns: Sequence[str]) -> str:
    """Top-5 failing rows by (file, line) as a list of structs, evaluated for failing rows only.

    The CASE wrappers keep DuckDB from building the struct (and its reason string) for every row.
    """
    values = ", ".join(f"{ident(c)} := {ident(c)}" for c in columns)
    payload = f"struct_pack(file := _source_file, line := _line, reason := {reason}"
    payload += f', "values" := struct_pack({values}))' if values else ")"
    key = "struct_pack(f := _source_file, l := _line)"
    return (
        f"min_by(CASE WHEN {condition} THEN {payload} END, "
        f"CASE WHEN {condition} THEN {key} END, {SAMPLE_SIZE}) FILTER (WHERE {condition})"
    )


def clean_sample(raw: Any) -> list[dict[str, Any]]:
    out = []
    for item in raw or []:
        entry = jsonable(dict(item))
        entry.setdefault("values", {})
        out.append(entry)
    return out


def pass_rate_result(
    info: RuleInfo, env: Env, failing: int, checked: int, sample: Any, what: str
) -> RuleResult:
    """Verdict of a row-counting rule: pass rate against the threshold."""
    rate = 1.0 if checked == 0 else 1.0 - failing / checked
    threshold = info.threshold if info.threshold is not None else 1.0
    # Compare counts, not floats, so a rate exactly at the threshold passes.
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


# -- row-level --------------------------------------------------------------------------------


@dataclass
class RowCheck(Check):
    """A rule judged row by row; the failing rows may be quarantined."""

    info: RuleInfo
    index: int
    fails: str
    reason: str
    where: str | None = None
    what: str = "fail"
    sample_columns: list[str] = field(default_factory=list)
    base_items: list[str] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    #: ``<expr> AS <name>`` items kept in the checked table (evaluated after ``fails``).
    kept_items: list[str] = field(default_factory=list)
    #: User-written SQL to bind on its own, for a precise error: (what, text).
    user_sql: list[tuple[str, str]] = field(default_factory=list)

    @property
    def flag(self) -> str:
        return f"__rh_f{self.index}"

    @property
    def quarantines(self) -> bool:
        return self.info.action == "quarantine"

    def _alias(self, suffix: str) -> str:
        return f"__rh_f{self.index}_{suffix}"

    def aggregates(self) -> list[str]:
        items = [f"count(*) FILTER (WHERE {self.flag}) AS {self._alias('fail')}"]
        if self.where:
            items.append(
                f"count(*) FILTER (WHERE coalesce(({self.where}), false)) "
                f"AS {self._alias('checked')}"
            )
        items.append(
            f"{sample_sql(self.flag, self.reason, self.sample_columns)} AS {self._alias('sample')}"
        )
        return items

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
        checked = agg[self._alias("checked")] if self.where else env.total_rows
        return [
            pass_rate_result(
                self.info,
                env,
                int(agg[self._alias("fail")]),
                int(checked),
                agg[self._alias("sample")],
                self.what,
            )
        ]


def _guarded(core: str, where: str | None) -> str:
    guarded = f"coalesce(({core}), false)"
    return f"(coalesce(({where}), false) AND {guarded})" if where else guarded


def _prefix(info: RuleInfo) -> str:
    return literal(f"{info.name}: ")


def uniqueness_check(
    info: RuleInfo,
    index: int,
    columns: Sequence[str],
    star: bool,
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    """Later copies of a key fail; the first by (file, line) is kept.

    NULL equals NULL here (rows are grouped by PARTITION BY), so two rows with the same missing
    customer are duplicates, which is what "exact duplicate row" means.
    """
    window = f"__rh_w{index}"
    partition = [ident(c) for c in columns] + ([TYPE_ERRORS] if star else [])
    if where:
        partition.insert(0, f"coalesce(({where}), false)")
    first = "coalesce(_source_file, '?') || ':' || coalesce(cast(_line AS varchar), '?')"
    rn, first_seen, dup = f"__rh_rn{index}", f"__rh_first{index}", f"__rh_d{index}"
    if star:
        reason = f"{_prefix(info)} || 'duplicate of row at ' || {dup}"
    else:
        reason = (
            f"{_prefix(info)} || 'duplicate key (' || {assignments(columns, schema)} "
            f"|| ') first seen at ' || {dup}"
        )
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"{rn} > 1", where),
        reason=reason,
        where=where,
        what="repeat an earlier row" if star else "repeat an earlier key",
        sample_columns=list(columns),
        base_items=[
            f"row_number() OVER {window} AS {rn}",
            f"first_value({first}) OVER {window} AS {first_seen}",
        ],
        windows=[f"{window} AS (PARTITION BY {', '.join(partition)} ORDER BY {_ORDER})"],
        kept_items=[f"CASE WHEN __rh_f{index} THEN {first_seen} END AS {dup}"],
        user_sql=[("where filter", where)] if where else [],
    )


_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")


def referenced_columns(expression: str, schema: Mapping[str, str]) -> list[str]:
    """Schema columns an expression mentions, in order of first mention (literals ignored)."""
    text = _STRING_LITERAL.sub(" ", expression)
    found: list[tuple[int, str]] = []
    for column in schema:
        match = re.search(rf'(?<![\w"]){re.escape(column)}(?!\w)|"{re.escape(column)}"', text)
        if match:
            found.append((match.start(), column))
    return [c for _, c in sorted(found)]


def validity_check(
    info: RuleInfo, index: int, expression: str, where: str | None, schema: Mapping[str, str]
) -> RowCheck:
    """Rows where the expression is false fail; NULL passes, as in a SQL CHECK constraint."""
    columns = referenced_columns(expression, schema)
    detail = assignments(columns, schema) if columns else "'expression is false'"
    user_sql = [("expression", expression)] + ([("where filter", where)] if where else [])
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"NOT ({expression})", where),
        reason=f"{_prefix(info)} || {detail}",
        where=where,
        what="fail the expression",
        sample_columns=columns,
        user_sql=user_sql,
    )


def range_check(
    info: RuleInfo,
    index: int,
    column: str,
    low: object,
    high: object,
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    col = ident(column)
    tests, explain = [], []
    if low is not None:
        tests.append(f"{col} < {literal(low)}")
        explain.append(f"WHEN {col} < {literal(low)} THEN {literal(f' below min {low}')}")
    if high is not None:
        tests.append(f"{col} > {literal(high)}")
        explain.append(f"WHEN {col} > {literal(high)} THEN {literal(f' above max {high}')}")
    value = assignments([column], schema)
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"{col} IS NOT NULL AND ({' OR '.join(tests)})", where),
        reason=f"{_prefix(info)} || {value} || CASE {' '.join(explain)} ELSE '' END",
        where=where,
        what="fall outside the range",
        sample_columns=[column],
        user_sql=[("where filter", where)] if where else [],
    )


def accepted_values_check(
    info: RuleInfo,
    index: int,
    column: str,
    values: Sequence[object],
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    col = ident(column)
    accepted = ", ".join(literal(v) for v in values)
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"{col} IS NOT NULL AND {col} NOT IN ({accepted})", where),
        reason=f"{_prefix(info)} || {assignments([column], schema)} || ' is not an accepted value'",
        where=where,
        what="hold a value that is not accepted",
        sample_columns=[column],
        user_sql=[("where filter", where)] if where else [],
    )


def regex_check(
    info: RuleInfo,
    index: int,
    column: str,
    pattern: str,
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    col = ident(column)
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(
            f"{col} IS NOT NULL AND NOT regexp_matches(cast({col} AS varchar), {literal(pattern)})",
            where,
        ),
        reason=f"{_prefix(info)} || {assignments([column], schema)} || ' does not match'",
        where=where,
        what="do not match the pattern",
        sample_columns=[column],
        user_sql=[("where filter", where)] if where else [],
    )


def referential_check(
    info: RuleInfo,
    index: int,
    column: str,
    target: str,
    lookup_sql: str,
    key_expr: str,
    local_expr: str,
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    """Anti-join against the DISTINCT referenced keys (DISTINCT so the join cannot add rows)."""
    alias, key, missing = f"__rh_j{index}", f"__rh_k{index}", f"__rh_m{index}"
    join = (
        f"LEFT JOIN (SELECT DISTINCT {key_expr} AS {key} FROM {lookup_sql} "
        f"WHERE {key_expr} IS NOT NULL) AS {alias} ON {local_expr} = {alias}.{key}"
    )
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"{ident(column)} IS NOT NULL AND {missing}", where),
        reason=(
            f"{_prefix(info)} || {assignments([column], schema)} || "
            f"{literal(' not found in ' + target)}"
        ),
        where=where,
        what=f"have no match in {target}",
        sample_columns=[column],
        base_items=[f"({alias}.{key} IS NULL) AS {missing}"],
        joins=[join],
        user_sql=[("where filter", where)] if where else [],
    )


# -- dataset-level ------------------------------------------------------------------------------


@dataclass
class CompletenessCheck(Check):
    """Share of rows where the column is present.

    Missing means NULL, or blank for text columns. A value that was present but failed to parse
    is a type error, not a missing value, so it is not counted here (it is reported once, under
    ``type:<column>``).
    """

    info: RuleInfo
    index: int
    column: str
    is_text: bool

    def _missing(self) -> str:
        col = ident(self.column)
        absent = f"{col} IS NULL OR trim({col}) = ''" if self.is_text else f"{col} IS NULL"
        return f"(CASE WHEN {absent} THEN NOT ({type_error_in(self.column)}) ELSE false END)"

    def aggregates(self) -> list[str]:
        missing = self._missing()
        reason = literal(f"{self.info.name}: {self.column} is missing")
        alias = f"__rh_c{self.index}"
        return [
            f"count(*) FILTER (WHERE {missing}) AS {alias}_fail",
            f"{sample_sql(missing, reason, [self.column])} AS {alias}_sample",
        ]

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
        alias = f"__rh_c{self.index}"
        return [
            pass_rate_result(
                self.info,
                env,
                int(agg[f"{alias}_fail"]),
                env.total_rows,
                agg[f"{alias}_sample"],
                f"have no {self.column}",
            )
        ]


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _age_hours(now: datetime, then: datetime) -> float:
    return (_naive_utc(now) - _naive_utc(then)).total_seconds() / 3600.0


@dataclass
class FileFreshnessCheck(Check):
    """Every file landed this run was modified within ``max_age_hours`` of ``now``.

    metric: age in hours of the oldest landed file; failing_rows: stale files (named in sample).
    No landed file (an API source, or nothing new) cannot be stale: passed, metric 0.
    """

    info: RuleInfo
    max_age_hours: float

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
        ages = sorted(
            ((uri, ts, _age_hours(env.now, ts)) for uri, ts in env.file_times),
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
        if not ages:
            message = "no file landed this run; nothing to judge"
        else:
            message = (
                f"{len(stale)} of {len(ages)} landed files older than {self.max_age_hours:g} h; "
                f"oldest {oldest:.1f} h"
            )
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
    timestamps are taken as UTC. metric: age in hours of the newest value. failing_rows: 0 when
    fresh, else every non-NULL row (none of them is recent enough).
    """

    info: RuleInfo
    index: int
    column: str
    max_age_hours: float

    def aggregates(self) -> list[str]:
        col = ident(self.column)
        return [
            f"max({col}) AS __rh_t{self.index}_max",
            f"count({col}) AS __rh_t{self.index}_n",
        ]

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
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
        if isinstance(newest, date) and not isinstance(newest, datetime):
            newest = datetime.combine(newest, time()) + timedelta(days=1)
        age = _age_hours(env.now, newest)
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
    """Accepted rows within [min_rows, max_rows] and within max_change_pct of the previous run.

    metric: accepted rows. The change test is skipped when there is no previous run (or it had
    no rows): a first load cannot swing.
    """

    info: RuleInfo
    min_rows: int | None
    max_rows: int | None
    max_change_pct: float | None

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
        rows = env.accepted_rows
        problems, notes = [], [f"{rows:,} accepted rows"]
        if self.min_rows is not None and rows < self.min_rows:
            problems.append(f"fewer than min_rows {self.min_rows:,}")
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


@dataclass
class TypeErrorChecks(Check):
    """The implicit rule: rows whose ``_type_errors`` is not empty, one result per column.

    Results are named ``type:<column>``; messages whose prefix names no known column are
    reported as ``type:other``. With no type error at all, one passing ``type:*`` result keeps
    the check visible on the scorecard.
    """

    columns: list[str]
    severity: str
    threshold: float

    def _info(self, column: str | None, name: str) -> RuleInfo:
        return RuleInfo(name, "type", column, self.severity, "quarantine", self.threshold)

    def _other(self) -> str:
        known = ", ".join(literal(c) for c in self.columns) or "''"
        return (
            f"len(list_filter(coalesce({TYPE_ERRORS}, []), "
            f"lambda e: split_part(e, ':', 1) NOT IN ({known}))) > 0"
        )

    def _conditions(self) -> list[tuple[str, str | None, str]]:
        out: list[tuple[str, str | None, str]] = []
        for i, column in enumerate(self.columns):
            out.append((f"__rh_te{i}", column, type_error_in(column)))
        out.append(("__rh_te_other", None, self._other()))
        return out

    def aggregates(self) -> list[str]:
        items = []
        for alias, column, test in self._conditions():
            cond = f"(CASE WHEN len(coalesce({TYPE_ERRORS}, [])) > 0 THEN {test} ELSE false END)"
            if column is None:
                first = f"list_filter({TYPE_ERRORS}, lambda e: ({self._other_elem()}))[1]"
            else:
                first = (
                    f"list_filter({TYPE_ERRORS}, "
                    f"lambda e: starts_with(e, {literal(column + ':')}))[1]"
                )
            items.append(f"count(*) FILTER (WHERE {cond}) AS {alias}_fail")
            reason = f"'type:' || {first}"
            items.append(f"{sample_sql(cond, reason, [])} AS {alias}_sample")
        return items

    def _other_elem(self) -> str:
        known = ", ".join(literal(c) for c in self.columns) or "''"
        return f"split_part(e, ':', 1) NOT IN ({known})"

    def results(self, agg: Mapping[str, Any], env: Env) -> list[RuleResult]:
        out = []
        for alias, column, _ in self._conditions():
            failing = int(agg[f"{alias}_fail"])
            if failing:
                name = f"type:{column}" if column else "type:other"
                what = (
                    f"have a {column} that does not fit its type" if column else "have type errors"
                )
                out.append(
                    pass_rate_result(
                        self._info(column, name),
                        env,
                        failing,
                        env.total_rows,
                        agg[f"{alias}_sample"],
                        what,
                    )
                )
        if not out:
            out.append(
                pass_rate_result(
                    self._info(None, "type:*"),
                    env,
                    0,
                    env.total_rows,
                    [],
                    "have a value that does not fit its type",
                )
            )
        return out
