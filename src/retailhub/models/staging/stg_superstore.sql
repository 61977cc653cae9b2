-- Superstore order lines, cleaned, with list price and discount made explicit.
-- One row per accepted source row (Row IDs 3406/3407 stay two rows, flagged).
with

source as (
    select * from {{ source('superstore') }}
),

cleaned as (
    select
        row_id,
        trim(order_id) as order_id,
        order_date,
        ship_date,
        nullif(trim(ship_mode), '') as ship_mode,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(rh_collapse_spaces(customer_name)), '') as customer_name,
        nullif(trim(segment), '') as segment,
        nullif(trim(country), '') as country_raw,
        nullif(trim(city), '') as city,
        nullif(trim(state), '') as state,
        -- ZIPs lost their leading zero in the export (6824 is 06824); empty means unknown
        case
            when regexp_matches(trim(postal_code), '^[0-9]{1,4}$') then lpad(trim(postal_code), 5, '0')
            else nullif(trim(postal_code), '')
        end as postal_code,
        nullif(trim(region), '') as region,
        upper(trim(product_id)) as product_id,
        nullif(trim(category), '') as category,
        nullif(trim(sub_category), '') as sub_category,
        nullif(trim(rh_collapse_spaces(product_name)), '') as product_name,
        cast(sales as decimal(18, 4)) as net_amount,
        quantity,
        coalesce(discount, 0) as discount_rate,
        cast(profit as decimal(18, 4)) as profit_amount,
        -- Sales is after discount: the list (gross) amount is sales / (1 - discount)
        cast(sales / nullif(1 - coalesce(discount, 0), 0) as decimal(18, 4)) as gross_amount,
        _source,
        _source_file,
        _line,
        _unit_id
    from source
),

numbered as (
    select
        *,
        row_number() over (
            partition by order_id order by row_id, _source_file, _line
        ) as order_line,
        -- identical in every column but Row ID (3406/3407): kept, the later one is flagged
        row_number() over (
            partition by
                order_id, order_date, ship_date, ship_mode, customer_id, customer_name, segment,
                country_raw, city, state, postal_code, region, product_id, category, sub_category,
                product_name, net_amount, quantity, discount_rate, profit_amount
            order by row_id, _source_file, _line
        ) > 1 as is_duplicate_suspect
    from cleaned
),

final as (
    select
        row_id,
        order_id,
        order_line,
        order_date,
        cast(order_date as timestamp) as order_at,
        ship_date,
        ship_mode,
        customer_id,
        case when customer_id is not null then 'superstore|' || customer_id end as customer_nk,
        customer_name,
        segment,
        country_raw,
        city,
        state,
        postal_code,
        region,
        -- orders of a store chain, shipped from the store: the store channel
        'store' as channel_name,
        product_id,
        category,
        sub_category,
        product_name,
        quantity,
        cast(gross_amount / nullif(quantity, 0) as decimal(18, 4)) as unit_price,
        gross_amount,
        cast(gross_amount - net_amount as decimal(18, 4)) as discount_amount,
        discount_rate,
        net_amount,
        profit_amount,
        is_duplicate_suspect,
        _source,
        _source_file,
        _line,
        _unit_id
    from numbered
)

select * from final
