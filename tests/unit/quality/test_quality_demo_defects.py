"""Known answers from the demo generator: every injected defect is found, exactly.

The generator writes ``defects.json`` with the count of each (dataset, kind, column); staging the
files through the real layouts and running the rules must report the same failing rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from tests.unit.quality.quality_helpers import result, rules_of

from retailhub.config.quality import DatasetQualityConfig, layout_rules

pytestmark = pytest.mark.slow

RULE_FOR = {
    ("missing_value", "customer_id"): "completeness_customer_id",
    ("missing_value", "description"): "completeness_description",
    ("duplicate_row", None): "no_exact_duplicates",
    ("negative_price", "unit_price"): "price_not_negative",
    ("impossible_date", "invoice_at"): "type:invoice_at",
    ("non_numeric", "quantity"): "type:quantity",
    ("bad_code", "stock_code"): "stock_code_format",
    ("bad_code", "country"): "country_known",
    ("orphan_key", "stock_code"): "product_exists",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    generate = pytest.importorskip("retailhub.demo").generate
    out = tmp_path_factory.mktemp("demo")
    generate(out, 20_000, seed=3, defect_rate=0.05)
    return out


def stage(con, root: Path, dataset: str, pattern: str) -> str:
    layout = pytest.importorskip("retailhub.sources.layout").get_layout(dataset)
    landing = f"land_{dataset}"
    con.execute(
        f"""
        CREATE TABLE {landing} AS
        SELECT * EXCLUDE (filename), 'demo' AS _source,
               replace(filename, '{root}/', '') AS _source_file,
               row_number() OVER (PARTITION BY filename) + 1 AS _line, filename AS _unit_id
        FROM read_csv('{root}/{pattern}', header = true, all_varchar = true, filename = true)
        """
    )
    columns = [r[0] for r in con.execute(f"DESCRIBE {landing}").fetchall()]
    con.execute(f"CREATE TABLE stg_{dataset} AS {layout.staging_sql(landing, columns)}")
    return f"stg_{dataset}"


def test_online_retail_defects_are_counted_exactly(con, run, demo):
    staged = stage(con, demo, "online_retail", "online_retail/*.csv")
    catalog = stage(con, demo, "product_catalog", "product_catalog/*.csv")
    product_exists = rules_of(
        r"""
        rules:
          - {name: product_exists, kind: referential, column: stock_code, action: quarantine,
             references: {dataset: product_catalog, column: product_id},
             where: 'regexp_full_match(stock_code, ''\d{5}[A-Za-z]*'')'}
        """
    ).rules
    rules = DatasetQualityConfig(rules=layout_rules("online_retail") + product_exists)
    out = run(rules, staged, reference_tables={"product_catalog": catalog})
    defects = json.loads((demo / "defects.json").read_text())["defects"]
    expected = {
        RULE_FOR[(d["kind"], d["column"])]: d["count"]
        for d in defects
        if d["dataset"] == "online_retail"
    }
    assert len(expected) == len(RULE_FOR)
    found = {rule: result(out, rule).failing_rows for rule in expected}
    assert found == expected
    assert out.input_rows == out.accepted_rows + out.quarantined_rows


def test_stale_file_is_named(con, run, demo):
    staged = stage(con, demo, "customer_behaviour", "customer_behaviour/*.csv")
    files = sorted((demo / "customer_behaviour").glob("*.csv"))
    times = [(str(f), datetime.fromtimestamp(f.stat().st_mtime)) for f in files]
    out = run("rules: [{kind: freshness, severity: warn}]", staged, file_times=times,
              now=datetime.now())  # fmt: skip
    stale = [d for d in json.loads((demo / "defects.json").read_text())["defects"]
             if d["kind"] == "stale_file"]  # fmt: skip
    fresh = result(out, "freshness")
    assert fresh.failing_rows == len(stale) == 1
    assert Path(fresh.sample[0]["file"]).name == Path(stale[0]["file"]).name
