-- The calendar: one row per day from the first to the last date of any fact (gaps such as
-- Christmas included, so time series have every day), plus the unknown date (key 0).
with

sales_dates as (
    -- the facts themselves: every line of int_sales_lines is in fct_sales and every activity
    -- date of stg_customer_behaviour in fct_customer_activity, and reading a stored date
    -- column is far cheaper than recomputing the order dates of the lines
    select order_date as fact_date from {{ ref('fct_sales') }}
),

activity_dates as (
    select activity_date as fact_date from {{ ref('fct_customer_activity') }}
),

bounds as (
    select min(fact_date) as first_date, max(fact_date) as last_date
    from (
        select fact_date from sales_dates
        union all
        select fact_date from activity_dates
    ) as fact_dates
),

digits as (
    select * from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) as d (n)
),

day_offsets as (
    -- 0 .. 99,999 days (273 years) without a DuckDB- or PostgreSQL-only series function
    select d1.n + 10 * d2.n + 100 * d3.n + 1000 * d4.n + 10000 * d5.n as day_offset
    from digits as d1
    cross join digits as d2
    cross join digits as d3
    cross join digits as d4
    cross join digits as d5
),

days as (
    select bounds.first_date + day_offsets.day_offset as calendar_date
    from bounds
    join day_offsets on day_offsets.day_offset <= bounds.last_date - bounds.first_date
),

attributes as (
    select
        calendar_date,
        cast(extract(year from calendar_date) as integer) as year,
        cast(extract(quarter from calendar_date) as integer) as quarter,
        cast(extract(month from calendar_date) as integer) as month,
        cast(extract(day from calendar_date) as integer) as day_of_month,
        cast(extract(week from calendar_date) as integer) as week_of_year,
        cast(extract(isoyear from calendar_date) as integer) as iso_year,
        cast(extract(isodow from calendar_date) as integer) as day_of_week,
        cast(extract(day from calendar_date + 1) as integer) = 1 as is_month_end
    from days
),

final as (
    select
        year * 10000 + month * 100 + day_of_month as date_key,
        calendar_date as date,
        year,
        quarter,
        month,
        case month
            when 1 then 'January' when 2 then 'February' when 3 then 'March'
            when 4 then 'April' when 5 then 'May' when 6 then 'June'
            when 7 then 'July' when 8 then 'August' when 9 then 'September'
            when 10 then 'October' when 11 then 'November' when 12 then 'December'
        end as month_name,
        day_of_month,
        week_of_year,
        cast(iso_year as varchar) || '-W' || lpad(cast(week_of_year as varchar), 2, '0')
            as iso_week,
        day_of_week,
        case day_of_week
            when 1 then 'Monday' when 2 then 'Tuesday' when 3 then 'Wednesday'
            when 4 then 'Thursday' when 5 then 'Friday' when 6 then 'Saturday'
            when 7 then 'Sunday'
        end as day_name,
        day_of_week in (6, 7) as is_weekend,
        is_month_end
    from attributes

    union all

    select
        0 as date_key,
        cast(null as date) as date,
        cast(null as integer) as year,
        cast(null as integer) as quarter,
        cast(null as integer) as month,
        'Unknown' as month_name,
        cast(null as integer) as day_of_month,
        cast(null as integer) as week_of_year,
        'Unknown' as iso_week,
        cast(null as integer) as day_of_week,
        'Unknown' as day_name,
        false as is_weekend,
        false as is_month_end
)

select * from final
