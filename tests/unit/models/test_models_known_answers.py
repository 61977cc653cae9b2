"""Known-answer tests: hand-built inputs (conftest KNOWN_*), hand-computed star schema."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import duckdb
import pytest
from models_fixtures import load_known_sources

from retailhub.models import build_models, load_models, test_models


def key(natural_key: str) -> int:
    """Independent implementation of rh_surrogate_key: 60 bits of the MD5, as an integer."""
    return int(hashlib.md5(natural_key.encode()).hexdigest()[:15], 16)


D = Decimal


@pytest.fixture
def star(con: duckdb.DuckDBPyConnection, known_sources: dict[str, str]):
    built = build_models(con, load_models(), known_sources)
    return con, built


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    rel = con.sql(sql)
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def sales_line(con, order_id: str, order_line: int) -> dict:
    found = rows(
        con,
        f"select * from core.fct_sales where order_id = '{order_id}' and order_line = {order_line}",
    )
    assert len(found) == 1, (order_id, order_line)
    return found[0]


def test_fct_sales_has_one_row_per_accepted_line(star):
    con, _ = star
    counts = dict(
        con.sql("select source_system, count(*) from core.fct_sales group by 1").fetchall()
    )
    assert counts == {"online_retail": 8, "superstore": 3}


def test_online_retail_sale_amounts_keys_and_cost_from_catalog(star):
    con, _ = star
    line = sales_line(con, "536365", 1)
    assert line["sales_key"] == key("online_retail|536365") ^ 1
    assert sales_line(con, "536365", 2)["sales_key"] == key("online_retail|536365") ^ 2
    assert line["product_id"] == "85123A"
    assert line["order_at"] == dt.datetime(2010, 12, 1, 8, 26)
    assert line["order_date"] == dt.date(2010, 12, 1)
    assert line["date_key"] == 20101201
    assert line["customer_key"] == key("online|17850")
    assert line["customer_id"] == "17850"
    assert line["product_key"] == key("product|85123A")
    assert line["geography_key"] == key("geo|United Kingdom||||")
    assert line["channel_key"] == key("channel|web")
    assert (line["quantity"], line["unit_price"]) == (6, D("2.5500"))
    assert line["gross_amount"] == D("15.3000")
    assert line["discount_amount"] == D("0")
    assert line["net_amount"] == D("15.3000")
    assert line["cost_amount"] == D("7.2000")  # 6 x catalog unit_cost 1.20
    assert line["profit_amount"] == D("8.1000")
    assert line["currency_code"] == "GBP"
    assert (line["is_cancellation"], line["is_adjustment"], line["is_product"]) == (
        False,
        False,
        True,
    )
    assert (line["_source_file"], line["_line"]) == ("test.csv", 2)


def test_invoice_spanning_two_minutes_gets_one_order_time_and_numbered_lines(star):
    con, _ = star
    post = sales_line(con, "536365", 2)
    assert post["product_id"] == "POST"
    assert post["order_at"] == dt.datetime(2010, 12, 1, 8, 26)  # the line itself says 08:27
    assert post["is_product"] is False
    assert post["net_amount"] == D("18.0000")
    assert post["cost_amount"] is None and post["profit_amount"] is None


def test_cancellation_is_negative_and_flagged(star):
    con, _ = star
    line = sales_line(con, "C536383", 1)
    assert line["is_cancellation"] is True
    assert line["is_adjustment"] is False
    assert line["quantity"] == -1
    assert line["net_amount"] == D("-4.6500")
    assert line["customer_key"] == key("online|15311")


def test_bad_debt_and_stock_adjustments_are_adjustments_without_customer(star):
    con, _ = star
    bad_debt = sales_line(con, "A563185", 1)
    assert bad_debt["is_adjustment"] is True
    assert bad_debt["is_product"] is False
    assert bad_debt["customer_key"] == 0 and bad_debt["customer_id"] is None
    assert bad_debt["net_amount"] == D("11062.0600")
    assert bad_debt["date_key"] == 20110812
    found = sales_line(con, "536414", 1)
    assert (found["is_adjustment"], found["is_product"], found["net_amount"]) == (True, True, 0)
    written_off = sales_line(con, "536589", 1)
    assert (written_off["is_adjustment"], written_off["quantity"]) == (True, -10)


def test_lower_case_stock_code_is_the_same_product_and_eire_is_ireland(star):
    con, _ = star
    line = sales_line(con, "536370", 1)
    assert line["product_id"] == "85123A"
    assert line["product_key"] == key("product|85123A")
    assert line["geography_key"] == key("geo|Ireland||||")
    assert line["net_amount"] == D("35.4000")
    assert line["cost_amount"] == D("14.4000")
    assert line["profit_amount"] == D("21.0000")


def test_unspecified_country_goes_to_the_unknown_geography(star):
    con, _ = star
    assert sales_line(con, "549687", 1)["geography_key"] == 0


def test_superstore_discount_gives_list_price_and_discount_amount(star):
    con, _ = star
    line = sales_line(con, "US-2017-108966", 1)
    assert line["sales_key"] == key("superstore|US-2017-108966") ^ 1
    assert line["gross_amount"] == D("1741.0500")  # 957.5775 / (1 - 0.45)
    assert line["unit_price"] == D("348.2100")  # 1741.05 / 5
    assert line["discount_amount"] == D("783.4725")
    assert line["net_amount"] == D("957.5775")
    assert line["profit_amount"] == D("-383.0310")
    assert line["cost_amount"] == D("1340.6085")  # net - profit
    assert line["channel_key"] == key("channel|store")
    assert line["currency_code"] == "USD"
    assert line["order_at"] == dt.datetime(2017, 10, 11)
    assert line["customer_key"] == key("superstore|SO-20335")
    assert line["geography_key"] == key("geo|United States|South|Florida|Fort Lauderdale|33311")


def test_superstore_zip_is_padded_and_nbsp_removed_from_product_name(star):
    con, _ = star
    line = sales_line(con, "CA-2019-100001", 1)
    assert line["gross_amount"] == D("16.2000")
    assert line["discount_amount"] == D("3.2400")
    assert line["cost_amount"] == D("8.4240")
    geo = rows(
        con, f"select * from core.dim_geography where geography_key = {line['geography_key']}"
    )
    assert geo[0]["postal_code"] == "06824"
    assert geo[0]["country"] == "United States"
    product = rows(con, f"select * from core.dim_product where product_key = {line['product_key']}")
    assert product[0]["product_name"] == "Xerox 1967"
    assert line["product_key"] == key("superstore|OFF-PA-10000001|Xerox 1967")


def test_dim_customer_conforms_online_retail_and_behaviour(star):
    con, _ = star
    customers = {r["customer_key"]: r for r in rows(con, "select * from core.dim_customer")}
    assert len(customers) == 8  # 4 online + 1 behaviour-only + 2 superstore + unknown
    jane = customers[key("online|17850")]
    assert jane["source_system"] == "online_retail"
    assert (jane["has_sales"], jane["has_behaviour"]) == (True, True)
    assert jane["customer_name"] == "Jane Doe"
    assert jane["email"] == "jane@example.com"
    assert jane["age"] == 40
    assert jane["purchase_frequency"] == "Fortnightly"  # was Bi-Weekly
    assert jane["country"] == "United Kingdom"  # sales country wins over the profile's
    assert jane["first_order_date"] == dt.date(2010, 12, 1)
    kaggle = customers[key("online|99")]  # '0099' normalised
    assert kaggle["source_system"] == "customer_behaviour"
    assert (kaggle["purchase_frequency"], kaggle["is_subscribed"]) == ("Quarterly", True)
    assert kaggle["has_sales"] is False
    claire = customers[key("superstore|CG-12520")]
    assert claire["customer_name"] == "Claire Gute"
    assert claire["segment"] == "Consumer"
    assert claire["order_count"] == 2
    assert (claire["first_order_date"], claire["last_order_date"]) == (
        dt.date(2018, 11, 8),
        dt.date(2019, 1, 5),
    )
    assert customers[0]["is_unknown"] is True


def test_dim_product_membership_names_and_catalog(star):
    con, _ = star
    products = {r["product_key"]: r for r in rows(con, "select * from core.dim_product")}
    assert len(products) == 12  # 7 stock codes + 3 superstore + 1 catalog-only + unknown
    heart = products[key("product|85123A")]
    assert heart["product_name"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert (heart["category"], heart["brand"], heart["unit_cost"]) == (
        "Home",
        "Hearts Co",
        D("1.2000"),
    )
    assert heart["is_in_catalog"] is True
    post = products[key("product|POST")]
    assert (post["is_product"], post["non_product_kind"]) == (False, "postage")
    assert products[key("product|B")]["non_product_kind"] == "bad_debt"
    assert products[key("product|35004C")]["product_name"] == "SET OF 3 COLOURED FLYING DUCKS"
    assert products[key("product|22139")]["product_name"] is None
    catalog_only = products[key("product|ZZ-ONLY")]
    assert (catalog_only["source_system"], catalog_only["product_name"]) == (
        "product_catalog",
        "New name",  # the last-listed catalog row wins
    )


def test_dim_geography_channel_and_date(star):
    con, _ = star
    countries = sorted(r[0] for r in con.sql("select country from core.dim_geography").fetchall())
    assert countries == [
        "Ireland",
        "United Kingdom",
        "United States",
        "United States",
        "United States",
        "Unknown",
    ]
    channels = dict(con.sql("select channel_name, channel_type from core.dim_channel").fetchall())
    assert channels == {
        "web": "online",
        "mobile": "online",
        "marketplace": "online",
        "store": "offline",
        "unknown": "unknown",
    }
    first, last = dt.date(2010, 12, 1), dt.date(2019, 1, 5)
    count, lo, hi = con.sql(
        "select count(*), min(date), max(date) from core.dim_date where date_key <> 0"
    ).fetchall()[0]
    assert (count, lo, hi) == ((last - first).days + 1, first, last)
    day = rows(con, "select * from core.dim_date where date_key = 20110102")[0]
    assert day == {
        "date_key": 20110102,
        "date": dt.date(2011, 1, 2),
        "year": 2011,
        "quarter": 1,
        "month": 1,
        "month_name": "January",
        "day_of_month": 2,
        "week_of_year": 52,
        "iso_week": "2010-W52",
        "day_of_week": 7,
        "day_name": "Sunday",
        "is_weekend": True,
        "is_month_end": False,
    }
    assert con.sql(
        "select is_month_end from core.dim_date where date_key = 20120229"
    ).fetchall() == [(True,)]


def test_fct_customer_activity_grain_and_unknown_members(star):
    con, _ = star
    activity = {r["customer_key"]: r for r in rows(con, "select * from core.fct_customer_activity")}
    assert len(activity) == 2
    jane = activity[key("online|17850")]
    assert jane["activity_key"] == key("activity|online|17850|20101201|web")
    assert (jane["date_key"], jane["channel_key"]) == (20101201, key("channel|web"))
    assert (jane["sessions"], jane["page_views"], jane["cart_adds"], jane["orders"]) == (
        4,
        14,
        2,
        1,
    )
    assert jane["spend_amount"] == D("33.3000")
    kaggle = activity[key("online|99")]
    assert (kaggle["date_key"], kaggle["channel_key"], kaggle["orders"]) == (0, 0, 1)
    assert kaggle["spend_amount"] == D("53.0000")


def test_sidecar_column_tests_pass(star):
    con, built = star
    assert test_models(con, built) == []


def _snapshot(con: duckdb.DuckDBPyConnection, built) -> dict[str, list[tuple]]:
    return {
        b.name: sorted(con.sql(f"select * from {b.relation}").fetchall(), key=repr) for b in built
    }


def test_building_twice_and_in_any_scan_order_gives_identical_tables():
    first = duckdb.connect()
    built = build_models(first, load_models(), load_known_sources(first))
    snapshot = _snapshot(first, built)
    rebuilt = build_models(first, load_models(), load_known_sources(first))
    assert _snapshot(first, rebuilt) == snapshot
    other = duckdb.connect()
    reversed_build = build_models(other, load_models(), load_known_sources(other, reverse=True))
    assert _snapshot(other, reversed_build) == snapshot


def test_empty_sources_build_empty_facts_and_unknown_members(con, empty_sources):
    built = {b.name: b.rows for b in build_models(con, load_models(), empty_sources)}
    assert built["fct_sales"] == 0
    assert built["fct_customer_activity"] == 0
    assert built["dim_customer"] == built["dim_product"] == built["dim_geography"] == 1
    assert built["dim_date"] == 1
    assert built["dim_channel"] == 5


def test_order_lines_are_numbered_by_file_and_line_whether_or_not_contiguous(con):
    """Lines of an invoice are numbered 1..n by (file, line): contiguous, interleaved with
    another invoice, or split over two files."""
    from models_fixtures import create_empty_sources, insert_rows

    sources = create_empty_sources(con)

    def line(invoice: str, file: str, number: int, stock: str = "85123A") -> dict:
        return {
            "invoice_no": invoice,
            "stock_code": stock,
            "description": "X",
            "quantity": 1,
            "invoice_at": "2011-01-03 10:00:00",
            "unit_price": 1.0,
            "customer_id": "12345",
            "country": "France",
            "_source_file": file,
            "_line": number,
            "_unit_id": file,
        }

    insert_rows(
        con,
        sources["online_retail"],
        [
            line("100", "a.csv", 2),  # 100 and 101 interleave in a.csv
            line("101", "a.csv", 3),
            line("100", "a.csv", 4),
            line("102", "a.csv", 5),  # 102 continues in b.csv (which sorts after a.csv)
            line("102", "b.csv", 2),
            line("103", "b.csv", 7),  # contiguous, not starting at line 2
            line("103", "b.csv", 8, "22423"),
        ],
    )
    build_models(con, load_models(), sources)
    numbered = con.sql(
        "select order_id, _source_file, _line, order_line from core.fct_sales order by all"
    ).fetchall()
    assert numbered == [
        ("100", "a.csv", 2, 1),
        ("100", "a.csv", 4, 2),
        ("101", "a.csv", 3, 1),
        ("102", "a.csv", 5, 1),
        ("102", "b.csv", 2, 2),
        ("103", "b.csv", 7, 1),
        ("103", "b.csv", 8, 2),
    ]
