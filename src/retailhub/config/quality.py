"""Typed models for the ``quality:`` section of the project file.

Quality rules are data: each dataset lists rules of a small set of kinds, and the quality layer
compiles them to SQL. The models here only check what can be checked without data (keys, types,
ranges, that SQL snippets parse, that names are unique); the compiler checks columns and binds the
SQL against the real schema before any row moves.

Every model forbids unknown keys so a typo (``treshold``) fails with the key named instead of being
silently ignored. Pydantic error locations carry the path
(``quality.datasets.online_retail.rules.3.validity.expression``), so the loader's error names the
dataset and the rule's position; the messages below also name the rule itself.

Severity and threshold semantics (documented once, used by the gate):

* Every rule yields one verdict: ``passed`` when its measured pass rate (or, for freshness and
  volume, its measured value) meets the threshold. ``severity: error`` verdicts that fail block
  publication; ``warn`` ones are reported only. Severity defaults to ``error`` for every kind.
* Row-level kinds (uniqueness, validity, range, accepted_values, regex, referential) can also
  ``action: quarantine`` their failing rows; the default ``metric`` only measures them.
* Thresholds default from ``quality.defaults``: completeness -> ``completeness``, uniqueness ->
  ``uniqueness``, every other row-level kind and type errors -> ``validity``, freshness ->
  ``freshness_hours``.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

Severity = Literal["error", "warn"]
Action = Literal["metric", "quarantine"]

#: Rule names appear inside reason strings and SQL literals; keep them plain.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
#: Kinds whose failing rows can be quarantined.
ROW_LEVEL_KINDS = frozenset(
    {"uniqueness", "validity", "range", "accepted_values", "regex", "referential"}
)
#: Kinds judged on the dataset as a whole (no quarantine).
DATASET_LEVEL_KINDS = frozenset({"completeness", "freshness", "volume"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_sql_expression(text: str, *, what: str) -> str:
    """Parse ``text`` as one DuckDB SQL expression; raise ValueError naming it otherwise.

    Why here: a broken expression must fail when the project file is loaded, not halfway through
    a run. DuckDB's own parser is used because the rules run in DuckDB (sqlglot does not know
    DuckDB 2.0's ``lambda x: ...`` syntax). Binding (unknown columns, non-boolean results) is
    checked later against the real schema, still before any row moves.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{what} is empty")
    try:
        statements = duckdb.extract_statements(f"SELECT ({stripped})")
    except duckdb.Error as exc:
        detail = str(exc).splitlines()[0]
        raise ValueError(f"{what} {stripped!r} is not valid SQL: {detail}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ValueError(f"{what} {stripped!r} must be a single SQL expression")
    return stripped


class QualityDefaults(_Strict):
    """Thresholds used by rules that do not set their own."""

    completeness: float = Field(0.95, ge=0, le=1)
    uniqueness: float = Field(0.99, ge=0, le=1)
    validity: float = Field(0.90, ge=0, le=1)
    freshness_hours: float = Field(24.0, gt=0)


class _RuleBase(_Strict):
    """Fields shared by every rule kind."""

    name: str | None = None
    severity: Severity = "error"
    threshold: float | None = Field(None, ge=0, le=1)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _NAME_RE.match(value):
            raise ValueError(
                f"rule name {value!r} must start with a letter or '_' and hold only letters, "
                "digits, '_' and '-'"
            )
        return value

    @property
    def rule_name(self) -> str:
        """The explicit name, or one derived from the kind and the columns."""
        return self.name or self.default_name()

    def default_name(self) -> str:  # pragma: no cover - every kind overrides
        raise NotImplementedError

    @property
    def is_row_level(self) -> bool:
        return self.kind in ROW_LEVEL_KINDS  # type: ignore[attr-defined]


class _RowRule(_RuleBase):
    """Row-level rules: each row passes or fails; failures may be quarantined."""

    action: Action = "metric"
    where: str | None = None

    @field_validator("where")
    @classmethod
    def _where_parses(cls, value: str | None) -> str | None:
        return None if value is None else check_sql_expression(value, what="where filter")


class _DatasetRule(_RuleBase):
    """Dataset-level rules: one verdict for the whole batch, nothing to quarantine."""

    action: Literal["metric"] = "metric"

    @field_validator("action", mode="before")
    @classmethod
    def _no_quarantine(cls, value: object) -> object:
        if value != "metric":
            raise ValueError(
                "this kind is judged on the whole dataset and has no failing rows to "
                "quarantine: action must be 'metric'"
            )
        return value


class CompletenessRule(_DatasetRule):
    """Share of rows where ``column`` is present (not NULL, not blank text)."""

    kind: Literal["completeness"]
    column: str

    def default_name(self) -> str:
        return f"completeness_{self.column}"


class UniquenessRule(_RowRule):
    """No two rows share the key; ``*`` means whole-row duplicates. Later copies fail.

    ``across_runs`` extends the check to the rows published by earlier runs, for keys that
    never come back (Superstore's Row ID, a whole sales line). Off by default, because for
    other datasets a later delivery is meant to supersede an earlier one (a catalog lists a
    product again with its new price), and the models keep the latest row.
    """

    kind: Literal["uniqueness"]
    columns: Literal["*"] | Annotated[list[str], Field(min_length=1)]
    across_runs: bool = False

    def default_name(self) -> str:
        if self.columns == "*":
            return "uniqueness_all_columns"
        return "uniqueness_" + "_".join(self.columns)


class ValidityRule(_RowRule):
    """A SQL boolean expression every row must satisfy (NULL counts as satisfied, as in CHECK)."""

    kind: Literal["validity"]
    expression: str

    @field_validator("expression")
    @classmethod
    def _expression_parses(cls, value: str) -> str:
        return check_sql_expression(value, what="expression")

    def default_name(self) -> str:
        return "validity"


Bound = int | float | str


class RangeRule(_RowRule):
    """``min <= column <= max`` (either bound optional; NULL passes, completeness covers it)."""

    kind: Literal["range"]
    column: str
    min: Bound | None = None
    max: Bound | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> RangeRule:
        if self.min is None and self.max is None:
            raise ValueError(f"range rule {self.rule_name!r} needs min, max or both")
        if (
            isinstance(self.min, int | float)
            and isinstance(self.max, int | float)
            and self.min > self.max
        ):
            raise ValueError(f"range rule {self.rule_name!r} has min {self.min} > max {self.max}")
        return self

    def default_name(self) -> str:
        return f"range_{self.column}"


class AcceptedValuesRule(_RowRule):
    """``column`` takes one of ``values`` (NULL passes)."""

    kind: Literal["accepted_values"]
    column: str
    values: Annotated[list[str | int | float | bool], Field(min_length=1)]

    def default_name(self) -> str:
        return f"accepted_values_{self.column}"


class RegexRule(_RowRule):
    """``column`` matches ``pattern`` (RE2, searched anywhere unless anchored; NULL passes)."""

    kind: Literal["regex"]
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(
                f"pattern {value!r} is not a valid regular expression: {exc}"
            ) from None
        return value

    def default_name(self) -> str:
        return f"regex_{self.column}"


class ReferenceTarget(_Strict):
    """The dataset and column a referential rule looks values up in."""

    dataset: str
    column: str


class ReferentialRule(_RowRule):
    """Every non-NULL ``column`` value exists in ``references.dataset.references.column``."""

    kind: Literal["referential"]
    column: str
    references: ReferenceTarget

    def default_name(self) -> str:
        return f"referential_{self.column}"


class FreshnessRule(_DatasetRule):
    """Data is recent: landed files (``file_modified``) or the newest ``column`` value."""

    kind: Literal["freshness"]
    max_age_hours: float | None = Field(None, gt=0)
    on: Literal["file_modified", "column"] = "file_modified"
    column: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: object) -> object:
        # YAML 1.1 (PyYAML) reads the bare key ``on`` as the boolean True.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _column_when_needed(self) -> FreshnessRule:
        if self.on == "column" and not self.column:
            raise ValueError("freshness with on: column needs column")
        if self.on == "file_modified" and self.column:
            raise ValueError("freshness on file_modified takes no column (use on: column)")
        return self

    @field_validator("threshold")
    @classmethod
    def _no_threshold(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError("freshness uses max_age_hours, not threshold")
        return value

    def default_name(self) -> str:
        return "freshness" if self.on == "file_modified" else f"freshness_{self.column}"


class VolumeRule(_DatasetRule):
    """Accepted row count within bounds and not swinging too far from the previous run."""

    kind: Literal["volume"]
    min_rows: int | None = Field(None, ge=0)
    max_rows: int | None = Field(None, ge=0)
    max_change_pct: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _something_to_check(self) -> VolumeRule:
        if self.min_rows is None and self.max_rows is None and self.max_change_pct is None:
            raise ValueError("volume needs min_rows, max_rows or max_change_pct")
        if (
            self.min_rows is not None
            and self.max_rows is not None
            and self.min_rows > self.max_rows
        ):
            raise ValueError(f"volume min_rows {self.min_rows} > max_rows {self.max_rows}")
        return self

    @field_validator("threshold")
    @classmethod
    def _no_threshold(cls, value: float | None) -> float | None:
        if value is not None:
            raise ValueError("volume uses min_rows/max_rows/max_change_pct, not threshold")
        return value

    def default_name(self) -> str:
        return "volume"


RuleConfig = Annotated[
    CompletenessRule
    | UniquenessRule
    | ValidityRule
    | RangeRule
    | AcceptedValuesRule
    | RegexRule
    | ReferentialRule
    | FreshnessRule
    | VolumeRule,
    Field(discriminator="kind"),
]


class TypeErrorPolicy(_Strict):
    """How the implicit ``type:<column>`` rules are judged (their rows are always quarantined)."""

    severity: Severity = "error"
    threshold: float | None = Field(None, ge=0, le=1)


class DatasetQualityConfig(_Strict):
    """The rules of one dataset, with the defaults they resolve against."""

    rules: list[RuleConfig] = Field(default_factory=list)
    type_errors: TypeErrorPolicy = Field(default_factory=TypeErrorPolicy)
    defaults: QualityDefaults = Field(default_factory=QualityDefaults)

    @model_validator(mode="after")
    def _unique_names(self) -> DatasetQualityConfig:
        seen: set[str] = set()
        for rule in self.rules:
            name = rule.rule_name
            if name in seen:
                raise ValueError(
                    f"rule name {name!r} is used twice; give each rule a distinct 'name'"
                )
            seen.add(name)
        return self

    def threshold_for(self, rule: _RuleBase) -> float:
        """The pass-rate threshold that applies to ``rule`` (its own, else the default)."""
        if rule.threshold is not None:
            return rule.threshold
        kind = rule.kind  # type: ignore[attr-defined]
        if kind == "completeness":
            return self.defaults.completeness
        if kind == "uniqueness":
            return self.defaults.uniqueness
        return self.defaults.validity

    def max_age_for(self, rule: FreshnessRule) -> float:
        return (
            rule.max_age_hours if rule.max_age_hours is not None else self.defaults.freshness_hours
        )

    @property
    def type_error_threshold(self) -> float:
        policy = self.type_errors
        return policy.threshold if policy.threshold is not None else self.defaults.validity


class QualityConfig(_Strict):
    """The ``quality:`` section: project-wide defaults and per-dataset rules."""

    defaults: QualityDefaults = Field(default_factory=QualityDefaults)
    datasets: dict[str, DatasetQualityConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _inherit_defaults(self) -> QualityConfig:
        # A dataset that did not set its own defaults inherits the project-wide ones; the models
        # are frozen, so rebuild rather than mutate.
        resolved = {
            name: (
                ds
                if "defaults" in ds.model_fields_set
                else ds.model_copy(update={"defaults": self.defaults})
            )
            for name, ds in self.datasets.items()
        }
        object.__setattr__(self, "datasets", resolved)
        return self

    def for_dataset(self, dataset: str, layout: str | None = None) -> DatasetQualityConfig:
        """The dataset's configured rules; else the built-in rules of its layout; else none.

        A dataset without a ``quality.datasets`` entry still gets the implicit type-error rules
        and, when its layout is a built-in one, the documented defaults of :func:`layout_rules`.
        """
        found = self.datasets.get(dataset)
        if found is not None:
            return found
        rules = layout_rules(layout) if layout else []
        return DatasetQualityConfig(rules=rules, defaults=self.defaults)

    def reference_errors(self, known_datasets: set[str]) -> list[str]:
        """Referential rules pointing at datasets the project does not define (for the loader)."""
        problems = []
        for name, ds in self.datasets.items():
            for rule in ds.rules:
                if (
                    isinstance(rule, ReferentialRule)
                    and rule.references.dataset not in known_datasets
                ):
                    problems.append(
                        f"quality.datasets.{name}: rule {rule.rule_name!r} references unknown "
                        f"dataset {rule.references.dataset!r}"
                    )
        return problems


# -- built-in rule sets per layout -------------------------------------------------------------
#
# Kept as the YAML a user would write under ``quality.datasets.<name>``, so it doubles as
# documentation and can be printed as a starting point. Each choice comes from the quirks
# documented with the real public datasets (shared/datasets/*/SOURCE.md); the comments say which.

LAYOUT_RULES_YAML = r"""
online_retail:
  # Keys and measures must be present: a missing column means the export broke, so block.
  - {kind: completeness, column: invoice_no}
  - {kind: completeness, column: stock_code}
  - {kind: completeness, column: invoice_at}
  - {kind: completeness, column: quantity}
  - {kind: completeness, column: unit_price}
  # 24.93% of UCI rows have no CustomerID (guest checkouts): genuinely incomplete. Warn only,
  # and only when it gets clearly worse than history.
  - {kind: completeness, column: customer_id, threshold: 0.70, severity: warn,
     description: "About a quarter of orders are guest checkouts without a customer id."}
  # 0.27% of rows have no Description; the stock code still identifies the product.
  - {kind: completeness, column: description, severity: warn}
  # 5,268 exact duplicate rows (0.97%): quarantine the later copies; a rise above 1% warns.
  # Also against earlier runs: a daily file delivered again under another name would count
  # every sale twice.
  - {name: no_exact_duplicates, kind: uniqueness, columns: "*", action: quarantine,
     across_runs: true, severity: warn}
  # Invoice numbers: 6 digits, prefixed C (cancellation) or A (bad-debt adjustment).
  - {name: invoice_no_format, kind: regex, column: invoice_no, pattern: '^[CA]?\d{6}$',
     action: quarantine}
  # Products are 5 digits plus letters (either case). The non-product codes (postage, manual,
  # carriage, discount, samples, fees, charity, vouchers, bad debt) are valid business rows.
  - name: stock_code_format
    kind: regex
    column: stock_code
    pattern: "^(\\d{5}[A-Za-z]*|POST|DOT|[Mm]|C2|D|S|B|CRUK|PADS|AMAZONFEE|BANK CHARGES\
      |gift_0001_\\d+|DCGS[A-Za-z0-9]*)$"
    action: quarantine
  # The only negative prices are the bad-debt adjustments A563186/A563187 (stock code B):
  # valid adjustments, allowed explicitly.
  - {name: price_not_negative, kind: validity, action: quarantine,
     expression: "unit_price >= 0 or (stock_code = 'B' and invoice_no like 'A%')"}
  # Cancellations (C prefix) carry negative quantities and are valid; a cancellation with a
  # positive quantity contradicts itself.
  - {name: cancellation_has_negative_quantity, kind: validity, action: quarantine,
     expression: "invoice_no not like 'C%' or quantity < 0"}
  # The largest genuine orders are 80,995 and 74,215 units (both cancelled later).
  - {name: quantity_plausible, kind: range, column: quantity, min: -100000, max: 100000,
     action: quarantine}
  # 38 values, including 'Unspecified' and 'European Community', EIRE and RSA. A new value is
  # worth a look, not a dropped row.
  - name: country_known
    kind: accepted_values
    column: country
    severity: warn
    values: [Australia, Austria, Bahrain, Belgium, Brazil, Canada, Channel Islands, Cyprus,
             Czech Republic, Denmark, EIRE, European Community, Finland, France, Germany,
             Greece, Hong Kong, Iceland, Israel, Italy, Japan, Lebanon, Lithuania, Malta,
             Netherlands, Norway, Poland, Portugal, RSA, Saudi Arabia, Singapore, Spain, Sweden,
             Switzerland, USA, United Arab Emirates, United Kingdom, Unspecified]
  # Backfills of historical files are normal: stale files and empty batches warn, not block.
  - {kind: freshness, on: file_modified, severity: warn}
  - {kind: volume, min_rows: 1, severity: warn}

superstore:
  - {kind: completeness, column: order_id}
  - {kind: completeness, column: order_date}
  - {kind: completeness, column: customer_id}
  - {kind: completeness, column: product_id}
  - {kind: completeness, column: sales}
  # 11 Burlington (VT) rows have no postal code in the primary copy.
  - {kind: completeness, column: postal_code, threshold: 0.99, severity: warn}
  # A Row ID never comes back: one repeating a published row is quarantined, not re-counted.
  - {name: row_id_unique, kind: uniqueness, columns: [row_id], action: quarantine,
     across_runs: true}
  # Row IDs 3406 and 3407 match in every other column: maybe a genuine repeat purchase, so it
  # is measured, not quarantined.
  - name: no_duplicates_ignoring_row_id
    kind: uniqueness
    severity: warn
    columns: [order_id, order_date, ship_date, ship_mode, customer_id, customer_name, segment,
              country, city, state, postal_code, region, product_id, category, sub_category,
              product_name, sales, quantity, discount, profit]
  - {name: order_id_format, kind: regex, column: order_id, pattern: '^(CA|US)-\d{4}-\d{6}$',
     action: quarantine}
  - {name: ships_after_order, kind: validity, expression: "ship_date >= order_date",
     action: quarantine}
  # The Kaggle copy has 7 orders whose id year differs from the order date: report only.
  - {name: order_id_year_matches, kind: validity, severity: warn,
     expression: "substr(order_id, 4, 4) = cast(year(order_date) as varchar)"}
  # Negative profit (1,871 rows) is loss-making business, not an error: no rule on it.
  - {name: sales_not_negative, kind: range, column: sales, min: 0, action: quarantine}
  - {name: quantity_positive, kind: range, column: quantity, min: 1, action: quarantine}
  - {name: discount_is_share, kind: range, column: discount, min: 0, max: 1, action: quarantine}
  - {name: region_known, kind: accepted_values, column: region, severity: warn,
     values: [Central, East, South, West]}
  - {name: segment_known, kind: accepted_values, column: segment, severity: warn,
     values: [Consumer, Corporate, Home Office]}
  - {kind: freshness, on: file_modified, severity: warn}
  - {kind: volume, min_rows: 1, severity: warn}

product_catalog:
  - {kind: completeness, column: product_id}
  # IKEA lists 620 items under several categories (2,962 ids in 3,694 rows): measured, not
  # quarantined. Olist ids are unique.
  - {name: product_id_unique, kind: uniqueness, columns: [product_id], severity: warn}
  # Olist leaves 610 of 32,951 categories empty (1.9%); Olist has no prices at all.
  - {kind: completeness, column: category, severity: warn}
  - {name: list_price_not_negative, kind: range, column: list_price, min: 0, action: quarantine}
  - {kind: volume, min_rows: 1, severity: warn}

customer_behaviour:
  # One row per (customer, day, channel); the public shopping-trends file has no day or
  # channel, so there the key is the customer alone (NULLs compare equal).
  - {kind: completeness, column: customer_id}
  - {name: customer_day_channel_unique, kind: uniqueness,
     columns: [customer_id, activity_date, channel], action: quarantine}
  - {name: age_plausible, kind: range, column: age, min: 0, max: 120, action: quarantine}
  - {name: review_rating_scale, kind: range, column: review_rating, min: 1, max: 5,
     action: quarantine}
  - {name: purchase_amount_not_negative, kind: range, column: purchase_amount, min: 0,
     action: quarantine}
  - {name: spend_not_negative, kind: range, column: spend, min: 0, action: quarantine}
  - {kind: freshness, on: file_modified, severity: warn}
  - {kind: volume, min_rows: 1, severity: warn}
"""


def layout_names() -> list[str]:
    """Built-in layouts that come with a default rule set."""
    return sorted(_layout_rule_data())


def layout_rules(layout: str) -> list[RuleConfig]:
    """The documented default rules of a built-in layout (``[]`` for an unknown layout).

    Why per layout: real retail exports have known quirks (guest checkouts, cancellations,
    bad-debt adjustments, service stock codes) that generic rules would wrongly quarantine.
    """
    raw = _layout_rule_data().get(layout)
    if raw is None:
        return []
    return TypeAdapter(list[RuleConfig]).validate_python(raw)


@cache
def _layout_rule_data() -> dict[str, list[dict[str, object]]]:
    return yaml.safe_load(LAYOUT_RULES_YAML)
