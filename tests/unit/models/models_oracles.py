"""Reference queries that restate, the slow and obvious way, what the models compute fast.

The models take shortcuts for speed: keys hashed once per member and joined, places
standardised once in int_places, a customer's order history read back from fct_sales, the
latest behaviour profile found by a narrow ranking. Each function here computes the same thing
straight from the lines (one hash per line, the alias join on every line, line numbers from
a window over whole rows) and returns the number of rows where the model and the reference
disagree, so a test can assert 0 on any input.
"""

from __future__ import annotations

import duckdb

from retailhub.models import BuiltModel


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.sql(sql).fetchall()[0][0])


def relations(built: list[BuiltModel]) -> dict[str, str]:
    return {b.name: b.relation for b in built}


def _expected_lines(r: dict[str, str]) -> str:
    """Every sales line with its keys computed on the line, as the models once did."""
    return f"""
        with lines as (
            select 'online_retail' as source_system, order_id,
                row_number() over (
                    partition by order_id order by _source_file, _line, stock_code, quantity
                ) as order_line,
                customer_nk,
                'product|' || stock_code as product_nk, country_raw,
                cast(null as varchar) as region, cast(null as varchar) as state,
                cast(null as varchar) as city, cast(null as varchar) as postal_code,
                'web' as channel_name
            from {r["stg_online_retail"]}
            union all
            select 'superstore', order_id, order_line, customer_nk,
                'superstore|' || product_id || '|' || coalesce(product_name, ''), country_raw,
                region, state, city, postal_code, 'store'
            from {r["stg_superstore"]}
        ),
        standardised as (
            select lines.*,
                case when a.country_alias is not null then a.country_name
                     else lines.country_raw end as country
            from lines
            left join {r["int_country_aliases"]} as a on upper(lines.country_raw) = a.country_alias
        )
        select
            source_system, order_id, order_line, country, region, state, city, postal_code,
            xor(rh_surrogate_key(source_system || '|' || order_id),
                cast(order_line as bigint)) as sales_key,
            coalesce(rh_surrogate_key(customer_nk), 0) as customer_key,
            coalesce(rh_surrogate_key(product_nk), 0) as product_key,
            coalesce(rh_surrogate_key(
                case when country is null and region is null and state is null
                    and city is null and postal_code is null then null
                else 'geo|' || coalesce(country, '') || '|' || coalesce(region, '') || '|'
                    || coalesce(state, '') || '|' || coalesce(city, '') || '|'
                    || coalesce(postal_code, '') end), 0) as geography_key,
            coalesce(rh_surrogate_key('channel|' || channel_name), 0) as channel_key
        from standardised
    """


def sales_key_mismatches(con: duckdb.DuckDBPyConnection, built: list[BuiltModel]) -> int:
    """fct_sales lines whose keys differ from hashing the line's natural keys (or are missing)."""
    r = relations(built)
    return _scalar(
        con,
        f"""
        select count(*) from ({_expected_lines(r)}) as e
        full join {r["fct_sales"]} as f
            on f.source_system = e.source_system and f.order_id = e.order_id
            and f.order_line = e.order_line
        where f.sales_key is distinct from e.sales_key
            or f.customer_key is distinct from e.customer_key
            or f.product_key is distinct from e.product_key
            or f.geography_key is distinct from e.geography_key
            or f.channel_key is distinct from e.channel_key
        """,
    )


def geography_mismatches(con: duckdb.DuckDBPyConnection, built: list[BuiltModel]) -> int:
    """Places in dim_geography and places of the lines, each side's rows missing on the other."""
    r = relations(built)
    places = f"""
        select distinct geography_key, country, region, state, city, postal_code
        from ({_expected_lines(r)}) as e where geography_key <> 0
    """
    dim = f"""
        select geography_key, country, region, state, city, postal_code
        from {r["dim_geography"]} where not is_unknown
    """
    return _scalar(
        con,
        f"select (select count(*) from ({places} except {dim}) a)"
        f" + (select count(*) from ({dim} except {places}) b)",
    )


def customer_history_mismatches(con: duckdb.DuckDBPyConnection, built: list[BuiltModel]) -> int:
    """int_customers order history against aggregating int_sales_lines line by line."""
    r = relations(built)
    return _scalar(
        con,
        f"""
        with lines as (select * from {r["int_sales_lines"]} where customer_nk is not null),
        expected as (
            select customer_nk, min(source_system) as source_system,
                min(customer_id) as customer_id,
                coalesce(min(case when not is_cancellation then order_date end),
                    min(order_date)) as first_order_date,
                max(order_date) as last_order_date,
                count(distinct order_id) as order_count
            from lines group by customer_nk
        ),
        latest_country as (
            select customer_nk, country from (
                select customer_nk, country, row_number() over (
                    partition by customer_nk order by order_at desc, order_id desc, country
                ) as rank_
                from lines where country is not null
            ) as ranked where rank_ = 1
        )
        select count(*)
        from expected
        left join latest_country using (customer_nk)
        full join (select * from {r["int_customers"]} where has_sales) as c using (customer_nk)
        where c.customer_nk is null or expected.customer_nk is null
            or c.source_system is distinct from expected.source_system
            or c.customer_id is distinct from expected.customer_id
            or c.first_order_date is distinct from expected.first_order_date
            or c.last_order_date is distinct from expected.last_order_date
            or c.order_count is distinct from expected.order_count
            or (latest_country.country is not null
                and c.country is distinct from latest_country.country)
        """,
    )


PROFILE = (
    "customer_name",
    "email",
    "age",
    "gender",
    "loyalty_tier",
    "signup_date",
    "location",
    "is_subscribed",
    "purchase_frequency",
    "payment_method",
    "shipping_type",
    "previous_purchases",
)


def behaviour_profile_mismatches(con: duckdb.DuckDBPyConnection, built: list[BuiltModel]) -> int:
    """Behaviour customers whose profile is not one of their best-ranked rows' profiles.

    Rows equal in everything that ranks them are equally latest, so any of them may give the
    profile; the reference accepts each of them.
    """
    r = relations(built)
    same = " and ".join(f"c.{col} is not distinct from best.{col}" for col in PROFILE)
    return _scalar(
        con,
        f"""
        with ranked as (
            select *, rank() over (
                partition by customer_nk
                order by
                    case when customer_name is not null or email is not null or age is not null
                        or gender is not null or country_raw is not null
                        or loyalty_tier is not null or signup_date is not null
                        or location is not null or purchase_frequency is not null
                    then 0 else 1 end,
                    activity_date desc nulls last, _source_file desc, _line desc
            ) as rank_
            from {r["stg_customer_behaviour"]} where customer_nk is not null
        ),
        best as (select * from ranked where rank_ = 1),
        customers as (select distinct customer_nk from best)
        select count(*)
        from customers
        full join (select * from {r["int_customers"]} where has_behaviour) as c using (customer_nk)
        where c.customer_nk is null or customers.customer_nk is null
            or not exists (select 1 from best where best.customer_nk = c.customer_nk and {same})
        """,
    )


def activity_key_mismatches(con: duckdb.DuckDBPyConnection, built: list[BuiltModel]) -> int:
    """fct_customer_activity rows whose keys differ from hashing each row's natural keys."""
    r = relations(built)
    return _scalar(
        con,
        f"""
        with expected as (
            select rh_surrogate_key('activity|' || coalesce(customer_nk, '') || '|'
                    || cast(date_key as varchar) || '|' || coalesce(channel, '')) as activity_key,
                coalesce(rh_surrogate_key(customer_nk), 0) as customer_key,
                coalesce(rh_surrogate_key('channel|' || channel), 0) as channel_key
            from (
                select distinct customer_nk, activity_date, channel,
                    coalesce(cast(strftime(activity_date, '%Y%m%d') as integer), 0) as date_key
                from {r["stg_customer_behaviour"]}
            ) as grains
        )
        select count(*)
        from expected
        full join {r["fct_customer_activity"]} as f using (activity_key)
        where f.activity_key is null or expected.activity_key is null
            or f.customer_key is distinct from expected.customer_key
            or f.channel_key is distinct from expected.channel_key
        """,
    )


def date_range_mismatches(con: duckdb.DuckDBPyConnection, built: list[BuiltModel]) -> int:
    """1 unless dim_date spans exactly the first to the last date of the lines and activity."""
    r = relations(built)
    return _scalar(
        con,
        f"""
        select case when
            (select min(date) from {r["dim_date"]}) is not distinct from
                (select min(d) from (select order_date as d from {r["int_sales_lines"]}
                    union all select activity_date from {r["stg_customer_behaviour"]}) as a)
            and (select max(date) from {r["dim_date"]}) is not distinct from
                (select max(d) from (select order_date as d from {r["int_sales_lines"]}
                    union all select activity_date from {r["stg_customer_behaviour"]}) as a)
        then 0 else 1 end
        """,
    )


ORACLES = (
    sales_key_mismatches,
    geography_mismatches,
    customer_history_mismatches,
    behaviour_profile_mismatches,
    activity_key_mismatches,
    date_range_mismatches,
)
