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

:func:`bind_rules` binds all of it with ``DESCRIBE`` (which plans but reads no row), so a bad
column, expression, bound or pattern fails as a :class:`ConfigError` naming the dataset, the rule
and the text before any data moves.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

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


@dataclass(frozen=True)
class Reference:
    """A relation holding a referenced dataset's accepted rows, and its column types."""

    relation: str
    schema: Mapping[str, str]


@dataclass
class CompiledQuality:
    """The SQL of one dataset's quality run, built once and executed by the gate."""

    dataset: str
    schema: dict[str, str]
    checks: list[Check]
    row_checks: list[RowCheck]
    regex_patterns: list[tuple[str, str]] = field(default_factory=list)

    # -- the one scan -------------------------------------------------------------------------
    def scan_select(self, staged: str) -> str:
        """SELECT producing staged columns + rule flags + quarantine flag + ``reasons``."""
        ctes = [c for check in self.row_checks for c in check.ctes]
        base_items = ["__rh_s.*"] + [i for c in self.row_checks for i in c.base_items]
        joins = [j for c in self.row_checks for j in c.joins]
        windows = [w for c in self.row_checks for w in c.windows]
        flags = [f"{c.fails} AS {c.flag}" for c in self.row_checks]
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
        reasons = (
            f"CASE WHEN {QUARANTINE_FLAG} THEN list_concat("
            f"list_transform(coalesce({TYPE_ERRORS}, []), lambda e: 'type:' || e), "
            f"{rule_reasons}) ELSE []::VARCHAR[] END"
        )
        out_columns = (
            [ident(c) for c in self.schema]
            + [c.flag for c in self.row_checks]
            + [item.rsplit(" AS ", 1)[1] for item in kept]
            + [QUARANTINE_FLAG]
        )
        window_clause = f"\n  WINDOW {', '.join(windows)}" if windows else ""
        join_clause = "".join(f"\n  {j}" for j in joins)
        flagged = ", ".join(["*", *flags])
        kept_sql = ", ".join(["*", *kept, f"({quarantine}) AS {QUARANTINE_FLAG}"])
        steps = [
            *ctes,
            f"__rh_base AS (\n  SELECT {', '.join(base_items)}\n  FROM {staged} AS __rh_s"
            f"{join_clause}{window_clause}\n)",
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

    def samples_sql(self, checked: str, keys: set[str] | None = None) -> str | None:
        """One UNION ALL of the first failing rows per check (only ``keys``, if given).

        Values travel as JSON text so checks with different columns fit one result.
        """
        parts = []
        for spec in self.sample_specs:
            if keys is not None and spec.key not in keys:
                continue
            values = ", ".join(f"{ident(c)} := {ident(c)}" for c in spec.columns)
            values_sql = f"to_json(struct_pack({values}))" if values else "'{}'"
            parts.append(
                f"(SELECT {literal(spec.key)} AS key, _source_file AS file, _line AS line, "
                f"{spec.reason} AS reason, CAST({values_sql} AS VARCHAR) AS values_json "
                f"FROM {checked} WHERE {spec.condition} "
                f"ORDER BY _source_file, _line LIMIT {SAMPLE_SIZE})"
            )
        return "\nUNION ALL\n".join(parts) if parts else None

    # -- the split ----------------------------------------------------------------------------
    @property
    def output_columns(self) -> list[str]:
        """Columns of the accepted table: the staged ones minus ``_type_errors``."""
        return [c for c in self.schema if c != TYPE_ERRORS]

    def accepted_sql(self, checked: str, accepted: str) -> str:
        cols = ", ".join(ident(c) for c in self.output_columns)
        return (
            f"CREATE OR REPLACE TABLE {accepted} AS "
            f"SELECT {cols} FROM {checked} WHERE NOT {QUARANTINE_FLAG}"
        )

    def quarantine_sql(self, checked: str, quarantine: str, run_id: str, at: datetime) -> str:
        cols = ", ".join(ident(c) for c in self.output_columns)
        return (
            f"CREATE OR REPLACE TABLE {quarantine} AS "
            f"SELECT {cols}, CAST({literal(run_id)} AS VARCHAR) AS _run_id, reasons, "
            f"CAST({literal(at.isoformat(sep=' '))} AS TIMESTAMP) AS quarantined_at "
            f"FROM {checked} WHERE {QUARANTINE_FLAG}"
        )


def _fail(dataset: str, rule: str | None, problem: str) -> ConfigError:
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
    has_rowid: bool = True,
) -> CompiledQuality:
    """Parse every rule of ``dataset`` once into checks; raise ConfigError on a wrong column.

    ``references`` maps each dataset a referential rule names to the relation holding its
    accepted rows. A rule referencing ``dataset`` itself also looks in ``staged`` (this batch).
    """
    schema = dict(schema)
    missing = [c for c in REQUIRED_COLUMNS if c not in schema]
    if missing:
        raise _fail(dataset, None, f"the staged table lacks the columns {', '.join(missing)}")
    columns = data_columns(schema)

    def need(rule: str, column: str) -> str:
        if column not in columns:
            raise _fail(
                dataset,
                rule,
                f"column '{column}' is not a column of {dataset} (columns: {', '.join(columns)})",
            )
        return column

    checks: list[Check] = []
    row_checks: list[RowCheck] = []
    patterns: list[tuple[str, str]] = []
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
                info, index, keys, star, where, schema, staged=staged, has_rowid=has_rowid
            )
        elif isinstance(rule, ValidityRule):
            check = validity_check(info, index, rule.expression, where, schema)
        elif isinstance(rule, RangeRule):
            need(name, rule.column)
            check = range_check(info, index, rule.column, rule.min, rule.max, where, schema)
        elif isinstance(rule, AcceptedValuesRule):
            need(name, rule.column)
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
                    raise _fail(
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
            raise _fail(dataset, name, f"unknown rule kind {rule.kind!r}")
        checks.append(check)
        if isinstance(check, RowCheck):
            row_checks.append(check)
    types = TypeErrorChecks(columns, config.type_errors.severity, config.type_error_threshold)
    return CompiledQuality(dataset, schema, [types, *checks], row_checks, patterns)


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
        raise _fail(
            dataset,
            info.name,
            f"references dataset '{target.dataset}', but no table of it was provided "
            f"(known: {', '.join(sorted(references)) or 'none'})",
        )
    ref_schema = ref.schema if ref is not None else schema
    if target.column not in ref_schema:
        raise _fail(
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
        parts.append(f"SELECT {ident(rule.column)} AS {ident(target.column)} FROM {staged}")
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


# -- binding: every error before any row moves ---------------------------------------------------


def describe(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    """(name, type) of a query's columns, planned but not run."""
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {sql}").fetchall()]


def relation_schema(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return dict(describe(con, f"SELECT * FROM {relation}"))


def bind_rules(con: duckdb.DuckDBPyConnection, compiled: CompiledQuality, staged: str) -> None:
    """Bind every rule's SQL against ``staged``; ConfigError naming rule and text on failure."""
    dataset = compiled.dataset
    for check in compiled.row_checks:
        for what, text in check.user_sql:
            try:
                types = describe(con, f"SELECT ({text}) AS v FROM {staged}")
            except duckdb.Error as exc:
                raise _fail(
                    dataset, check.info.name, f"{what} {text!r} does not bind: {exc}"
                ) from None
            if types[0][1] not in ("BOOLEAN", '"NULL"', "NULL"):
                raise _fail(
                    dataset,
                    check.info.name,
                    f"{what} {text!r} is {types[0][1]}, not a boolean condition",
                )
        if not (check.joins or check.windows):
            try:
                describe(con, f"SELECT {check.fails}, {check.reason} FROM {staged}")
            except duckdb.Error as exc:
                raise _fail(dataset, check.info.name, f"does not bind: {exc}") from None
    for name, pattern in compiled.regex_patterns:
        try:
            con.execute(f"SELECT regexp_matches('', {literal(pattern)})").fetchall()
        except duckdb.Error as exc:
            raise _fail(dataset, name, f"pattern {pattern!r} is not valid RE2: {exc}") from None
    try:
        checked_schema = describe(con, compiled.scan_select(staged))
    except duckdb.Error as exc:
        raise _fail(dataset, None, f"the quality rules do not bind together: {exc}") from None
    # Bind the later statements against an empty table shaped like the scan's output.
    probe = f"__rh_probe_{uuid.uuid4().hex[:12]}"
    body = ", ".join(f"{ident(n)} {t}" for n, t in checked_schema)
    con.execute(f"CREATE TEMP TABLE {probe} ({body})")
    try:
        for sql in (compiled.aggregate_sql(probe), compiled.samples_sql(probe)):
            if sql:
                describe(con, sql)
    except duckdb.Error as exc:
        raise _fail(dataset, None, f"the quality rules do not bind together: {exc}") from None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {probe}")


def has_rowid(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether ``relation`` is a table with DuckDB's ``rowid`` (views have none)."""
    try:
        describe(con, f"SELECT rowid FROM {relation}")
    except duckdb.Error:
        return False
    return True


def validate_rules(
    dataset: str,
    config: DatasetQualityConfig,
    columns: Mapping[str, str],
    reference_columns: Mapping[str, Mapping[str, str]] | None = None,
) -> CompiledQuality:
    """Check a dataset's rules against its canonical schema alone, with no data at all.

    For ``retailhub validate``/plan time: builds empty tables in a private in-memory DuckDB and
    binds everything, so a typo in a column or expression fails before ingestion starts.
    ``columns`` are the canonical columns and SQL types; ``reference_columns`` those of the
    datasets the referential rules point at.
    """
    con = duckdb.connect()
    try:
        staged = _empty_table(con, "__rh_staged", _with_meta(columns))
        references = {
            name: Reference(_empty_table(con, f"__rh_ref_{i}", cols), dict(cols))
            for i, (name, cols) in enumerate((reference_columns or {}).items())
        }
        schema = relation_schema(con, staged)
        compiled = compile_quality(dataset, config, schema, references=references, staged=staged)
        bind_rules(con, compiled, staged)
        return compiled
    finally:
        con.close()


def _with_meta(columns: Mapping[str, str]) -> dict[str, str]:
    out = {
        "_source": "VARCHAR",
        "_source_file": "VARCHAR",
        "_line": "BIGINT",
        "_unit_id": "VARCHAR",
    }
    out = {**dict(columns), **{k: v for k, v in out.items() if k not in columns}}
    out.setdefault(TYPE_ERRORS, "VARCHAR[]")
    return out


def _empty_table(con: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, str]) -> str:
    body = ", ".join(f"{ident(c)} {t}" for c, t in columns.items())
    con.execute(f"CREATE TABLE {ident(name)} ({body})")
    return ident(name)
