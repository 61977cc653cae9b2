"""Each rule kind on hand-built tables with hand-counted answers (real DuckDB)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tests.unit.quality.quality_helpers import NOW, make_staged, result

ORDERS = {"invoice_no": "VARCHAR", "stock_code": "VARCHAR", "quantity": "INTEGER",
          "unit_price": "DOUBLE", "customer_id": "BIGINT", "country": "VARCHAR"}  # fmt: skip


def orders(con, rows, **kw):
    return make_staged(con, ORDERS, rows, **kw)


def test_completeness_counts_null_and_blank_text_but_not_type_errors(con, run):
    orders(
        con,
        [
            ("1", "A", 1, 1.0, 10, "UK"),
            ("2", "A", 1, 1.0, None, "UK"),  # missing customer
            ("3", "A", None, 1.0, 11, "  "),  # blank country; quantity failed to parse
            ("4", "A", 1, 1.0, None, ""),  # missing customer, empty country
        ],
        type_errors={2: ["quantity: could not convert 'x' to INTEGER"]},
    )
    out = run(
        """
        rules:
          - {kind: completeness, column: customer_id, threshold: 0.5}
          - {kind: completeness, column: country}
          - {kind: completeness, column: quantity}
        """
    )
    cust = result(out, "completeness_customer_id")
    assert (cust.failing_rows, cust.rows_checked, cust.metric) == (2, 4, 0.5)
    assert cust.passed  # exactly at the threshold passes
    assert [s["line"] for s in cust.sample] == [3, 5]
    assert cust.sample[0]["values"] == {"customer_id": None}
    country = result(out, "completeness_country")
    assert country.failing_rows == 2 and not country.passed
    # The unparseable quantity is a type error, not a missing value.
    assert result(out, "completeness_quantity").failing_rows == 0
    assert result(out, "type:quantity").failing_rows == 1
    # Completeness never quarantines: only the type-error row leaves.
    assert (out.accepted_rows, out.quarantined_rows) == (3, 1)


def test_exact_duplicates_keep_first_and_name_it(con, run):
    orders(
        con,
        [
            ("1", "A", 1, 1.0, None, "UK"),  # a.csv line 2: first
            ("1", "A", 1, 1.0, None, "UK"),  # a.csv line 3: copy (NULL equals NULL)
            ("1", "A", 2, 1.0, None, "UK"),  # differs in quantity
            ("1", "A", 1, 1.0, None, "UK"),  # b.csv line 5: copy
            ("9", "Z", None, 1.0, 1, "UK"),  # unparseable 'x'
            ("9", "Z", None, 1.0, 1, "UK"),  # unparseable 'y': not a copy
        ],
        files=["a.csv", "a.csv", "a.csv", "b.csv", "a.csv", "a.csv"],
        type_errors={4: ["quantity: 'x'"], 5: ["quantity: 'y'"]},
    )
    out = run('rules: [{name: dup, kind: uniqueness, columns: "*", action: quarantine}]')
    dup = result(out, "dup")
    assert (dup.failing_rows, dup.rows_checked) == (2, 6)
    assert dup.column is None
    reasons = dict(
        con.execute("SELECT _source_file || ':' || _line, reasons FROM quarantine").fetchall()
    )
    assert reasons["a.csv:3"] == ["dup: duplicate of row at a.csv:2"]
    assert reasons["b.csv:5"] == ["dup: duplicate of row at a.csv:2"]
    assert "a.csv:2" not in reasons
    assert out.quarantined_rows == 4  # 2 copies + 2 type-error rows
    assert [(s["file"], s["line"]) for s in dup.sample] == [("a.csv", 3), ("b.csv", 5)]


def test_key_uniqueness_with_where_only_checks_selected_rows(con, run):
    orders(
        con,
        [
            ("1", "A", 1, 1.0, 1, "UK"),
            ("1", "A", 2, 1.0, 1, "UK"),  # duplicate key, selected
            ("C1", "A", 1, 1.0, 1, "UK"),
            ("C1", "A", 1, 1.0, 1, "UK"),  # duplicate key but not selected by where
        ],
    )
    out = run(
        """
        rules:
          - {kind: uniqueness, columns: [invoice_no, stock_code], where: "invoice_no not like 'C%'",
             threshold: 0.9}
        """
    )
    r = result(out, "uniqueness_invoice_no_stock_code")
    assert (r.failing_rows, r.rows_checked, r.metric) == (1, 2, 0.5)
    assert r.column == "invoice_no, stock_code"
    assert not r.passed and r.action == "metric"
    assert r.sample[0]["reason"] == (
        "uniqueness_invoice_no_stock_code: duplicate key (invoice_no = '1', stock_code = 'A') "
        "first seen at f.csv:2"
    )
    assert out.quarantined_rows == 0  # metric only


def test_uniqueness_fails_keys_published_by_earlier_runs(con, run):
    """A key is unique over the dataset: a new file repeating a published key is quarantined
    (the earlier file named), whereas a key new to the dataset keeps its first batch copy."""
    con.execute(
        "CREATE TABLE history AS SELECT * FROM (VALUES "
        "('1', 'A', 1, 1.0, 10::BIGINT, 'UK', 'old.csv', 2::BIGINT), "
        "('2', 'A', 1, 1.0, NULL::BIGINT, 'UK', 'old.csv', 3::BIGINT)) "
        "AS t(invoice_no, stock_code, quantity, unit_price, customer_id, country, "
        "_source_file, _line)"
    )
    orders(
        con,
        [
            ("1", "A", 5, 1.0, 10, "UK"),  # line 2: key (1, A) was published
            ("3", "A", 1, 1.0, 10, "UK"),  # line 3: new key, first copy kept
            ("3", "A", 2, 1.0, 10, "UK"),  # line 4: repeats line 3
            ("2", "A", 1, 1.0, None, "UK"),  # line 5: exact copy of a published row
        ],
        files=["new.csv"] * 4,
    )
    out = run(
        """
        rules:
          - {name: key, kind: uniqueness, columns: [invoice_no, stock_code], action: quarantine,
             across_runs: true}
          - {name: copy, kind: uniqueness, columns: "*", action: quarantine, across_runs: true}
        """,
        reference_tables={"ds": "history"},
    )
    assert (result(out, "key").failing_rows, result(out, "copy").failing_rows) == (3, 1)
    reasons = dict(con.execute("SELECT _line, reasons FROM quarantine").fetchall())
    assert reasons[2] == [
        "key: duplicate key (invoice_no = '1', stock_code = 'A') first seen at old.csv:2 "
        "(published by an earlier run)"
    ]
    assert reasons[4] == [
        "key: duplicate key (invoice_no = '3', stock_code = 'A') first seen at new.csv:3"
    ]
    assert reasons[5] == [
        "key: duplicate key (invoice_no = '2', stock_code = 'A') first seen at old.csv:3 "
        "(published by an earlier run)",
        "copy: duplicate of row at old.csv:3 (published by an earlier run)",
    ]
    assert (out.accepted_rows, out.quarantined_rows) == (1, 3)
    assert con.execute("SELECT _line FROM accepted").fetchall() == [(3,)]
    # Without across_runs the rule judges the batch alone: a later delivery may supersede.
    out = run(
        "rules: [{name: key, kind: uniqueness, columns: [invoice_no, stock_code]}]",
        reference_tables={"ds": "history"},
    )
    assert result(out, "key").failing_rows == 1  # only line 4, the repeat within the batch


def test_uniqueness_against_a_history_without_a_newer_column(con, run):
    """A layout that gained a column: the published rows lack it, and count as NULL in it."""
    con.execute(
        "CREATE TABLE history AS SELECT '1' AS invoice_no, 'A' AS stock_code, 1 AS quantity, "
        "1.0 AS unit_price, 10::BIGINT AS customer_id, "
        "'old.csv' AS _source_file, 2::BIGINT AS _line"
    )
    orders(
        con,
        [
            ("1", "A", 1, 1.0, 10, None),  # line 2: as published (country unknown)
            ("1", "A", 1, 1.0, 10, "UK"),  # line 3: differs in the new column
        ],
    )
    out = run(
        'rules: [{name: copy, kind: uniqueness, columns: "*", action: quarantine,'
        " across_runs: true}]",
        reference_tables={"ds": "history"},
    )
    assert result(out, "copy").failing_rows == 1
    assert con.execute("SELECT _line FROM quarantine").fetchall() == [(2,)]


def test_uniqueness_across_runs_filters_and_casts_history_like_the_batch(con, run):
    """The ``where`` filter may name a column the history lacks, or ``_type_errors``; a
    history column of another type is cast, and a value that does not cast matches nothing."""
    con.execute(
        "CREATE TABLE history AS SELECT * FROM (VALUES "
        "('1', 'A', 'x', 'old.csv', 2::BIGINT), ('2', 'B', '5', 'old.csv', 3::BIGINT)) "
        "AS t(invoice_no, stock_code, quantity, _source_file, _line)"
    )
    orders(
        con,
        [
            ("1", "A", None, 1.0, 10, "UK"),  # line 2: history's quantity 'x' is no INTEGER
            ("2", "B", 5, 1.0, 10, "UK"),  # line 3: published as '5'
            ("2", "B", 5, 1.0, 10, "XX"),  # line 4: not selected by the filter
        ],
    )
    out = run(
        """
        rules:
          - {name: key, kind: uniqueness, columns: [invoice_no, stock_code, quantity],
             across_runs: true, where: "coalesce(country, '') <> 'XX' and len(_type_errors) = 0"}
        """,
        reference_tables={"ds": "history"},
    )
    key = result(out, "key")
    assert (key.failing_rows, key.rows_checked) == (1, 2)
    assert [s["line"] for s in key.sample] == [3]


def test_validity_null_passes_and_reason_shows_referenced_values(con, run):
    orders(
        con,
        [
            ("1", "A", 1, 2.5, 1, "UK"),
            ("2", "A", 1, -2.5, 1, "UK"),  # fails
            ("3", "B", 1, -9.0, 1, "UK"),  # bad-debt adjustment: allowed
            ("4", "A", 1, None, 1, "UK"),  # NULL: passes (completeness' business)
        ],
    )
    out = run(
        """
        rules:
          - {name: unit_price_not_negative, kind: validity, action: quarantine,
             expression: "unit_price >= 0 or stock_code = 'B'"}
        """
    )
    r = result(out, "unit_price_not_negative")
    assert (r.failing_rows, r.rows_checked) == (1, 4)
    assert r.passed is False  # 75% < 90% default validity threshold
    assert r.sample[0]["reason"] == "unit_price_not_negative: unit_price = -2.5, stock_code = 'A'"
    assert r.sample[0]["values"] == {"unit_price": -2.5, "stock_code": "A"}
    assert out.quarantined_rows == 1


def test_range_accepted_values_and_regex(con, run):
    orders(
        con,
        [
            ("536365", "85123A", 5, 1.0, 1, "UK"),
            ("536366", "POST", -7, 1.0, 1, "France"),  # below min
            ("536367", "X1", 200, 1.0, 1, "Narnia"),  # above max, bad code, unknown country
            ("536368", None, None, 1.0, 1, None),  # NULLs pass all three
        ],
    )
    out = run(
        r"""
        rules:
          - {name: qty, kind: range, column: quantity, min: -5, max: 100, action: quarantine}
          - {name: country_known, kind: accepted_values, column: country, values: [UK, France]}
          - {name: code, kind: regex, column: stock_code, action: quarantine,
             pattern: '^\d{5}[A-Za-z]*$|^(POST|DOT|M)$'}
        """
    )
    qty = result(out, "qty")
    assert qty.failing_rows == 2
    reasons = {s["line"]: s["reason"] for s in qty.sample}
    assert reasons == {3: "qty: quantity = -7 below min -5", 4: "qty: quantity = 200 above max 100"}
    country = result(out, "country_known")
    assert country.failing_rows == 1
    assert country.sample[0]["reason"] == "country_known: country = 'Narnia' is not accepted"
    code = result(out, "code")
    assert code.failing_rows == 1 and code.sample[0]["values"] == {"stock_code": "X1"}
    # Rows 3 and 4 (lines) quarantined; the unknown country is metric-only.
    lines = sorted(r[0] for r in con.execute("SELECT _line FROM quarantine").fetchall())
    assert lines == [3, 4]
    row4 = con.execute("SELECT reasons FROM quarantine WHERE _line = 4").fetchall()[0][0]
    assert row4 == [
        "qty: quantity = 200 above max 100",
        "country_known: country = 'Narnia' is not accepted",
        "code: stock_code = 'X1' does not match",
    ]


def test_referential_with_where_filter_and_type_difference(con, run):
    orders(
        con,
        [
            ("1", "85123", 1, 1.0, 1, "UK"),  # found
            ("2", "99999", 1, 1.0, 1, "UK"),  # orphan
            ("3", "POST", 1, 1.0, 1, "UK"),  # not a product code: where skips it
            ("4", None, 1, 1.0, 1, "UK"),  # NULL passes
            ("5", "99999", 1, 1.0, 1, "UK"),  # orphan again
        ],
    )
    # product ids are integers in the catalog, text in the orders: compared as text
    con.execute("CREATE TABLE catalog AS SELECT * FROM (VALUES (85123), (85123), (11111)) t(id)")
    out = run(
        r"""
        rules:
          - {name: product_exists, kind: referential, column: stock_code,
             references: {dataset: products, column: id},
             where: 'regexp_matches(stock_code, ''^\d{5}'')', action: quarantine, threshold: 0.5}
        """,
        reference_tables={"products": "catalog"},
    )
    r = result(out, "product_exists")
    assert (r.failing_rows, r.rows_checked) == (2, 3)  # rows_checked counts the where filter
    assert r.metric == 1 - 2 / 3 and not r.passed  # 33% < 50%
    assert r.blocking and out.blocking_failures == [r]
    assert r.sample[0]["reason"] == "product_exists: stock_code = '99999' not found in products.id"
    assert out.input_rows == 5 == out.accepted_rows + out.quarantined_rows


def test_referential_to_own_dataset_sees_this_batch(con, run):
    make_staged(
        con,
        {"order_id": "VARCHAR", "parent_id": "VARCHAR"},
        [("a", None), ("b", "a"), ("c", "zz")],
    )
    out = run(
        """
        rules:
          - {name: parent, kind: referential, column: parent_id,
             references: {dataset: ds, column: order_id}}
        """
    )
    assert result(out, "parent").failing_rows == 1


def test_freshness_on_files_names_the_stale_file(con, run):
    orders(con, [("1", "A", 1, 1.0, 1, "UK")])
    files = [
        ("s3://in/2024-03-10.csv", NOW - timedelta(hours=2)),
        ("s3://in/2024-03-01.csv", NOW - timedelta(hours=30)),
    ]
    out = run("rules: [{kind: freshness, on: file_modified, severity: warn}]", file_times=files)
    r = result(out, "freshness")
    assert not r.passed and r.severity == "warn"
    assert (r.failing_rows, r.rows_checked, r.metric, r.threshold) == (1, 2, 30.0, 24.0)
    assert r.sample[0]["file"] == "s3://in/2024-03-01.csv"
    assert out.blocking_failures == []
    fresh = run("rules: [{kind: freshness}]", file_times=files[:1], accepted_table="a2",
                quarantine_table="q2")  # fmt: skip
    assert result(fresh, "freshness").passed
    nothing = run("rules: [{kind: freshness}]", accepted_table="a3", quarantine_table="q3")
    assert result(nothing, "freshness").passed


def test_freshness_on_a_column(con, run):
    make_staged(
        con,
        {"activity_at": "TIMESTAMP", "activity_date": "DATE"},
        [(datetime(2024, 3, 9, 6), date(2024, 3, 8)), (datetime(2024, 3, 10, 1), date(2024, 3, 9))],
    )
    out = run(
        """
        rules:
          - {kind: freshness, on: column, column: activity_at, max_age_hours: 12}
          - {kind: freshness, on: column, column: activity_date, max_age_hours: 12}
          - {name: strict, kind: freshness, on: column, column: activity_at, max_age_hours: 10}
        """
    )
    ts = result(out, "freshness_activity_at")
    assert ts.passed and ts.metric == 11.0  # newest 01:00, now 12:00
    # A DATE is fresh until the end of its day: 2024-03-09 ends 2024-03-10 00:00 -> 12 h.
    assert result(out, "freshness_activity_date").metric == 12.0
    assert result(out, "freshness_activity_date").passed
    strict = result(out, "strict")
    assert not strict.passed and strict.failing_rows == 2
    assert [r.rule for r in out.blocking_failures] == ["strict"]


def test_volume_min_rows_and_change(con, run):
    orders(con, [("1", "A", 1, 1.0, 1, "UK"), ("2", "A", -1, 1.0, 1, "UK")])
    rules = """
    rules:
      - {kind: range, column: quantity, min: 0, action: quarantine}
      - {kind: volume, min_rows: 1, max_change_pct: 50}
    """
    ok = run(rules, previous_rows=2)  # 1 accepted vs 2: exactly 50% change passes
    vol = result(ok, "volume")
    assert vol.passed and vol.metric == 1.0 and vol.threshold == 1.0
    swing = run(rules, previous_rows=3, accepted_table="a2", quarantine_table="q2")
    assert not result(swing, "volume").passed
    assert "66.7% change" in result(swing, "volume").message
    first = run(rules, previous_rows=None, accepted_table="a3", quarantine_table="q3")
    assert result(first, "volume").passed


def test_type_errors_per_column_other_and_clean(con, run):
    orders(
        con,
        [
            ("1", "A", None, None, 1, "UK"),
            ("2", "A", None, 1.0, 1, "UK"),
            ("3", "A", 1, 1, 1, "UK"),
        ],
        type_errors={
            0: ["quantity: 'x' is not an INTEGER", "unit_price: '1,5' is not a DOUBLE"],
            1: ["quantity: '' is not an INTEGER", "mystery: unexpected"],
        },
    )
    out = run("rules: []")
    assert result(out, "type:quantity").failing_rows == 2
    assert result(out, "type:unit_price").failing_rows == 1
    assert result(out, "type:other").failing_rows == 1
    assert (
        result(out, "type:quantity").sample[0]["reason"] == "type:quantity: 'x' is not an INTEGER"
    )
    assert out.quarantined_rows == 2
    reasons = con.execute("SELECT reasons FROM quarantine WHERE _line = 2").fetchall()[0][0]
    assert reasons == [
        "type:quantity: 'x' is not an INTEGER",
        "type:unit_price: '1,5' is not a DOUBLE",
    ]
    con.execute("DELETE FROM staged WHERE _line < 4")
    clean = run("rules: []", accepted_table="a2", quarantine_table="q2")
    assert [r.rule for r in clean.results] == ["type:*"] and clean.results[0].passed
