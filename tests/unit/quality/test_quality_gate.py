"""The gate: row accounting, quarantine contents, gating semantics, errors before data moves."""

from __future__ import annotations

import pytest
from tests.unit.quality.quality_helpers import (
    RecordingConnection,
    make_staged,
    result,
    rules_of,
)

from retailhub.errors import AccountingError, ConfigError, QualityGateFailed
from retailhub.quality.binding import validate_rules
from retailhub.quality.gate import raise_for_gate

COLS = {"order_id": "VARCHAR", "amount": "DOUBLE", "qty": "INTEGER", "region": "VARCHAR"}
RULES = """
rules:
  - {name: amount_positive, kind: validity, expression: "amount > 0", action: quarantine}
  - {name: qty_small, kind: range, column: qty, max: 10, action: quarantine}
  - {name: region_known, kind: accepted_values, column: region, values: [N, S]}
  - {name: order_unique, kind: uniqueness, columns: [order_id], action: quarantine}
"""


@pytest.fixture
def staged(con):
    return make_staged(
        con,
        COLS,
        [
            ("o1", 5.0, 1, "N"),  # clean
            ("o2", -1.0, 50, "X"),  # fails three rules: all three reasons
            ("o1", 3.0, 2, "S"),  # duplicate order id
            ("o4", 2.0, 1, "X"),  # unknown region only: metric rule, stays accepted
            ("o5", None, None, "N"),  # type errors
        ],
        type_errors={4: ["amount: 'abc' is not a DOUBLE", "qty: '' is not an INTEGER"]},
    )


def test_every_reason_is_kept_and_rows_are_accounted(con, run, staged):
    out = run(RULES)
    assert (out.input_rows, out.accepted_rows, out.quarantined_rows) == (5, 2, 3)
    rows = dict(con.execute("SELECT order_id || '@' || _line, reasons FROM quarantine").fetchall())
    assert rows["o2@3"] == [
        "amount_positive: amount = -1.0",
        "qty_small: qty = 50 above max 10",
        "region_known: region = 'X' is not accepted",
    ]
    assert rows["o1@4"] == ["order_unique: duplicate key (order_id = 'o1') first seen at f.csv:2"]
    assert rows["o5@6"] == [
        "type:amount: 'abc' is not a DOUBLE",
        "type:qty: '' is not an INTEGER",
    ]
    accepted = sorted(r[0] for r in con.execute("SELECT order_id FROM accepted").fetchall())
    assert accepted == ["o1", "o4"]
    region = result(out, "region_known")
    assert region.failing_rows == 2 and region.action == "metric"


def test_output_table_shapes(con, run, staged):
    run(RULES)
    accepted_cols = [r[0] for r in con.execute("DESCRIBE accepted").fetchall()]
    assert accepted_cols == [*COLS, "_source", "_source_file", "_line", "_unit_id"]
    quarantine = con.execute("DESCRIBE quarantine").fetchall()
    assert [r[0] for r in quarantine] == [*accepted_cols, "_run_id", "reasons", "quarantined_at"]
    assert [r[1] for r in quarantine[-3:]] == ["VARCHAR", "VARCHAR[]", "TIMESTAMP"]
    assert con.execute("SELECT DISTINCT _run_id FROM quarantine").fetchall() == [("run-1",)]
    # No helper table is left behind.
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"staged", "accepted", "quarantine"}


def test_rerun_replaces_outputs(con, run, staged):
    run(RULES)
    out = run(RULES)
    assert con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == out.quarantined_rows


def test_a_view_can_be_checked(con, run, staged):
    con.execute("CREATE VIEW staged_view AS SELECT * FROM staged")
    out = run(RULES, "staged_view")
    assert (out.accepted_rows, out.quarantined_rows) == (2, 3)


def test_accounting_invariant_is_enforced(con, run, staged):
    # Writing both outputs to one table loses the accepted rows: the gate must notice.
    with pytest.raises(AccountingError, match=r"5 input rows but \d+ accepted \+ \d+ quarantined"):
        run(RULES, accepted_table="same", quarantine_table="same")


def test_the_staged_table_can_become_the_accepted_one(con, run, staged):
    """Split in place (what the pipeline does): no copy, the same rows as a copying split."""
    copied = run(RULES)
    expected = sorted(con.execute("SELECT * FROM accepted").fetchall())
    quarantined = sorted(
        con.execute("SELECT * EXCLUDE (quarantined_at) FROM quarantine").fetchall()
    )
    out = run(RULES, accepted_table="staged")
    assert (out.input_rows, out.accepted_rows, out.quarantined_rows) == (5, 2, 3)
    assert out.results == copied.results
    assert sorted(con.execute("SELECT * FROM staged").fetchall()) == expected
    staged_cols = [r[0] for r in con.execute("DESCRIBE staged").fetchall()]
    assert staged_cols == [r[0] for r in con.execute("DESCRIBE accepted").fetchall()]
    assert "_type_errors" not in staged_cols
    assert (
        sorted(con.execute("SELECT * EXCLUDE (quarantined_at) FROM quarantine").fetchall())
        == quarantined
    )


def test_severity_and_threshold_gating(con, run, staged):
    out = run(
        """
        type_errors: {severity: warn}
        rules:
          - {name: strict_error, kind: validity, expression: "amount > 0", threshold: 0.9}
          - {name: lenient_error, kind: validity, expression: "amount > 0", threshold: 0.75}
          - {name: strict_warn, kind: validity, expression: "amount > 0", severity: warn}
        """
    )
    # amount > 0 fails 1 of 5 rows (NULL passes): pass rate 0.8.
    assert [r.rule for r in out.blocking_failures] == ["strict_error"]
    assert result(out, "lenient_error").passed
    assert [r.rule for r in out.warnings] == ["type:amount", "type:qty", "strict_warn"]
    with pytest.raises(QualityGateFailed) as err:
        raise_for_gate([out])
    assert "ds.strict_error" in str(err.value) and err.value.exit_code == 1
    raise_for_gate([])  # nothing blocks: no error


def test_defaults_resolve_thresholds(con, run, staged):
    out = run(
        """
        defaults: {uniqueness: 0.5, validity: 0.1}
        rules:
          - {name: u, kind: uniqueness, columns: [order_id]}
          - {name: v, kind: validity, expression: "amount > 100"}
        """
    )
    assert result(out, "u").threshold == 0.5 and result(out, "v").threshold == 0.1
    assert result(out, "type:amount").threshold == 0.1


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ('{name: bad_fn, kind: validity, expression: "no_such_fn(amount) > 0"}', "no_such_fn"),
        ('{name: bad_col, kind: validity, expression: "amout > 0"}', "amout"),
        ('{name: not_bool, kind: validity, expression: "amount + 1"}', "not a boolean"),
        ('{name: bad_where, kind: range, column: qty, max: 1, where: "regioon = 1"}', "regioon"),
        ("{name: bad_bound, kind: range, column: qty, min: abc}", "abc"),
        ("{name: bad_column, kind: regex, column: nope, pattern: x}", "'nope'"),
        ("{name: bad_re2, kind: regex, column: region, pattern: '(?=x)'}", "RE2"),
        (
            "{name: bad_ref, kind: referential, column: region, "
            "references: {dataset: elsewhere, column: id}}",
            "elsewhere",
        ),
    ],
)
def test_bad_rules_fail_before_any_data_moves(con, run, staged, rule, needle):
    with pytest.raises(ConfigError) as err:
        run(f"rules: [{rule}]")
    message = str(err.value)
    name = rule.split("name: ")[1].split(",")[0]
    assert f"quality.datasets.ds: rule '{name}'" in message
    assert needle in message
    assert err.value.context["rule"] == name and err.value.exit_code == 2
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"staged"}


def test_syntax_errors_fail_when_the_config_loads():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        rules_of('rules: [{name: broken, kind: validity, expression: "amount >"}]')
    assert "amount >" in str(err.value) and "not valid SQL" in str(err.value)


def test_validate_rules_needs_no_data():
    compiled = validate_rules(
        "ds",
        rules_of(RULES),
        {"order_id": "VARCHAR", "amount": "DOUBLE", "qty": "INTEGER", "region": "VARCHAR"},
    )
    assert len(compiled.row_checks) == 4
    with pytest.raises(ConfigError, match="amout"):
        validate_rules(
            "ds", rules_of("rules: [{name: v, kind: validity, expression: 'amout > 1'}]"), COLS
        )


def test_one_scan_one_aggregate(con, run, staged):
    recorder = RecordingConnection(con)
    con.execute("CREATE TABLE regions AS SELECT * FROM (VALUES ('N'), ('S')) t(code)")
    run(
        RULES
        + """
  - {name: region_ref, kind: referential, column: region, references: {dataset: r, column: code}}
  - {name: all_unique, kind: uniqueness, columns: "*"}
  - {kind: completeness, column: region}
  - {kind: volume, min_rows: 1}
""",
        connection=recorder,
        reference_tables={"r": "regions"},
    )
    data = [s for s in recorder.statements if not s.lstrip().startswith("DESCRIBE")]
    # Every row-level rule is evaluated by one statement: the scan.
    evaluating = [s for s in data if "amount > 0" in s]
    assert len(evaluating) == 1 and evaluating[0].startswith("CREATE TEMP TABLE __rh_checked_")
    for fragment in ("NOT IN ('N', 'S')", "LEFT JOIN", "SELECT hash(", "reasons"):
        assert fragment in evaluating[0]
    # Every count and metric comes from one aggregate over the checked table.
    aggregates = [s for s in data if "FILTER (WHERE" in s]
    assert len(aggregates) == 1 and "__rh_checked_" in aggregates[0]
    creates = [s.split(" AS")[0] for s in data if s.startswith("CREATE")]
    assert creates[-2:] == [
        "CREATE OR REPLACE TABLE quarantine",
        "CREATE OR REPLACE TABLE accepted",
    ]
