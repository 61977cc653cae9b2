"""The built-in online_retail rules on the real UCI Online Retail data (known answers).

Counts from shared/datasets/online-retail/SOURCE.md: 541,909 rows, 135,080 without CustomerID,
1,454 without Description, 5,268 exact duplicate rows; cancellations, the two bad-debt
adjustments with negative prices and the non-product stock codes are all valid business rows.
"""

from __future__ import annotations

import pytest
from tests.unit.quality.quality_helpers import result

from retailhub.config.quality import DatasetQualityConfig, layout_rules

pytestmark = pytest.mark.slow


@pytest.fixture
def uci(con, datasets_dir):
    pattern = datasets_dir / "online-retail" / "by-day" / "*.csv"
    con.execute(
        f"""
        CREATE TABLE staged AS
        SELECT InvoiceNo AS invoice_no, StockCode AS stock_code,
               NULLIF(trim(Description), '') AS description,
               CAST(Quantity AS BIGINT) AS quantity, CAST(InvoiceDate AS TIMESTAMP) AS invoice_at,
               CAST(UnitPrice AS DECIMAL(18,4)) AS unit_price,
               CAST(CAST(CAST(CustomerID AS DOUBLE) AS BIGINT) AS VARCHAR) AS customer_id,
               Country AS country,
               'uci' AS _source, filename AS _source_file,
               row_number() OVER (PARTITION BY filename) + 1 AS _line,
               filename AS _unit_id, []::VARCHAR[] AS _type_errors
        FROM read_csv('{pattern}', header = true, all_varchar = true, filename = true)
        """
    )
    return "staged"


def test_default_rules_on_uci_online_retail(con, run, uci):
    out = run(DatasetQualityConfig(rules=layout_rules("online_retail")))
    assert out.input_rows == 541_909
    missing = result(out, "completeness_customer_id")
    assert missing.failing_rows == 135_080 and missing.passed and missing.severity == "warn"
    assert result(out, "completeness_description").failing_rows == 1_454
    assert result(out, "no_exact_duplicates").failing_rows == 5_268
    for valid in (
        "price_not_negative",
        "cancellation_has_negative_quantity",
        "stock_code_format",
        "invoice_no_format",
        "quantity_plausible",
        "country_known",
    ):
        assert result(out, valid).failing_rows == 0, valid
    # Only the duplicates leave; nothing blocks publication.
    assert (out.accepted_rows, out.quarantined_rows) == (541_909 - 5_268, 5_268)
    assert out.blocking_failures == []
    assert 90 < out.score < 100
