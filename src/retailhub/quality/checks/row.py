"""Row-level checks: uniqueness, validity, range, accepted_values, regex, referential.

Each becomes one boolean ``__rh_f<i>`` column of the scan and a reason string naming the rule
and the offending values. NULL passes every row-level kind (as in a SQL CHECK constraint or a
foreign key): a missing value is completeness' business, so one defect is counted once.

SQL scopes: ``fails`` is evaluated over the ``base`` step (staged columns plus ``base_items``);
``reason`` over the staged columns plus the ``__rh_*`` columns the scan keeps (in the scan
itself, and later for samples, where the checked table is joined back to the staged rows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
from retailhub.quality.sqltext import TYPE_ERRORS, assignments, ident, literal

ORDER = "_source_file, _line"
_FIRST_SEEN = "coalesce(_source_file, '?') || ':' || coalesce(cast(_line AS varchar), '?')"


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
    #: ``name AS (...)`` common table expressions the scan needs (uniqueness).
    ctes: list[str] = field(default_factory=list)
    base_items: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    #: ``<expr> AS <name>`` kept in the checked table, evaluated after the flags.
    kept_items: list[str] = field(default_factory=list)
    #: User-written SQL bound on its own for a precise error: (what, text).
    user_sql: list[tuple[str, str]] = field(default_factory=list)

    @property
    def flag(self) -> str:
        return f"__rh_f{self.index}"

    @property
    def quarantines(self) -> bool:
        return self.info.action == "quarantine"

    @property
    def self_contained(self) -> bool:
        """True when ``fails`` and ``reason`` bind against the staged table alone."""
        return not (self.ctes or self.joins or self.base_items)

    def scan_items(self) -> list[str]:
        return list(self.kept_items)

    @property
    def where_flag(self) -> str:
        """Scan column holding the ``where`` filter (rows this rule checks)."""
        return f"__rh_w{self.index}"

    def aggregates(self) -> list[str]:
        items = [f"count(*) FILTER (WHERE {self.flag}) AS {self.flag}_fail"]
        if self.where:
            items.append(f"count(*) FILTER (WHERE {self.where_flag}) AS {self.flag}_checked")
        return items

    def sample_specs(self) -> list[SampleSpec]:
        return [SampleSpec(self.flag, self.flag, self.reason, tuple(self.sample_columns))]

    def results(self, agg: Mapping[str, Any], samples: Samples, env: Env) -> list[RuleResult]:
        checked = agg[f"{self.flag}_checked"] if self.where else env.total_rows
        failing = int(agg[f"{self.flag}_fail"])
        sample = samples.get(self.flag)
        return [pass_rate_result(self.info, env, failing, int(checked), sample, self.what)]


def _guarded(core: str) -> str:
    """``core`` as a non-NULL boolean.

    A ``where`` filter is not applied here: the compiler evaluates it once per row into
    ``__rh_w<i>`` and ANDs it with ``fails``.
    """
    return f"coalesce(({core}), false)"


def _prefix(info: RuleInfo) -> str:
    return literal(f"{info.name}: ")


def _where_sql(where: str | None) -> list[tuple[str, str]]:
    return [("where filter", where)] if where else []


def uniqueness_check(
    info: RuleInfo,
    index: int,
    columns: Sequence[str],
    star: bool,
    where: str | None,
    schema: Mapping[str, str],
    *,
    staged: str,
    history: tuple[str, Mapping[str, str]] | None = None,
) -> RowCheck:
    """Later copies of a key fail; the first by (file, line) is kept and named in the reason.

    A key is unique over the whole dataset, not just this run's batch: with ``history`` (the
    relation of the rows accepted by earlier runs, and its column types) a batch row whose
    key was published before fails too, naming the earlier file and line. Otherwise a
    corrected re-export repeating Superstore's Row IDs would pass the gate and break the star
    schema's key instead. A column the history lacks (a layout that gained one) counts as
    NULL there, as it will once published.

    NULL equals NULL here (as in GROUP BY), so two rows with the same missing customer are
    duplicates, which is what "exact duplicate row" means; ``*`` also compares ``_type_errors``
    so two different unparseable values are not taken for copies of each other (published rows
    carry none: they compare as an empty list).

    Why not one wide window: ``row_number() OVER (PARTITION BY <all columns> ...)`` sorts every
    row and all its columns by every key column (23 s for 10M rows on 2 cores). Instead the
    64-bit hashes of the key are sorted and a hash equal to its predecessor is a repeated one
    (sorting 10M hashes: 1.2 CPU-s, against 1.7-2.3 for counting them per hash in a window or a
    group, which holds ~10M groups); the exact window then runs on the few rows whose hash
    repeats: the result stays exact, a hash collision only adds a candidate. Rows are matched
    back by the staged table's ``rowid``.
    """
    key_names = [ident(c) for c in columns] + ([TYPE_ERRORS] if star else [])
    keys = ", ".join(key_names)
    only = f" WHERE coalesce(({where}), false)" if where else ""
    and_only = f" AND coalesce(({where}), false)" if where else ""
    hashes, dups = f"__rh_h{index}", f"__rh_u{index}"
    repeated = f"hash({keys}) IN (SELECT h FROM {hashes})"
    candidates = f"coalesce(({where}), false) AND {repeated}" if where else repeated
    if star:
        reason = f"{_prefix(info)} || 'duplicate of row at ' || __rh_d{index}"
    else:
        reason = (
            f"{_prefix(info)} || 'duplicate key (' || {assignments(columns, schema)} "
            f"|| ') first seen at ' || __rh_d{index}"
        )
    in_batch = (
        f"SELECT h FROM (SELECT h, lag(h) OVER (ORDER BY h) AS p "
        f"FROM (SELECT hash({keys}) AS h FROM {staged}{only}) AS __rh_k) AS __rh_l "
        "WHERE h = p"
    )
    rows = (
        f"SELECT rowid AS rid, {keys}, 1 AS __rh_new, {ORDER}, {_FIRST_SEEN} AS __rh_at "
        f"FROM {staged} WHERE {candidates}"
    )
    if history is not None:
        published = _as_batch(history[0], history[1], schema, columns)
        in_history = f"SELECT {keys}, {ORDER} FROM {published} AS __rh_p WHERE true{and_only}"
        in_batch = (
            f"{in_batch} UNION SELECT hash({keys}) FROM ({in_history}) AS __rh_o "
            f"WHERE hash({keys}) IN (SELECT hash({keys}) FROM {staged}{only})"
        )
        rows += (
            f" UNION ALL SELECT NULL, {keys}, 0, {ORDER}, "
            f"{_FIRST_SEEN} || ' (published by an earlier run)' FROM ({in_history}) AS __rh_o "
            f"WHERE hash({keys}) IN (SELECT h FROM {hashes})"
        )
    return RowCheck(
        info=info,
        index=index,
        fails=f"__rh_dup{index}",
        reason=reason,
        where=where,
        what="repeat an earlier row" if star else "repeat an earlier key",
        sample_columns=list(columns),
        ctes=[
            f"{hashes} AS ({in_batch})",
            f"{dups} AS (SELECT rid, first_seen FROM (SELECT rid, "
            f"row_number() OVER w AS rn, first_value(__rh_at) OVER w AS first_seen "
            f"FROM ({rows}) AS __rh_c "
            f"WINDOW w AS (PARTITION BY {keys} ORDER BY __rh_new, {ORDER})) "
            "WHERE rn > 1 AND rid IS NOT NULL)",
        ],
        joins=[f"LEFT JOIN {dups} ON __rh_s.rowid = {dups}.rid"],
        base_items=[
            f"({dups}.rid IS NOT NULL) AS __rh_dup{index}",
            f"{dups}.first_seen AS __rh_first{index}",
        ],
        kept_items=[f"CASE WHEN __rh_f{index} THEN __rh_first{index} END AS __rh_d{index}"],
        user_sql=_where_sql(where),
    )


def _as_batch(
    relation: str, types: Mapping[str, str], schema: Mapping[str, str], keys: Sequence[str]
) -> str:
    """The published rows of ``relation`` shaped like the staged batch (``schema``), so that
    the rule's ``where`` and key bind on them as on the batch: a column they lack is NULL (a
    layout that gained one), one of another type is cast, and they carry no type errors. A
    row whose key value does not cast cannot equal any batch key, so it is left out."""
    items, unequal = [], []
    for column, type_ in schema.items():
        name = ident(column)
        if column == TYPE_ERRORS:
            items.append(f"[]::VARCHAR[] AS {name}")
        elif column not in types:
            items.append(f"CAST(NULL AS {type_}) AS {name}")
        elif types[column] == type_:
            items.append(name)
        else:
            items.append(f"TRY_CAST({name} AS {type_}) AS {name}")
            if column in keys:
                unequal.append(f"({name} IS NULL OR TRY_CAST({name} AS {type_}) IS NOT NULL)")
    where = f" WHERE {' AND '.join(unequal)}" if unequal else ""
    return f"(SELECT {', '.join(items)} FROM {relation}{where})"


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
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"NOT ({expression})"),
        reason=f"{_prefix(info)} || {detail}",
        where=where,
        what="fail the expression",
        sample_columns=columns,
        user_sql=[("expression", expression), *_where_sql(where)],
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
    return _column_check(
        info,
        index,
        column,
        failing=f"({' OR '.join(tests)})",
        reason_tail=f"CASE {' '.join(explain)} ELSE '' END",
        what="fall outside the range",
        where=where,
        schema=schema,
    )


def accepted_values_check(
    info: RuleInfo,
    index: int,
    column: str,
    values: Sequence[object],
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    accepted = ", ".join(literal(v) for v in values)
    return _column_check(
        info,
        index,
        column,
        failing=f"{ident(column)} NOT IN ({accepted})",
        reason_tail="' is not accepted'",
        what="hold a value that is not accepted",
        where=where,
        schema=schema,
    )


def regex_check(
    info: RuleInfo,
    index: int,
    column: str,
    pattern: str,
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    """``regexp_matches`` (RE2, searches anywhere): anchor the pattern to match whole values."""
    return _column_check(
        info,
        index,
        column,
        failing=f"NOT regexp_matches(cast({ident(column)} AS varchar), {literal(pattern)})",
        reason_tail="' does not match'",
        what="do not match the pattern",
        where=where,
        schema=schema,
    )


def _column_check(
    info: RuleInfo,
    index: int,
    column: str,
    *,
    failing: str,
    reason_tail: str,
    what: str,
    where: str | None,
    schema: Mapping[str, str],
) -> RowCheck:
    """A rule on one column's values: a non-NULL value for which ``failing`` holds fails the
    row (NULLs are completeness's business), and the reason is the value + ``reason_tail``."""
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"{ident(column)} IS NOT NULL AND {failing}"),
        reason=f"{_prefix(info)} || {assignments([column], schema)} || {reason_tail}",
        where=where,
        what=what,
        sample_columns=[column],
        user_sql=_where_sql(where),
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
    """LEFT anti-join against the DISTINCT referenced keys (DISTINCT: the join adds no rows)."""
    alias, key, missing = f"__rh_j{index}", f"__rh_k{index}", f"__rh_m{index}"
    join = (
        f"LEFT JOIN (SELECT DISTINCT {key_expr} AS {key} FROM {lookup_sql} "
        f"WHERE {key_expr} IS NOT NULL) AS {alias} ON {local_expr} = {alias}.{key}"
    )
    return RowCheck(
        info=info,
        index=index,
        fails=_guarded(f"{ident(column)} IS NOT NULL AND {missing}"),
        reason=(
            f"{_prefix(info)} || {assignments([column], schema)} || "
            f"{literal(' not found in ' + target)}"
        ),
        where=where,
        what=f"have no match in {target}",
        sample_columns=[column],
        base_items=[f"({alias}.{key} IS NULL) AS {missing}"],
        joins=[join],
        user_sql=_where_sql(where),
    )
