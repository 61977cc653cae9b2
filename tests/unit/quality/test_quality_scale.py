"""One million generated rows with defects planted at known positions: exact counts at scale.

Timing is measured by the benchmark harness, never asserted here.
"""

from __future__ import annotations

import pytest
from tests.unit.quality.quality_helpers import result

pytestmark = pytest.mark.slow

N = 1_000_000


@pytest.fixture
def big(con):
    con.execute(
        f"""
        CREATE TABLE staged AS
        SELECT cast(500000 + i // 4 AS VARCHAR) AS invoice_no,
               cast(10000 + (i * 7919) % 4000 AS VARCHAR) AS stock_code,
               cast(1 + i % 12 AS INTEGER) AS quantity,
               CASE WHEN i % 100000 = 7 THEN -1.5 ELSE 0.5 + (i % 300) / 100.0 END AS unit_price,
               CASE WHEN i % 4 = 0 THEN NULL ELSE 12000 + i % 5000 END AS customer_id,
               CASE WHEN i % 50000 = 3 THEN 'Narnia' ELSE 'United Kingdom' END AS country,
               'gen' AS _source, 'day-' || (i // 100000) || '.csv' AS _source_file,
               i % 100000 + 2 AS _line, 'u' AS _unit_id,
               CASE WHEN i % 200000 = 11 THEN ['quantity: ''x'' is not a valid INTEGER']
                    ELSE []::VARCHAR[] END AS _type_errors
        FROM range({N}) r(i)
        """
    )
    # 1% exact copies (rows with i % 100 = 3), at later line numbers of the same file.
    con.execute(
        "INSERT INTO staged BY NAME SELECT * REPLACE (_line + 1000000 AS _line) "
        "FROM staged WHERE _line % 100 = 5"
    )
    return "staged"


def test_counts_are_exact_at_a_million_rows(con, run, big):
    out = run(
        """
        rules:
          - {kind: completeness, column: customer_id, threshold: 0.7}
          - {name: dup, kind: uniqueness, columns: "*", action: quarantine}
          - {name: price, kind: validity, expression: "unit_price >= 0", action: quarantine}
          - {name: country, kind: accepted_values, column: country, values: [United Kingdom]}
          - {name: qty, kind: range, column: quantity, min: 1, max: 12, action: quarantine}
        """
    )
    assert out.input_rows == N + N // 100
    assert result(out, "completeness_customer_id").failing_rows == N // 4
    assert result(out, "dup").failing_rows == N // 100
    assert result(out, "price").failing_rows == N // 100_000
    # 20 Narnia rows, all with i % 100 = 3, so each also has a copy.
    assert result(out, "country").failing_rows == 2 * N // 50_000
    assert result(out, "qty").failing_rows == 0
    assert result(out, "type:quantity").failing_rows == N // 200_000
    assert out.quarantined_rows == N // 100 + N // 100_000 + N // 200_000
    assert all(len(r.sample) == 5 for r in out.results if r.failing_rows >= 5)
