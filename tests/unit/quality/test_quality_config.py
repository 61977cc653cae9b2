"""The rule models: what a wrong quality section says, defaults, built-in rule sets."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError
from tests.unit.quality.quality_helpers import rules_of

from retailhub.config.quality import (
    DatasetQualityConfig,
    QualityConfig,
    layout_names,
    layout_rules,
)
from retailhub.quality import default_rules, validate_rules


def load(text: str) -> QualityConfig:
    return QualityConfig.model_validate(yaml.safe_load(text))


def error_text(text: str) -> str:
    with pytest.raises(ValidationError) as err:
        load(text)
    return str(err.value)


def test_brief_example_parses_with_defaults_applied():
    cfg = load(
        r"""
        defaults: {completeness: 0.9, uniqueness: 0.98, validity: 0.8, freshness_hours: 6}
        datasets:
          online_retail:
            rules:
              - {name: customer_id_complete, kind: completeness, column: customer_id,
                 threshold: 0.95, severity: warn}
              - {name: no_exact_duplicates, kind: uniqueness, columns: "*", action: quarantine}
              - {name: invoice_line_unique, kind: uniqueness, columns: [invoice_no, stock_code]}
              - {kind: range, column: quantity, min: -100000, max: 100000}
              - {kind: freshness, on: column, column: activity_date}
              - {kind: freshness}
        """
    )
    ds = cfg.datasets["online_retail"]
    names = [r.rule_name for r in ds.rules]
    assert names == [
        "customer_id_complete",
        "no_exact_duplicates",
        "invoice_line_unique",
        "range_quantity",
        "freshness_activity_date",
        "freshness",
    ]
    thresholds = [ds.threshold_for(r) for r in ds.rules[:4]]
    assert thresholds == [0.95, 0.98, 0.98, 0.8]
    assert ds.max_age_for(ds.rules[5]) == 6  # `on` omitted: file_modified
    assert ds.rules[4].on == "column"  # YAML 1.1 reads the key `on` as True: handled
    assert {r.severity for r in ds.rules[1:]} == {"error"}


def test_unknown_key_is_named():
    text = error_text("datasets: {ds: {rules: [{kind: range, column: q, maxx: 3}]}}")
    assert "maxx" in text and "datasets.ds.rules.0.range" in text


def test_dataset_level_kinds_cannot_quarantine():
    text = error_text(
        "datasets: {ds: {rules: [{kind: completeness, column: c, action: quarantine}]}}"
    )
    assert "no failing rows to quarantine" in text


def test_names_must_be_unique_per_dataset():
    text = error_text(
        "datasets: {ds: {rules: [{kind: completeness, column: c}, "
        "{kind: completeness, column: c}]}}"
    )
    assert "'completeness_c' is used twice" in text


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("{kind: range, column: q}", "needs min, max or both"),
        ("{kind: range, column: q, min: 5, max: 1}", "min 5 > max 1"),
        ("{kind: volume}", "min_rows, max_rows or max_change_pct"),
        ("{kind: freshness, on: column}", "needs column"),
        ("{kind: regex, column: c, pattern: '('}", "not a valid regular expression"),
        ("{kind: validity, expression: 'a >'}", "not valid SQL"),
        ("{kind: validity, expression: '1; drop table t'}", "not valid SQL"),
        ("{kind: uniqueness, columns: []}", "at least 1"),
        ("{kind: accepted_values, column: c, values: []}", "at least 1"),
        ("{kind: completeness, column: c, threshold: 1.5}", "less than or equal to 1"),
        ("{name: 'bad name', kind: completeness, column: c}", "must start with a letter"),
        ("{kind: nonsense}", "does not match any of the expected tags"),
    ],
)
def test_bad_rules_are_refused_at_load(rule, needle):
    assert needle in error_text(f"datasets: {{ds: {{rules: [{rule}]}}}}")


def test_lambda_syntax_of_duckdb_2_is_accepted():
    ds = rules_of(
        "rules: [{name: tags, kind: validity, "
        "expression: 'len(list_filter(tags, lambda t: t IS NULL)) = 0'}]"
    )
    assert ds.rules[0].expression.startswith("len(")


def test_for_dataset_falls_back_to_layout_defaults():
    cfg = load("datasets: {mine: {rules: [{kind: completeness, column: c}]}}")
    assert [r.rule_name for r in cfg.for_dataset("mine", "online_retail").rules] == [
        "completeness_c"
    ]
    fallback = cfg.for_dataset("other", "online_retail")
    assert [r.rule_name for r in fallback.rules] == [
        r.rule_name for r in layout_rules("online_retail")
    ]
    assert cfg.for_dataset("other").rules == []
    assert cfg.for_dataset("other", "no_such_layout").rules == []


def test_reference_errors_name_the_unknown_dataset():
    cfg = load(
        "datasets: {sales: {rules: [{kind: referential, column: p, "
        "references: {dataset: catalog, column: id}}]}}"
    )
    assert cfg.reference_errors({"sales", "catalog"}) == []
    assert cfg.reference_errors({"sales"}) == [
        "quality.datasets.sales: rule 'referential_p' references unknown dataset 'catalog'"
    ]


@pytest.mark.parametrize("layout", layout_names())
def test_default_rules_fit_the_builtin_layouts(layout):
    layout_module = pytest.importorskip("retailhub.sources.layout")
    columns = {c.name: c.type for c in layout_module.get_layout(layout).columns}
    rules = default_rules(layout)
    assert rules, layout
    validate_rules(layout, DatasetQualityConfig(rules=rules), columns)
    assert layout_names() == [
        "customer_behaviour",
        "online_retail",
        "product_catalog",
        "superstore",
    ]
