"""A deterministic, quirk-dense synthetic input for the models, built in SQL.

The known-answer rows pin exact values on a dozen lines; these tables exercise the shortcuts
the models take for speed on many rows at once: invoices whose lines are scattered over two
files and over customers and countries, an invoice spanning two minutes, repeated file lines,
NULL and aliased countries, several spellings of one place, missing ZIPs, behaviour rows tied
on everything that ranks them. Pseudo-randomness is ``hash(i || ':salt') >> 11``, so every
build of the same size sees the same rows. The salt is hashed with the number as one string:
DuckDB combines the hashes of separate arguments so that different salts give correlated
values.
"""

from __future__ import annotations

import duckdb
from models_fixtures import create_empty_sources


def _pick(values: list[str | None], salt: str) -> str:
    """A SQL CASE choosing one of ``values`` by the hash of row ``i`` and ``salt``."""
    literals = ["null" if v is None else "'" + v.replace("'", "''") + "'" for v in values]
    branches = " ".join(f"when {n} then {lit}" for n, lit in enumerate(literals))
    return f"(case (hash(i || ':{salt}') >> 11) % {len(values)} {branches} end)"


COUNTRIES = ["United Kingdom", "EIRE", " eire", "Unspecified", None, "USA", "France", "RSA "]
STOCK_CODES = ["85123A", "85123a", " 22423", "POST", "M", "m", "gift_0001_10", "DCGS0003", "B"]
DESCRIPTIONS = ["WHITE HANGING HEART", "WHITE  HANGING HEART ", "white\u00a0heart", None, ""]
CUSTOMERS = ["17850", "17850.0", "0099", "99", None, "13047", "12583", "20001"]


def load_synthetic_sources(
    con: duckdb.DuckDBPyConnection, rows: int = 20_000, schema: str = "syn"
) -> dict[str, str]:
    """Fill canonical tables with ``rows`` Online Retail lines and proportionate others."""
    relations = create_empty_sources(con, schema)
    invoices = max(rows // 12, 10)
    con.execute(
        f"""
        insert into {relations["online_retail"]}
        select
            case when (hash(i || ':cancel') >> 11) % 25 = 0 then 'C' else '' end
                || cast(536000 + (hash(i || ':invoice') >> 11) % {invoices} as varchar)
                as invoice_no,
            {_pick(STOCK_CODES, "code")} as stock_code,
            {_pick(DESCRIPTIONS, "description")} as description,
            cast((hash(i || ':quantity') >> 11) % 24 as bigint) - 6 as quantity,
            timestamp '2010-12-01 08:00:00'
                + to_minutes(cast((hash(i || ':invoice') >> 11) % {invoices} * 7 as bigint))
                + to_minutes(cast((hash(i || ':minute') >> 11) % 2 as bigint)) as invoice_at,
            ((hash(i || ':price') >> 11) % 500) / 100.0 as unit_price,
            case when (hash(i || ':quirky') >> 11) % 4 = 0 then {_pick(CUSTOMERS, "customer")}
                 else cast(12000 + (hash(i || ':invoice') >> 11) % {invoices} % 400 as varchar)
            end as customer_id,
            {_pick(COUNTRIES, "country")} as country,
            'online_retail' as _source,
            case when (hash(i || ':file') >> 11) % 3 = 0 then 'b.csv' else 'a.csv' end
                as _source_file,
            -- every 50th line repeats its neighbour's number: a file line loaded twice
            cast(i - case when i % 50 = 0 then 1 else 0 end as bigint) as _line,
            'unit-' || cast(i % 7 as varchar) as _unit_id
        from range({rows}) as t (i)
        """
    )
    store_rows = max(rows // 10, 10)
    product_names = _pick(["Bush Somerset", "Xerox\u00a01967", "Xerox 1967"], "pname")
    con.execute(
        f"""
        insert into {relations["superstore"]}
        select
            n + 1 as row_id,
            'CA-' || cast((hash(i || ':order') >> 11) % {max(store_rows // 3, 3)} as varchar)
                as order_id,
            date '2017-01-01' + cast((hash(i || ':order') >> 11) % 300 as integer) as order_date,
            date '2017-01-05' + cast((hash(i || ':order') >> 11) % 300 as integer) as ship_date,
            {_pick(["Standard Class", "First Class", None], "mode")} as ship_mode,
            'SC-' || cast((hash(i || ':order') >> 11) % 90 as varchar) as customer_id,
            {_pick(["Claire Gute", "Darrin  Van Huff", "Sean O'Donnell"], "sname")}
                as customer_name,
            {_pick(["Consumer", "Corporate"], "segment")} as segment,
            {_pick(["United States", "USA", "United States of America"], "scountry")} as country,
            {_pick(["Henderson", "Burlington", "Fort Lauderdale"], "city")} as city,
            {_pick(["Kentucky", "Vermont", "Florida"], "state")} as state,
            {_pick(["42420", "6824", None, ""], "zip")} as postal_code,
            {_pick(["South", "East", None], "region")} as region,
            {_pick(["FUR-BO-10001798", "OFF-PA-10000001", "85123A"], "sproduct")}
                as product_id,
            'Furniture' as category,
            'Bookcases' as sub_category,
            {product_names} as product_name,
            ((hash(i || ':sales') >> 11) % 100000) / 100.0 as sales,
            cast((hash(i || ':squantity') >> 11) % 5 + 1 as bigint) as quantity,
            {_pick(["0", "0.2", "0.45"], "discount")}::double as discount,
            ((hash(i || ':profit') >> 11) % 2000) / 100.0 - 5 as profit,
            'superstore' as _source,
            'store.csv' as _source_file,
            cast(n + 2 as bigint) as _line,
            'store-unit' as _unit_id
        -- every 40th row repeats the previous one in everything but Row ID
        from (select case when i % 40 = 39 then i - 1 else i end as i, i as n
              from range({store_rows}) as t (i)) as r
        """
    )
    con.execute(
        f"""
        insert into {relations["product_catalog"]}
        select
            {_pick(["85123a", "22423", "FUR-BO-10001798", "CAT-ONLY-1", None], "cid")}
                as product_id,
            {_pick(["Heart holder", None], "cname")} as product_name,
            'Home' as category, 'Decor' as sub_category, 'Acme' as brand,
            100.0 as weight_g, 1.0 as length_cm, 2.0 as width_cm, 3.0 as height_cm,
            ((hash(i || ':list') >> 11) % 900) / 100.0 as list_price,
            ((hash(i || ':cost') >> 11) % 300) / 100.0 as unit_cost,
            'catalog' as _source,
            case when i % 2 = 0 then 'cat1.csv' else 'cat2.csv' end as _source_file,
            cast(i as bigint) as _line,
            'cat-unit' as _unit_id
        from range(40) as t (i)
        """
    )
    behaviour_rows = max(rows // 4, 10)
    con.execute(
        f"""
        insert into {relations["customer_behaviour"]}
        select
            case when (hash(i || ':bquirky') >> 11) % 4 = 0
                 then {_pick(["17850", "17850.0", "99", "20001", "30000", None], "bcust")}
                 else cast(12200 + (hash(i || ':bcust') >> 11) % 400 as varchar)
            end as customer_id,
            case when (hash(i || ':bdate') >> 11) % 9 = 0 then null
                 else date '2011-01-01' + cast((hash(i || ':bdate') >> 11) % 60 as integer) end
                as activity_date,
            {_pick(["web", "Mobile", " store", "kiosk", None], "channel")} as channel,
            cast((hash(i || ':sessions') >> 11) % 5 as bigint) as sessions,
            cast((hash(i || ':views') >> 11) % 20 as bigint) as page_views,
            cast((hash(i || ':carts') >> 11) % 3 as bigint) as cart_adds,
            case when (hash(i || ':orders') >> 11) % 4 = 0 then null
                 else cast((hash(i || ':orders') >> 11) % 2 as bigint) end as orders,
            case when (hash(i || ':spend') >> 11) % 4 = 0 then null
                 else ((hash(i || ':spend') >> 11) % 10000) / 100.0 end as spend,
            case when (hash(i || ':profile') >> 11) % 3 = 0 then null
                 else 'Name ' || cast((hash(i || ':pname') >> 11) % 7 as varchar)
            end as customer_name,
            case when (hash(i || ':profile') >> 11) % 3 = 0 then null
                 else 'c' || cast((hash(i || ':pname') >> 11) % 7 as varchar) || '@x.org'
            end as email,
            cast(20 + (hash(i || ':age') >> 11) % 50 as bigint) as age,
            {_pick(["Female", "Male", None], "gender")} as gender,
            {_pick(["EIRE", "United Kingdom", None], "bcountry")} as country,
            {_pick(["Gold", "Silver", None], "tier")} as loyalty_tier,
            date '2010-01-01' + cast((hash(i || ':signup') >> 11) % 300 as integer) as signup_date,
            null as item_purchased, null as category,
            case when (hash(i || ':amount') >> 11) % 5 = 0 then 50.0 end as purchase_amount,
            'Kentucky' as location, null as size, null as color, null as season,
            null as review_rating,
            (hash(i || ':sub') >> 11) % 2 = 0 as subscription_status,
            {_pick(["Express", "Free Shipping"], "ship")} as shipping_type,
            (hash(i || ':disc') >> 11) % 2 = 0 as discount_applied,
            (hash(i || ':disc') >> 11) % 2 = 0 as promo_code_used,
            cast((hash(i || ':prev') >> 11) % 40 as bigint) as previous_purchases,
            {_pick(["Venmo", "Cash"], "pay")} as payment_method,
            {_pick(["Bi-Weekly", "Every 3 Months", "Weekly", None], "freq")}
                as purchase_frequency,
            'behaviour' as _source,
            'behaviour.csv' as _source_file,
            -- every 30th row repeats a line number: rows tied on all that ranks them
            cast(i - case when i % 30 = 0 then 1 else 0 end as bigint) as _line,
            'behaviour-unit' as _unit_id
        from range({behaviour_rows}) as t (i)
        """
    )
    return relations
