"""The models on the real public datasets: counts and totals that SOURCE.md documents."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from models_fixtures import load_real_sources
from models_oracles import ORACLES
from tests.support import datasets_or_skip

from retailhub.models import build_models, load_models, test_models

pytestmark = pytest.mark.slow

UCI_ROWS = 541_909
UCI_EXACT_DUPLICATES = 5_268
SUPERSTORE_ROWS = 9_994


@pytest.fixture(scope="module")
def datasets() -> Path:
    return datasets_or_skip()


@pytest.fixture(scope="module")
def real(datasets: Path):
    con = duckdb.connect()
    sources = load_real_sources(con, datasets)
    built = build_models(con, load_models(), sources)
    yield con, built
    con.close()


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.sql(sql).fetchall()[0][0]


def test_fct_sales_has_every_accepted_line(real):
    con, _ = real
    counts = dict(
        con.sql("select source_system, count(*) from core.fct_sales group by 1").fetchall()
    )
    assert counts == {
        "online_retail": UCI_ROWS - UCI_EXACT_DUPLICATES,
        "superstore": SUPERSTORE_ROWS,
    }


def test_superstore_totals_match_the_published_ones(real):
    con, _ = real
    sales, profit = con.sql(
        "select sum(net_amount), sum(profit_amount) from core.fct_sales "
        "where source_system = 'superstore'"
    ).fetchall()[0]
    assert sales == Decimal("2297200.8603")
    assert profit == Decimal("286397.0217")
    # gross - discount = net on every line
    mismatched = (
        "select count(*) from core.fct_sales where gross_amount - discount_amount <> net_amount"
    )
    assert scalar(con, mismatched) == 0


def test_online_retail_revenue_equals_quantity_times_price_of_the_raw_rows(real, datasets):
    con, _ = real
    raw_total = scalar(
        con,
        f"""
        select sum(cast(Quantity as bigint) * cast(UnitPrice as decimal(18, 4)))
        from (select distinct * from read_csv('{datasets}/online-retail/by-day/*.csv',
              header=true, all_varchar=true))
        """,
    )
    net = "select sum(net_amount) from core.fct_sales where source_system = 'online_retail'"
    assert scalar(con, net) == raw_total


def test_superstore_zips_are_five_digits_and_only_burlington_vt_has_none(real):
    con, _ = real
    zips = con.sql(
        """
        select g.state, g.city, g.postal_code, count(*) as n
        from core.fct_sales f join core.dim_geography g using (geography_key)
        where f.source_system = 'superstore'
        group by all
        """
    ).fetchall()
    assert sum(n for *_, n in zips) == SUPERSTORE_ROWS
    missing = [(state, city, n) for state, city, zip_code, n in zips if zip_code is None]
    assert missing == [("Vermont", "Burlington", 11)]
    assert all(len(z) == 5 and z.isdigit() for _, _, z, _ in zips if z is not None)
    assert sum(n for _, _, z, n in zips if z is not None and z.startswith("0")) == 438


def test_quirk_counts_from_source_md(real):
    con, _ = real
    flags = con.sql(
        """
        select
            count(*) filter (where is_adjustment and order_id like 'A%'),
            count(distinct order_id) filter (where is_cancellation),
            count(*) filter (where is_duplicate_suspect),
            count(*) filter (where source_system = 'online_retail' and customer_key = 0)
        from core.fct_sales
        """
    ).fetchall()[0]
    bad_debt, cancelled_invoices, duplicate_suspects, no_customer = flags
    assert bad_debt == 3
    assert cancelled_invoices == 3_836
    assert duplicate_suspects == 1  # Superstore Row ID 3407 repeats 3406
    countries = {r[0] for r in con.sql("select country from core.dim_geography").fetchall()}
    assert {"Ireland", "South Africa", "European Community", "Unknown"} <= countries
    assert not {"EIRE", "RSA", "USA", "Unspecified"} & countries
    assert no_customer > 0


def test_dimensions_have_the_documented_members(real):
    con, _ = real
    customers = dict(
        con.sql("select source_system, count(*) from core.dim_customer group by 1").fetchall()
    )
    assert customers["online_retail"] == 4_372  # distinct UCI CustomerIDs
    assert customers["superstore"] == 793
    assert customers["customer_behaviour"] == 3_900  # no id overlaps UCI in the real files
    assert customers["unknown"] == 1
    products = dict(
        con.sql("select source_system, count(*) from core.dim_product group by 1").fetchall()
    )
    assert products["superstore"] == 1_894  # 1,862 IDs, 32 of them naming two products
    distinct_codes = scalar(
        con, "select count(distinct upper(trim(stock_code))) from src.online_retail"
    )
    assert products["online_retail"] == distinct_codes
    # 33 non-product codes in SOURCE.md's list, M and m being one after case normalisation
    non_products = "select count(*) from core.dim_product where not is_product and not is_unknown"
    assert scalar(con, non_products) == 32
    activity = scalar(con, "select count(*) from core.fct_customer_activity")
    assert activity == 3_900


def test_sidecar_column_tests_pass_on_real_data(real):
    con, built = real
    assert test_models(con, built) == []


@pytest.mark.parametrize("oracle", ORACLES, ids=lambda f: f.__name__)
def test_models_agree_with_the_reference_formulation_on_real_data(real, oracle):
    con, built = real
    assert oracle(con, built) == 0
