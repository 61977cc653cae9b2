"""Canonical source tables for the models tests, hand-built or read from the real files.

The sources layer (written elsewhere) hands the models one relation per dataset with the
canonical columns below. These helpers build exactly that shape, so the models are tested
against their contract, not against another layer's implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[3]


LINEAGE = {
    "_source": "varchar",
    "_source_file": "varchar",
    "_line": "bigint",
    "_unit_id": "varchar",
}

CANONICAL: dict[str, dict[str, str]] = {
    "online_retail": {
        "invoice_no": "varchar",
        "stock_code": "varchar",
        "description": "varchar",
        "quantity": "bigint",
        "invoice_at": "timestamp",
        "unit_price": "double",
        "customer_id": "varchar",
        "country": "varchar",
    },
    "superstore": {
        "row_id": "bigint",
        "order_id": "varchar",
        "order_date": "date",
        "ship_date": "date",
        "ship_mode": "varchar",
        "customer_id": "varchar",
        "customer_name": "varchar",
        "segment": "varchar",
        "country": "varchar",
        "city": "varchar",
        "state": "varchar",
        "postal_code": "varchar",
        "region": "varchar",
        "product_id": "varchar",
        "category": "varchar",
        "sub_category": "varchar",
        "product_name": "varchar",
        "sales": "double",
        "quantity": "bigint",
        "discount": "double",
        "profit": "double",
    },
    "product_catalog": {
        "product_id": "varchar",
        "product_name": "varchar",
        "category": "varchar",
        "sub_category": "varchar",
        "brand": "varchar",
        "weight_g": "double",
        "length_cm": "double",
        "width_cm": "double",
        "height_cm": "double",
        "list_price": "double",
        "unit_cost": "double",
    },
    "customer_behaviour": {
        "customer_id": "varchar",
        "activity_date": "date",
        "channel": "varchar",
        "sessions": "bigint",
        "page_views": "bigint",
        "cart_adds": "bigint",
        "orders": "bigint",
        "spend": "double",
        "customer_name": "varchar",
        "email": "varchar",
        "age": "bigint",
        "gender": "varchar",
        "country": "varchar",
        "loyalty_tier": "varchar",
        "signup_date": "date",
        "item_purchased": "varchar",
        "category": "varchar",
        "purchase_amount": "double",
        "location": "varchar",
        "size": "varchar",
        "color": "varchar",
        "season": "varchar",
        "review_rating": "double",
        "subscription_status": "boolean",
        "shipping_type": "varchar",
        "discount_applied": "boolean",
        "promo_code_used": "boolean",
        "previous_purchases": "bigint",
        "payment_method": "varchar",
        "purchase_frequency": "varchar",
    },
}


def create_empty_sources(con: duckdb.DuckDBPyConnection, schema: str = "src") -> dict[str, str]:
    """Create one empty canonical table per dataset; return dataset -> relation."""
    con.execute(f"create schema if not exists {schema}")
    relations = {}
    for dataset, columns in CANONICAL.items():
        cols = ", ".join(f"{n} {t}" for n, t in {**columns, **LINEAGE}.items())
        con.execute(f"create or replace table {schema}.{dataset} ({cols})")
        relations[dataset] = f"{schema}.{dataset}"
    return relations


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    rows: Sequence[dict[str, Any]],
    source_file: str = "test.csv",
) -> None:
    """Insert dict rows; lineage columns default to the test file and the row's position."""
    for position, row in enumerate(rows, start=2):
        full = {
            "_source": relation.split(".")[-1],
            "_source_file": source_file,
            "_line": position,
            **row,
        }
        full.setdefault("_unit_id", f"{full['_source_file']}:{full['_line']}")
        names = ", ".join(full)
        marks = ", ".join("?" for _ in full)
        con.execute(f"insert into {relation} ({names}) values ({marks})", list(full.values()))


def _lit(path: Path) -> str:
    """A path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def load_real_sources(
    con: duckdb.DuckDBPyConnection, datasets: Path, schema: str = "src"
) -> dict[str, str]:
    """Read the public datasets in place into canonical tables, applying the quality rules
    that matter for these files (exact duplicate UCI rows removed; nothing else is invalid).
    """
    relations = create_empty_sources(con, schema)
    uci = datasets / "online-retail" / "by-day" / "*.csv"
    # A materialised table keeps insertion order, so rowid gives each file's line order.
    con.execute(
        f"create or replace temp table raw_uci as select * from read_csv({_lit(uci)}, header=true, "
        "all_varchar=true, filename=true, quote='\"', escape='\"')"
    )
    con.execute(
        f"""
        insert into {schema}.online_retail
        with numbered as (
            select *, rowid - min(rowid) over (partition by filename) + 2 as line_no
            from raw_uci
        ),
        first_copies as (
            select * from numbered
            qualify row_number() over (
                partition by InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
                    UnitPrice, CustomerID, Country, filename
                order by line_no) = 1
        )
        select InvoiceNo, StockCode, Description, cast(Quantity as bigint),
            cast(InvoiceDate as timestamp), cast(UnitPrice as double),
            regexp_replace(CustomerID, '\\.0$', ''), Country,
            'online_retail', filename, line_no, filename || ':' || line_no
        from first_copies
        """
    )
    superstore = datasets / "superstore" / "Sample - Superstore.csv"
    con.execute(
        f"create or replace temp table raw_ss as select * from read_csv({_lit(superstore)}, "
        "header=true, all_varchar=true)"
    )
    con.execute(
        f"""
        insert into {schema}.superstore
        select cast("Row ID" as bigint), "Order ID", strptime("Order Date", '%m/%d/%Y')::date,
            strptime("Ship Date", '%m/%d/%Y')::date, "Ship Mode", "Customer ID",
            "Customer Name", Segment, Country, City, State, coalesce("Postal Code", ''), Region,
            "Product ID", Category, "Sub-Category", "Product Name", cast(Sales as double),
            cast(Quantity as bigint), cast(Discount as double), cast(Profit as double),
            'superstore', '{superstore.name}', rowid + 2, 'superstore:' || (rowid + 2)
        from raw_ss
        """
    )
    olist = datasets / "product-catalog" / "olist"
    ikea = datasets / "product-catalog" / "ikea" / "ikea.csv"
    con.execute(
        f"""
        insert into {schema}.product_catalog
        select p.product_id, null, coalesce(t.product_category_name_english,
            p.product_category_name), null, null, p.product_weight_g, p.product_length_cm,
            p.product_width_cm, p.product_height_cm, null, null,
            'olist', 'olist_products_dataset.csv', row_number() over () + 1, null
        from read_csv({_lit(olist / "olist_products_dataset.csv")}, header=true) p
        left join read_csv({_lit(olist / "product_category_name_translation.csv")}, header=true) t
            using (product_category_name)
        """
    )
    con.execute(
        f"""
        insert into {schema}.product_catalog
        select cast(item_id as varchar), name, category, null, null, null, depth, width,
            height, price, null, 'ikea', 'ikea.csv', cast(column00 as bigint) + 2, null
        from read_csv({_lit(ikea)}, header=true)
        """
    )
    behaviour = datasets / "customer-behavior" / "shopping_behavior_updated (raw).csv"
    con.execute(
        f"""
        insert into {schema}.customer_behaviour (customer_id, age, gender, item_purchased,
            category, purchase_amount, location, size, color, season, review_rating,
            subscription_status, shipping_type, discount_applied, promo_code_used,
            previous_purchases, payment_method, purchase_frequency, _source, _source_file,
            _line)
        select cast("Customer ID" as varchar), Age, Gender, "Item Purchased", Category,
            "Purchase Amount (USD)", Location, Size, Color, Season, "Review Rating",
            "Subscription Status" = 'Yes', "Shipping Type", "Discount Applied" = 'Yes',
            "Promo Code Used" = 'Yes',
            "Previous Purchases", "Payment Method", "Frequency of Purchases",
            'customer_behaviour', 'shopping_behavior_updated (raw).csv', "Customer ID" + 1
        from read_csv({_lit(behaviour)}, header=true)
        """
    )
    return relations


# --- Known-answer inputs -------------------------------------------------------------------
# Small hand-built rows, one per quirk; the expected values in test_models_known_answers.py
# are computed by hand from these.

NBSP = "\u00a0"

KNOWN_ONLINE_RETAIL: list[dict[str, Any]] = [
    # an invoice spanning two minutes, with a trailing-space description and a POST line
    {
        "invoice_no": "536365",
        "stock_code": "85123A",
        "description": "WHITE HANGING HEART T-LIGHT HOLDER ",
        "quantity": 6,
        "invoice_at": "2010-12-01 08:26:00",
        "unit_price": 2.55,
        "customer_id": "17850",
        "country": "United Kingdom",
    },
    {
        "invoice_no": "536365",
        "stock_code": "POST",
        "description": "POSTAGE",
        "quantity": 1,
        "invoice_at": "2010-12-01 08:27:00",
        "unit_price": 18.0,
        "customer_id": "17850",
        "country": "United Kingdom",
    },
    # a cancellation
    {
        "invoice_no": "C536383",
        "stock_code": "35004C",
        "description": "SET OF 3 COLOURED  FLYING DUCKS",
        "quantity": -1,
        "invoice_at": "2010-12-01 09:49:00",
        "unit_price": 4.65,
        "customer_id": "15311",
        "country": "United Kingdom",
    },
    # a bad-debt adjustment (no customer)
    {
        "invoice_no": "A563185",
        "stock_code": "B",
        "description": "Adjust bad debt",
        "quantity": 1,
        "invoice_at": "2011-08-12 14:50:00",
        "unit_price": 11062.06,
        "customer_id": None,
        "country": "United Kingdom",
    },
    # a stock adjustment: price 0, no customer, no description
    {
        "invoice_no": "536414",
        "stock_code": "22139",
        "description": None,
        "quantity": 56,
        "invoice_at": "2010-12-01 11:52:00",
        "unit_price": 0.0,
        "customer_id": None,
        "country": "United Kingdom",
    },
    # the same product as line 1 with a lower-case code, for an EIRE customer
    {
        "invoice_no": "536370",
        "stock_code": "85123a",
        "description": "WHITE HANGING HEART T-LIGHT HOLDER",
        "quantity": 12,
        "invoice_at": "2010-12-01 08:45:00",
        "unit_price": 2.95,
        "customer_id": "12583",
        "country": "EIRE",
    },
    # a negative stock write-off
    {
        "invoice_no": "536589",
        "stock_code": "21777",
        "description": "damaged",
        "quantity": -10,
        "invoice_at": "2010-12-01 16:50:00",
        "unit_price": 0.0,
        "customer_id": None,
        "country": "United Kingdom",
    },
    # an 'Unspecified' country
    {
        "invoice_no": "549687",
        "stock_code": "20685",
        "description": "DOORMAT RED RETROSPOT",
        "quantity": 2,
        "invoice_at": "2011-04-11 13:29:00",
        "unit_price": 7.95,
        "customer_id": "12363",
        "country": "Unspecified",
    },
]

_SS_ORDER = {"country": "United States", "segment": "Consumer"}
KNOWN_SUPERSTORE: list[dict[str, Any]] = [
    {
        **_SS_ORDER,
        "row_id": 1,
        "order_id": "CA-2018-152156",
        "order_date": "2018-11-08",
        "ship_date": "2018-11-11",
        "ship_mode": "Second Class",
        "customer_id": "CG-12520",
        "customer_name": "Claire Gute",
        "city": "Henderson",
        "state": "Kentucky",
        "postal_code": "42420",
        "region": "South",
        "product_id": "FUR-BO-10001798",
        "category": "Furniture",
        "sub_category": "Bookcases",
        "product_name": "Bush Somerset Collection Bookcase",
        "sales": 261.96,
        "quantity": 2,
        "discount": 0.0,
        "profit": 41.9136,
    },
    # a 45 % discount
    {
        **_SS_ORDER,
        "row_id": 4,
        "order_id": "US-2017-108966",
        "order_date": "2017-10-11",
        "ship_date": "2017-10-18",
        "ship_mode": "Standard Class",
        "customer_id": "SO-20335",
        "customer_name": "Sean O'Donnell",
        "city": "Fort Lauderdale",
        "state": "Florida",
        "postal_code": "33311",
        "region": "South",
        "product_id": "FUR-TA-10000577",
        "category": "Furniture",
        "sub_category": "Tables",
        "product_name": "Bretford CR4500 Series Slim Rectangular Table",
        "sales": 957.5775,
        "quantity": 5,
        "discount": 0.45,
        "profit": -383.031,
    },
    # a 4-digit ZIP and a no-break space in the product name, same customer as row 1
    {
        **_SS_ORDER,
        "row_id": 9,
        "order_id": "CA-2019-100001",
        "order_date": "2019-01-05",
        "ship_date": "2019-01-09",
        "ship_mode": "Standard Class",
        "customer_id": "CG-12520",
        "customer_name": "Claire Gute",
        "city": "Fairfield",
        "state": "Connecticut",
        "postal_code": "6824",
        "region": "East",
        "product_id": "OFF-PA-10000001",
        "category": "Office Supplies",
        "sub_category": "Paper",
        "product_name": f"Xerox{NBSP}1967",
        "sales": 12.96,
        "quantity": 2,
        "discount": 0.2,
        "profit": 4.536,
    },
]

KNOWN_CATALOG: list[dict[str, Any]] = [
    {
        "product_id": "85123A",
        "product_name": "Heart holder",
        "category": "Home",
        "brand": "Hearts Co",
        "list_price": 2.55,
        "unit_cost": 1.2,
        "weight_g": 300.0,
    },
    {"product_id": "zz-only", "product_name": "Old name", "category": "Misc"},
    {"product_id": "ZZ-ONLY", "product_name": "New name", "category": "Misc"},
]

KNOWN_BEHAVIOUR: list[dict[str, Any]] = [
    {
        "customer_id": "17850",
        "activity_date": "2010-12-01",
        "channel": "Web",
        "sessions": 3,
        "page_views": 10,
        "cart_adds": 2,
        "orders": 1,
        "spend": 33.3,
        "customer_name": "Jane Doe",
        "email": " JANE@EXAMPLE.COM",
        "age": 40,
        "gender": "Female",
        "country": "EIRE",
        "loyalty_tier": "gold",
        "purchase_frequency": "Bi-Weekly",
    },
    {
        "customer_id": "17850",
        "activity_date": "2010-12-01",
        "channel": "web ",
        "sessions": 1,
        "page_views": 4,
        "cart_adds": 0,
        "orders": 0,
        "spend": 0.0,
    },
    {
        "customer_id": "0099",
        "purchase_amount": 53.0,
        "purchase_frequency": "Every 3 Months",
        "subscription_status": True,
        "age": 55,
        "gender": "Male",
        "location": "Kentucky",
    },
]


def load_known_sources(
    con: duckdb.DuckDBPyConnection, schema: str = "src", reverse: bool = False
) -> dict[str, str]:
    """Create the canonical tables filled with the known-answer rows.

    ``reverse`` inserts every table's rows in reverse physical order (same _line values), to
    show that results depend on the data, not on the order the engine happens to scan it.
    """
    relations = create_empty_sources(con, schema)
    for dataset, rows in (
        ("online_retail", KNOWN_ONLINE_RETAIL),
        ("superstore", KNOWN_SUPERSTORE),
        ("product_catalog", KNOWN_CATALOG),
        ("customer_behaviour", KNOWN_BEHAVIOUR),
    ):
        numbered = [{"_line": i, **row} for i, row in enumerate(rows, start=2)]
        insert_rows(con, relations[dataset], numbered[::-1] if reverse else numbered)
    return relations
