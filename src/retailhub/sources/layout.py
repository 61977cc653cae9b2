"""Dataset layouts as data: canonical columns, their types, and the source headers they accept.

A layout YAML (``layouts/*.yaml``) says what a dataset looks like after staging. This module maps a
source's raw header onto it (``resolve``) and writes the one DuckDB SELECT that renames, casts and
explains (``staging_sql``): every canonical column typed, NULL for absent optional columns, and
``_type_errors`` with one readable reason per value that is present but does not parse. Casting in
SQL keeps the work in the engine (no Python per row) and turns a bad value into a quarantinable
row instead of a failed run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from retailhub.config import strict_yaml
from retailhub.errors import ConfigError

PASS_THROUGH = "none"
METADATA = {"_source": "VARCHAR", "_source_file": "VARCHAR", "_line": "BIGINT"}
OPTIONAL_METADATA = ("_unit_id",)
_TYPE_RE = re.compile(
    r"^(VARCHAR|BIGINT|DOUBLE|DATE|TIMESTAMP|BOOLEAN|DECIMAL\(\d{1,2},\s*\d{1,2}\))$"
)
_TEXT_TYPES = frozenset({"VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "NAME"})
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_ERR_VALUE_CHARS = 80  # cap on the raw text quoted in an error reason

log = logging.getLogger(__name__)


class LayoutColumn(BaseModel):
    """One canonical column of a layout (one entry of ``columns:`` in the YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: str
    aliases: tuple[str, ...] = ()
    format: tuple[str, ...] = ()
    description: str = ""
    nullable: bool = True
    required: bool = True
    normalize: Literal["trim", "integer_text"] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        value = value.strip().upper()
        if not _TYPE_RE.match(value):
            raise ValueError(
                "type must be VARCHAR, BIGINT, DOUBLE, DECIMAL(p,s), DATE, TIMESTAMP or BOOLEAN"
            )
        return value.replace(" ", "")

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value


class _LayoutFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    columns: list[LayoutColumn] = Field(min_length=1)


@dataclass(frozen=True)
class Layout:
    """A parsed layout; ``none`` is the pass-through layout with no columns of its own."""

    name: str
    description: str
    columns: tuple[LayoutColumn, ...]

    @property
    def is_pass_through(self) -> bool:
        return self.name == PASS_THROUGH

    @property
    def column_types(self) -> dict[str, str]:
        """Canonical column -> DuckDB type, in layout order (what staging produces)."""
        return {c.name: c.type for c in self.columns}

    # -- header mapping ---------------------------------------------------------------------------

    def check_header(
        self,
        header: Sequence[str],
        overrides: Mapping[str, str] | None = None,
        *,
        source: str = "?",
        origin: str = "?",
    ) -> None:
        """Refuse a header naming a layout column twice, and warn where two spellings of one
        column both appear (``UnitPrice`` and ``Price``): landing keeps the first of two equal
        names, so the second's values (descriptions under a second ``Country``) would be
        published as the first's without a word."""
        overrides = dict(overrides or {})
        names = [h.lstrip("\ufeff").strip() for h in header]
        seen: dict[str, int] = {}
        for name in names:
            seen[name.lower()] = seen.get(name.lower(), 0) + 1
        for col in self.columns:
            if col.name in overrides:
                wanted = overrides[col.name].strip()
                if seen.get(wanted.lower(), 0) > 1:
                    raise ConfigError(
                        f"source {source!r}: columns.{col.name} names {wanted!r}, which the "
                        f"header of {origin} has {seen[wanted.lower()]} times: rename the wrong "
                        "one in the file",
                        source=source,
                        path=origin,
                        key=f"sources.{source}.columns.{col.name}",
                    )
                continue
            twice = [n for n in _matches(col, list(dict.fromkeys(names))) if seen[n.lower()] > 1]
            if twice:
                raise ConfigError(
                    f"source {source!r}: the header of {origin} names column {twice[0]!r} "
                    f"({col.name}) {seen[twice[0].lower()]} times: rename the wrong one in the "
                    "file (landing would keep the first and number the others)",
                    source=source,
                    path=origin,
                )
            spellings = _matches(col, list(dict.fromkeys(names)))
            if len(spellings) > 1:
                log.warning(
                    "source %s: the header of %s has %s for %s: each row takes the first "
                    "that has a value (map the right one under `columns:` to choose)",
                    source,
                    origin,
                    " and ".join(repr(n) for n in spellings),
                    col.name,
                )

    def resolve(
        self,
        source_columns: Sequence[str],
        overrides: Mapping[str, str] | None = None,
        *,
        source: str = "?",
        origin: str | None = None,
    ) -> dict[str, str | None]:
        """Map each canonical column to the source column feeding it (None: absent, optional).

        ``origin`` names the one file whose header ``source_columns`` is, for the message.

        Matching tries the canonical name and the aliases, first exactly, then ignoring case,
        spaces and punctuation (``Row ID`` = ``RowID`` = ``row_id``). ``overrides`` (the source's
        ``columns:``) wins. Source columns that match nothing are left out of staging.
        """
        overrides = dict(overrides or {})
        candidates = [c for c in source_columns if c not in METADATA and c not in OPTIONAL_METADATA]
        if self.is_pass_through:
            return {c: c for c in candidates}
        known = {c.name for c in self.columns}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"source {source!r}: columns: {unknown} are not columns of layout {self.name!r} "
                f"(it has {sorted(known)})",
                key=f"sources.{source}.columns.{unknown[0]}",
            )
        exact = {c: c for c in candidates}
        loose: dict[str, str] = {}
        for c in candidates:
            loose.setdefault(_loose(c), c)
        mapping: dict[str, str | None] = {}
        missing: list[LayoutColumn] = []
        for col in self.columns:
            if col.name in overrides:
                wanted = overrides[col.name]
                found = exact.get(wanted) or loose.get(_loose(wanted))
                if found is None:
                    where = origin or "the source"
                    raise ConfigError(
                        f"source {source!r}: columns.{col.name} names {wanted!r}, which is not a "
                        f"column of {where} (it has {list(candidates)})",
                        key=f"sources.{source}.columns.{col.name}",
                    )
                mapping[col.name] = found
                continue
            matches = _matches(col, candidates)
            found = matches[0] if matches else None
            mapping[col.name] = found
            if found is None and col.required:
                missing.append(col)
        if missing:
            wanted = ", ".join(
                f"{c.name} (accepted: {', '.join(c.aliases) or c.name})" for c in missing
            )
            where = f"the header of {origin}" if origin else "the source columns"
            raise ConfigError(
                f"source {source!r}: layout {self.name!r} needs column(s) {wanted}, not found in "
                f"{where} {list(candidates)}; map them under `columns:` "
                f"(canonical: source column){' or correct the file' if origin else ''}",
                key=f"sources.{source}.columns",
            )
        return mapping

    # -- SQL ----------------------------------------------------------------------------------

    def staging_sql(
        self,
        relation: str,
        source_columns: Sequence[str],
        overrides: Mapping[str, str] | None = None,
        date_format: str | None = None,
        *,
        source: str = "?",
        source_types: Mapping[str, str] | None = None,
        nul_columns: Sequence[str] = (),
    ) -> str:
        """One DuckDB statement turning raw landed rows into typed canonical rows.

        ``relation`` is SQL text (a quoted table name or a parenthesised subquery with alias).
        ``source_types`` (column -> DuckDB type, e.g. from DESCRIBE) matters only for typed
        sources (Parquet, databases); without it every source column is treated as text.
        ``nul_columns`` are text source columns holding a NUL character somewhere: their
        NULs become U+FFFD and the row gets a type error (quarantined), because PostgreSQL
        cannot store a NUL in text and its publish would fail on one byte of one row.
        """
        types = {k.lower(): v.upper() for k, v in (source_types or {}).items()}
        meta = _metadata_select(source_columns)
        if self.is_pass_through:
            present = _present_metadata(source_columns)
            star = f"* EXCLUDE ({', '.join(_q(m) for m in present)})" if present else "*"
            if not nul_columns:
                return f"SELECT {star}, {meta}, []::VARCHAR[] AS _type_errors FROM {relation}"
            kept = ", ".join(
                f"replace({_q(c)}, chr(0), chr(65533)) AS {_q(c)}" for c in nul_columns
            )
            reasons = ", ".join(
                f"CASE WHEN contains({_q(c)}, chr(0)) THEN "
                f"{_lit(c + ': contains a NUL character (kept as U+FFFD)')} END"
                for c in nul_columns
            )
            return (
                f"SELECT {star} REPLACE ({kept}), {meta}, "
                f"[e FOR e IN [{reasons}] IF e IS NOT NULL] AS _type_errors FROM {relation}"
            )
        mapping = self.resolve(source_columns, overrides, source=source)
        candidates = [c for c in source_columns if c not in METADATA and c not in OPTIONAL_METADATA]
        stage1 = _passthrough_metadata(source_columns)  # raw text (or typed raw) per column
        stage2: list[str] = []  # typed value per column
        out: list[str] = []  # canonical output, in layout order
        errors: list[str] = []  # one CASE per castable column: reason or NULL
        for i, col in enumerate(self.columns):
            raw = mapping[col.name]
            t, v = f"__t{i}", f"__v{i}"
            if raw is None:
                out.append(f"CAST(NULL AS {col.type}) AS {_q(col.name)}")
                if not col.nullable:  # an optional column the models need where present
                    errors.append(_missing(col))
                continue
            out.append(f"{v} AS {_q(col.name)}")
            spellings = [raw] if col.name in (overrides or {}) else _matches(col, candidates)
            ref = _q(raw)
            if len(spellings) > 1:
                ref = "COALESCE(" + ", ".join(f"CAST({_q(c)} AS VARCHAR)" for c in spellings) + ")"
            if any(c in nul_columns for c in spellings):
                stage1.append(f"contains({ref}, chr(0)) AS __n{i}")
                errors.append(
                    f"CASE WHEN __n{i} THEN "
                    f"{_lit(col.name + ': contains a NUL character (kept as U+FFFD)')} END"
                )
                ref = f"replace({ref}, chr(0), chr(65533))"
            if col.type == "VARCHAR":  # text never fails to type: normalise only
                stage1.append(f"{_varchar_expr(ref, col.normalize)} AS {v}")
                if not col.nullable:
                    # blank counts as missing: the staging models read empty text as NULL
                    errors.append(
                        f"CASE WHEN NULLIF(trim({v}), '') IS NULL THEN {_missing(col)} END"
                    )
                continue
            formats = col.format
            if date_format and col.type in ("DATE", "TIMESTAMP"):
                formats = (date_format,)
            if len(spellings) > 1 or types.get(raw.lower(), "VARCHAR").split("(")[0] in _TEXT_TYPES:
                stage1.append(f"NULLIF(trim(CAST({ref} AS VARCHAR)), '') AS {t}")
                stage2.append(f"{_cast_text(t, col.type, formats)} AS {v}")
                reason = _reason_text(col, t, formats)
            else:  # typed source column (Parquet, database): a plain cast
                stage1.append(f"{ref} AS {t}")
                stage2.append(f"{_typed_cast(t, types.get(raw.lower(), ''), col.type)} AS {v}")
                reason = (
                    f"{_lit(col.name + ': ')} || CAST({t} AS VARCHAR) || "
                    f"{_lit(' is not a valid ' + col.type)}"
                )
            errors.append(f"CASE WHEN {t} IS NOT NULL AND {v} IS NULL THEN {reason} END")
            if not col.nullable:
                errors.append(f"CASE WHEN {t} IS NULL THEN {_missing(col)} END")
        error_list = (
            f"[e FOR e IN [{', '.join(errors)}] IF e IS NOT NULL]" if errors else "[]::VARCHAR[]"
        )
        out += [_metadata_select(source_columns), f"{error_list} AS _type_errors"]
        return (
            f"WITH __rh_text AS (SELECT {', '.join(stage1) or '1 AS __rh_none'} FROM {relation}), "
            f"__rh_typed AS (SELECT {', '.join(['*', *stage2])} FROM __rh_text) "
            f"SELECT {', '.join(out)} FROM __rh_typed"
        )


# -- loading ----------------------------------------------------------------------------------


def available_layouts() -> list[str]:
    """Names of the built-in layouts (plus ``none``, the pass-through)."""
    folder = resources.files("retailhub.sources") / "layouts"
    names = sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [*names, PASS_THROUGH]


def get_layout(name: str, project_dir: Path | None = None) -> Layout:
    """A built-in layout by name, ``none``, or a project layout file (``layouts/x.yaml``)."""
    if name == PASS_THROUGH:
        return Layout(PASS_THROUGH, "pass-through: source columns as they are", ())
    if name.endswith((".yaml", ".yml")):
        path = Path(name) if Path(name).is_absolute() else (project_dir or Path.cwd()) / name
        if not path.is_file():
            raise ConfigError(f"layout file not found: {path}", file=str(path), key="layout")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    return _builtin(name)


@cache
def _builtin(name: str) -> Layout:
    resource = resources.files("retailhub.sources") / "layouts" / f"{name}.yaml"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not resource.is_file():
        raise ConfigError(
            f"unknown layout {name!r}; available: {', '.join(available_layouts())} "
            "(or a path to a layout .yaml file)",
            key="layout",
        )
    return _parse(resource.read_text(encoding="utf-8"), f"layouts/{name}.yaml")


def _parse(text: str, where: str) -> Layout:
    try:
        data = _LayoutFile.model_validate(strict_yaml.load(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {exc}", file=where) from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where}: {key}: {err['msg']}", file=where, key=key) from None
    names = [c.name for c in data.columns]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: duplicate column names in layout", file=where)
    return Layout(data.name, data.description, tuple(data.columns))


# -- SQL pieces ---------------------------------------------------------------------------------


def _missing(col: LayoutColumn) -> str:
    """The reason of a row lacking a value its layout requires (``nullable: false``): the
    models need it (an order line without a quantity has no amount), so the row is
    quarantined, not accepted to fail the model tests and stop every source's publish."""
    return _lit(f"{col.name}: missing (the layout requires a value)")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _loose(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _matches(col: LayoutColumn, candidates: Sequence[str]) -> list[str]:
    """Every source column that spells ``col`` (best first): exact names, then loose ones.

    More than one match happens when files with different header spellings (``Row ID`` and
    ``RowID``) were landed into one table by name; staging then coalesces them.
    """
    names = (col.name, *col.aliases)
    present = set(candidates)
    found = [n for n in names if n in present]
    wanted = {_loose(n) for n in names}
    found += [c for c in candidates if _loose(c) in wanted and c not in found]
    return found


def _present_metadata(source_columns: Sequence[str]) -> list[str]:
    present = set(source_columns)
    return [m for m in (*METADATA, *OPTIONAL_METADATA) if m in present]


def _passthrough_metadata(source_columns: Sequence[str]) -> list[str]:
    return [_q(m) for m in _present_metadata(source_columns)]


def _metadata_select(source_columns: Sequence[str]) -> str:
    present = set(source_columns)
    parts = [
        _q(m) if m in present else f"CAST(NULL AS {typ}) AS {_q(m)}" for m, typ in METADATA.items()
    ]
    parts += [_q(m) for m in OPTIONAL_METADATA if m in present]
    return ", ".join(parts)


def _varchar_expr(ref: str, normalize: str | None) -> str:
    text = f"CAST({ref} AS VARCHAR)"
    if normalize == "trim":
        return f"trim({text})"
    if normalize == "integer_text":
        # '17850.0' (an integer id exported through a float column) -> '17850'
        # (the regular expression only where there is a '.': most ids are clean)
        trimmed = f"trim({text})"
        return (
            f"CASE WHEN strpos({trimmed}, '.') > 0 "
            rf"THEN regexp_replace({trimmed}, '^([+-]?[0-9]+)\.0*$', '\1') ELSE {trimmed} END"
        )
    return text


def _cast_text(t: str, typ: str, formats: Sequence[str]) -> str:
    if typ == "BIGINT":
        # TRY_CAST would round '2.5' to 3; only integral text (optionally '.0') is accepted.
        integral = r"'[+-]?[0-9]+(\.0*)?'"
        # Text of digits (and '-') alone needs no regular expression: TRY_CAST decides it.
        return (
            f"CASE WHEN ltrim({t}, '-0123456789') = '' THEN TRY_CAST({t} AS BIGINT) "
            f"WHEN regexp_full_match({t}, {integral}) THEN TRY_CAST({t} AS BIGINT) END"
        )
    if typ == "BOOLEAN":
        truthy = ", ".join(_lit(x) for x in _TRUE)
        falsy = ", ".join(_lit(x) for x in _FALSE)
        return (
            f"CASE WHEN lower({t}) IN ({truthy}) THEN true "
            f"WHEN lower({t}) IN ({falsy}) THEN false END"
        )
    if typ in ("DATE", "TIMESTAMP") and formats:
        fmts = "[" + ", ".join(_lit(f) for f in formats) + "]"
        # then ISO 8601, which is how a typed value reads once a dataset's sources are united
        # as text (a Parquet timestamp beside a CSV's text: '2024-03-01 05:00:00.25+00')
        parsed = f"coalesce(try_strptime({t}, {fmts}), {_iso_timestamp(t)})"
        return f"CAST({parsed} AS DATE)" if typ == "DATE" else f"CAST({parsed} AS TIMESTAMP)"
    if typ in ("DATE", "TIMESTAMP"):
        # a typed timestamp with time zone reads as text in the session's zone
        # ('2024-03-01 20:30:00-05'): its UTC instant, so that the date does not depend on
        # the machine's time zone
        return f"CAST(coalesce({_iso_timestamp(t)}, TRY_CAST({t} AS {typ})) AS {typ})"
    return f"TRY_CAST({t} AS {typ})"


_ISO_8601 = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
)
_UTC_OFFSET = r":[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _iso_timestamp(t: str) -> str:
    """ISO 8601 text as a timestamp; one with a UTC offset as the UTC instant (not the session
    time zone's, which would make the result depend on the machine's)."""
    return (
        f"CASE WHEN regexp_full_match({t}, {_lit(_ISO_8601)}) THEN "
        f"CASE WHEN regexp_matches({t}, {_lit(_UTC_OFFSET)}) "
        f"THEN timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ)) "
        f"ELSE TRY_CAST({t} AS TIMESTAMP) END END"
    )


def _typed_cast(t: str, source_type: str, typ: str) -> str:
    """A typed source value (Parquet, database) cast to the layout's type; a timestamp with
    time zone as its UTC instant, whatever the session's time zone."""
    if source_type.startswith(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")):
        return f"TRY_CAST(timezone('UTC', {t}) AS {typ})"
    return f"TRY_CAST({t} AS {typ})"


def _reason_text(col: LayoutColumn, t: str, formats: Sequence[str]) -> str:
    shown = f"left({t}, {_ERR_VALUE_CHARS})"
    if col.type in ("DATE", "TIMESTAMP") and formats:
        tail = " does not match " + " or ".join(formats) + " (nor ISO 8601)"
    else:
        tail = f" is not a valid {col.type}"
    return f"{_lit(col.name + ': ')} || '''' || {shown} || '''' || {_lit(tail)}"
