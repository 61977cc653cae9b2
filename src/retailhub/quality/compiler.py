"""Rule configs -> SQL: one scan statement, one aggregate query, two split statements.

Every rule of a dataset is parsed once into a check (see :mod:`retailhub.quality.checks`), and
the checks are stitched into:

1. **one scan** of the staged table (``CREATE TEMP TABLE checked AS ...``) that evaluates every
   row-level rule at once: window functions for uniqueness, LEFT anti-joins for referential
   rules, a boolean ``__rh_f<i>`` per rule, a quarantine flag and the ``reasons VARCHAR[]`` list
   (``list_filter`` over ``CASE WHEN fails THEN reason END``);
2. **one aggregate query** over the checked table for every count, sample and dataset-level
   metric (completeness, column freshness, type errors);
3. the **split** into the accepted and quarantine tables.

:mod:`retailhub.quality.binding` checks all of it against the real schema before any data moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from retailhub.config.quality import (
    AcceptedValuesRule,
    CompletenessRule,
    DatasetQualityConfig,
    FreshnessRule,
    RangeRule,
    ReferentialRule,
    RegexRule,
    UniquenessRule,
    ValidityRule,
    VolumeRule,
)
from retailhub.errors import ConfigError
from retailhub.quality.checks import (
    SAMPLE_SIZE,
    Check,
    ColumnFreshnessCheck,
    CompletenessCheck,
    FileFreshnessCheck,
    RowCheck,
    RuleInfo,
    SampleSpec,
    TypeErrorChecks,
    VolumeCheck,
    accepted_values_check,
    range_check,
    referential_check,
    regex_check,
    uniqueness_check,
    validity_check,
)
from retailhub.quality.sqltext import (
    TYPE_ERRORS,
    data_columns,
    ident,
    is_temporal,
    is_text,
    literal,
)

REQUIRED_COLUMNS = ("_source_file", "_line", TYPE_ERRORS)
QUARANTINE_FLAG = "__rh_q"
ROW_ID = "__rh_rid"


@dataclass(frozen=True)
class Reference:
    """A relation holding a referenced dataset's accepted rows, and its column types."""

    relation: str
    schema: Mapping[str, str]


@dataclass
class CompiledQuality:
    """The SQL of one dataset's quality run, built once and executed by the gate.

    The checked table is narrow: the staged ``rowid`` (``__rh_rid``), one boolean per rule, the
    quarantine flag and ``reasons``. The split joins it back to the staged rows by ``rowid``,
    which is cheaper than carrying every staged column through the scan (the write of a wide
    copy cost more than all the rules together at 10M rows).
    """

    dataset: str
    schema: dict[str, str]
    checks: list[Check]
    row_checks: list[RowCheck]
    regex_patterns: list[tuple[str, str]] = field(default_factory=list)
    #: (rule, column type, config values) that must cast to the column's type.
    literal_casts: list[tuple[str, str, list[object]]] = field(default_factory=list)

    # -- the one scan -------------------------------------------------------------------------
    def scan_select(self, staged: str) -> str:
        """SELECT of ``__rh_rid``, rule flags, kept helper columns, ``__rh_q`` and ``reasons``."""
        ctes = [c for check in self.row_checks for c in check.ctes]
        base_items = ["__rh_s.*", f"__rh_s.rowid AS {ROW_ID}"]
        base_items += [i for c in self.row_checks for i in c.base_items]
        base_items += [
            f"coalesce(({c.where}), false) AS {c.where_flag}" for c in self.row_checks if c.where
        ]
        joins = [j for c in self.row_checks for j in c.joins]
        flags = [
            f"({c.where_flag} AND {c.fails}) AS {c.flag}" if c.where else f"{c.fails} AS {c.flag}"
            for c in self.row_checks
        ]
        kept = [i for c in self.checks for i in c.scan_items()]
        quarantine = " OR ".join(
            [f"len(coalesce({TYPE_ERRORS}, [])) > 0"]
            + [c.flag for c in self.row_checks if c.quarantines]
        )
        reason_items = ", ".join(f"CASE WHEN {c.flag} THEN {c.reason} END" for c in self.row_checks)
        rule_reasons = (
            f"list_filter([{reason_items}], lambda r: r IS NOT NULL)"
            if reason_items
            else "[]::VARCHAR[]"
        )
        # Every reason of a quarantined row, metric-only rules included; NULL for accepted rows.
        reasons = (
            f"CASE WHEN {QUARANTINE_FLAG} THEN list_concat("
            f"list_transform(coalesce({TYPE_ERRORS}, []), lambda e: 'type:' || e), "
            f"{rule_reasons}) END"
        )
        out_columns = (
            [ROW_ID]
            + [c.flag for c in self.row_checks]
            + [c.where_flag for c in self.row_checks if c.where]
            + [item.rsplit(" AS ", 1)[1] for item in kept]
            + [QUARANTINE_FLAG]
        )
        join_clause = "".join(f"\n  {j}" for j in joins)
        flagged = ", ".join(["*", *flags])
        kept_sql = ", ".join(["*", *kept, f"({quarantine}) AS {QUARANTINE_FLAG}"])
        steps = [
            *ctes,
            f"__rh_base AS (\n  SELECT {', '.join(base_items)}\n  FROM {staged} AS __rh_s"
            f"{join_clause}\n)",
            f"__rh_flagged AS (SELECT {flagged} FROM __rh_base)",
            f"__rh_kept AS (SELECT {kept_sql} FROM __rh_flagged)",
        ]
        return (
            "WITH " + ",\n".join(steps) + "\n"
            f"SELECT {', '.join(out_columns)},\n  {reasons} AS reasons\nFROM __rh_kept"
        )

    def scan_sql(self, staged: str, checked: str) -> str:
        return f"CREATE TEMP TABLE {checked} AS\n{self.scan_select(staged)}"

    # -- the one aggregate --------------------------------------------------------------------
    def aggregate_sql(self, checked: str) -> str:
        items = [
            "count(*) AS __rh_total",
            f"count(*) FILTER (WHERE NOT {QUARANTINE_FLAG}) AS __rh_accepted",
        ]
        items += [item for check in self.checks for item in check.aggregates()]
        return "SELECT\n  " + ",\n  ".join(items) + f"\nFROM {checked}"

    # -- the samples -----------------------------------------------------------------------
    @property
    def sample_specs(self) -> list[SampleSpec]:
        return [spec for check in self.checks for spec in check.sample_specs()]

    def sample_rows_sql(self, checked: str, keys: set[str]) -> str | None:
        """(key, rowid) of the first failing rows of each check in ``keys``, in staged order."""
        parts = [
            f"(SELECT {literal(spec.key)} AS key, {ROW_ID} AS rid FROM {checked} "
            f"WHERE {spec.condition} ORDER BY {ROW_ID} LIMIT {SAMPLE_SIZE})"
            for spec in self.sample_specs
            if spec.key in keys
        ]
        return "\nUNION ALL\n".join(parts) if parts else None

    def sample_values_sql(self, staged: str, checked: str, picks: list[tuple[str, int]]) -> str:
        """File, line, reason and values (JSON) of the picked rows, joined back to staged."""
        specs = {spec.key: spec for spec in self.sample_specs}
        used = [specs[k] for k in dict.fromkeys(k for k, _ in picks)]
        reason = " ".join(f"WHEN {literal(sp.key)} THEN {sp.reason}" for sp in used)
        values = " ".join(
            f"WHEN {literal(sp.key)} THEN CAST({_values_json(sp.columns)} AS VARCHAR)"
            for sp in used
        )
        rows = ", ".join(f"({literal(k)}, {int(r)})" for k, r in picks)
        return (
            f"SELECT __rh_p.key, _source_file, _line, CASE __rh_p.key {reason} END, "
            f"CASE __rh_p.key {values} END "
            f"FROM (VALUES {rows}) AS __rh_p(key, rid) "
            f"JOIN {staged} AS __rh_s ON __rh_s.rowid = __rh_p.rid "
            f"JOIN {checked} AS __rh_c ON __rh_c.{ROW_ID} = __rh_p.rid"
        )

    # -- the split ----------------------------------------------------------------------------
    @property
    def output_columns(self) -> list[str]:
        """Columns of the accepted table: the staged ones minus ``_type_errors``."""
        return [c for c in self.schema if c != TYPE_ERRORS]

    def accepted_sql(self, staged: str, checked: str, accepted: str) -> str:
        cols = ", ".join(f"__rh_s.{ident(c)}" for c in self.output_columns)
        return (
            f"CREATE OR REPLACE TABLE {accepted} AS SELECT {cols} FROM {staged} AS __rh_s "
            f"ANTI JOIN (SELECT {ROW_ID} FROM {checked} WHERE {QUARANTINE_FLAG}) AS __rh_q "
            f"ON __rh_s.rowid = __rh_q.{ROW_ID}"
        )

    def accept_in_place_sql(self, staged: str, checked: str) -> list[str]:
        """Turn ``staged`` itself into the accepted table: quarantined rows out, no copy."""
        return [
            f"DELETE FROM {staged} WHERE rowid IN "
            f"(SELECT {ROW_ID} FROM {checked} WHERE {QUARANTINE_FLAG})",
            f"ALTER TABLE {staged} DROP COLUMN {ident(TYPE_ERRORS)}",
        ]

    def quarantine_sql(
        self, staged: str, checked: str, quarantine: str, run_id: str, at: datetime
    ) -> str:
        cols = ", ".join(f"__rh_s.{ident(c)}" for c in self.output_columns)
        return (
            f"CREATE OR REPLACE TABLE {quarantine} AS "
            f"SELECT {cols}, CAST({literal(run_id)} AS VARCHAR) AS _run_id, __rh_q.reasons, "
            f"CAST({literal(at.isoformat(sep=' '))} AS TIMESTAMP) AS quarantined_at "
            f"FROM {staged} AS __rh_s JOIN (SELECT {ROW_ID}, reasons FROM {checked} "
            f"WHERE {QUARANTINE_FLAG}) AS __rh_q ON __rh_s.rowid = __rh_q.{ROW_ID}"
        )


def _values_json(columns: tuple[str, ...]) -> str:
    if not columns:
        return "'{}'"
    return "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {ident(c)}" for c in columns) + "))"


def fail(dataset: str, rule: str | None, problem: str) -> ConfigError:
    where = f"quality.datasets.{dataset}" + (f": rule '{rule}'" if rule else "")
    return ConfigError(
        f"{where}: {problem}", key=f"quality.datasets.{dataset}", dataset=dataset, rule=rule
    )


def compile_quality(
    dataset: str,
    config: DatasetQualityConfig,
    schema: Mapping[str, str],
    *,
    references: Mapping[str, Reference],
    staged: str,
    history: Reference | None = None,
) -> CompiledQuality:
    """Parse every rule of ``dataset`` once into checks; raise ConfigError on a wrong column.

    ``references`` maps each dataset a referential rule names to the relation holding its
    accepted rows. A rule referencing ``dataset`` itself also looks in ``staged`` (this batch).
    ``history`` is the relation of ``dataset``'s rows accepted by earlier runs: uniqueness
    rules with ``across_runs`` also fail a batch row whose key is already there.
    """
    schema = dict(schema)
    missing = [c for c in REQUIRED_COLUMNS if c not in schema]
    if missing:
        raise fail(dataset, None, f"the staged table lacks the columns {', '.join(missing)}")
    columns = data_columns(schema)

    def need(rule: str, column: str) -> str:
        if column not in columns:
            raise fail(
                dataset,
                rule,
                f"column '{column}' is not a column of {dataset} (columns: {', '.join(columns)})",
            )
        return column

    checks: list[Check] = []
    row_checks: list[RowCheck] = []
    patterns: list[tuple[str, str]] = []
    casts: list[tuple[str, str, list[object]]] = []
    for index, rule in enumerate(config.rules):
        name = rule.rule_name
        info = RuleInfo(
            name=name,
            kind=rule.kind,
            column=getattr(rule, "column", None),
            severity=rule.severity,
            action=rule.action,
            threshold=config.threshold_for(rule),
        )
        where = getattr(rule, "where", None)
        check: Check
        if isinstance(rule, CompletenessRule):
            need(name, rule.column)
            check = CompletenessCheck(info, index, rule.column, is_text(schema[rule.column]))
        elif isinstance(rule, UniquenessRule):
            star = rule.columns == "*"
            keys = columns if star else [need(name, c) for c in rule.columns]
            info.column = None if star else ", ".join(keys)
            check = uniqueness_check(
                info,
                index,
                keys,
                star,
                where,
                schema,
                staged=staged,
                history=(history.relation, history.schema)
                if history and rule.across_runs
                else None,
            )
        elif isinstance(rule, ValidityRule):
            check = validity_check(info, index, rule.expression, where, schema)
        elif isinstance(rule, RangeRule):
            need(name, rule.column)
            bounds = [v for v in (rule.min, rule.max) if v is not None]
            casts.append((name, schema[rule.column], bounds))
            check = range_check(info, index, rule.column, rule.min, rule.max, where, schema)
        elif isinstance(rule, AcceptedValuesRule):
            need(name, rule.column)
            casts.append((name, schema[rule.column], list(rule.values)))
            check = accepted_values_check(info, index, rule.column, rule.values, where, schema)
        elif isinstance(rule, RegexRule):
            need(name, rule.column)
            patterns.append((name, rule.pattern))
            check = regex_check(info, index, rule.column, rule.pattern, where, schema)
        elif isinstance(rule, ReferentialRule):
            need(name, rule.column)
            check = _referential(dataset, rule, info, index, where, schema, references, staged)
        elif isinstance(rule, FreshnessRule):
            info.threshold = config.max_age_for(rule)
            if rule.on == "column":
                column = need(name, rule.column or "")
                if not is_temporal(schema[column]):
                    raise fail(
                        dataset,
                        name,
                        f"freshness column '{column}' is {schema[column]}, not a date/timestamp",
                    )
                check = ColumnFreshnessCheck(info, index, column, info.threshold)
            else:
                check = FileFreshnessCheck(info, info.threshold)
        elif isinstance(rule, VolumeRule):
            info.threshold = float(rule.min_rows) if rule.min_rows is not None else None
            check = VolumeCheck(info, rule.min_rows, rule.max_rows, rule.max_change_pct)
        else:  # pragma: no cover - the config union is closed
            raise fail(dataset, name, f"unknown rule kind {rule.kind!r}")
        checks.append(check)
        if isinstance(check, RowCheck):
            row_checks.append(check)
    types = TypeErrorChecks(columns, config.type_errors.severity, config.type_error_threshold)
    return CompiledQuality(dataset, schema, [types, *checks], row_checks, patterns, casts)


def _referential(
    dataset: str,
    rule: ReferentialRule,
    info: RuleInfo,
    index: int,
    where: str | None,
    schema: Mapping[str, str],
    references: Mapping[str, Reference],
    staged: str,
) -> RowCheck:
    target = rule.references
    ref = references.get(target.dataset)
    self_ref = target.dataset == dataset
    if ref is None and not self_ref:
        raise fail(
            dataset,
            info.name,
            f"references dataset '{target.dataset}', but no table of it was provided "
            f"(known: {', '.join(sorted(references)) or 'none'})",
        )
    ref_schema = ref.schema if ref is not None else schema
    if target.column not in ref_schema:
        raise fail(
            dataset,
            info.name,
            f"referenced column '{target.column}' is not a column of {target.dataset} "
            f"(columns: {', '.join(c for c in ref_schema if not c.startswith('_'))})",
        )
    key = ident(target.column)
    local = f"__rh_s.{ident(rule.column)}"
    if ref_schema[target.column] != schema[rule.column]:
        # Compare as text rather than fail on a harmless type difference (BIGINT vs VARCHAR ids).
        key, local = f"CAST({key} AS VARCHAR)", f"CAST({local} AS VARCHAR)"
    parts = []
    if ref is not None:
        parts.append(f"SELECT {ident(target.column)} FROM {ref.relation}")
    if self_ref:
        parts.append(f"SELECT {ident(target.column)} FROM {staged}")
    lookup = "(" + " UNION ALL ".join(parts) + ")"
    return referential_check(
        info,
        index,
        rule.column,
        f"{target.dataset}.{target.column}",
        lookup,
        key,
        local,
        where,
        schema,
    )
