-- Both sales sources in one shape: one row per order line with natural keys for every
-- dimension (customer, product, geography, channel) and amounts in the source currency.
with

online_retail as (
    select * from {{ ref('stg_online_retail') }}
),

superstore as (
    select * from {{ ref('stg_superstore') }}
),

country_aliases as (
    select * from {{ ref('int_country_aliases') }}
),

online_retail_lines as (
    select
        'online_retail' as source_system,
        order_id,
        order_line,
        order_date,
        order_at,
        cast(null as date) as ship_date,
        cast(null as varchar) as ship_mode,
        customer_id,
        customer_nk,
        stock_code as product_id,
        'product|' || stock_code as product_nk,
        country_raw,
        cast(null as varchar) as region,
        cast(null as varchar) as state,
        cast(null as varchar) as city,
        cast(null as varchar) as postal_code,
        -- a UK online gift shop: every line is a web sale
        'web' as channel_name,
        quantity,
        unit_price,
        cast(quantity * unit_price as decimal(18, 4)) as gross_amount,
        cast(0 as decimal(18, 4)) as discount_amount,
        cast(quantity * unit_price as decimal(18, 4)) as net_amount,
        cast(null as decimal(18, 4)) as profit_amount,
        -- a UK shop: pounds sterling
        'GBP' as currency_code,
        is_cancellation,
        is_adjustment,
        is_product,
        false as is_duplicate_suspect,
        _source,
        _source_file,
        _line
    from online_retail
),

superstore_lines as (
    select
        'superstore' as source_system,
        order_id,
        order_line,
        order_date,
        order_at,
        ship_date,
        ship_mode,
        customer_id,
        customer_nk,
        product_id,
        -- a Superstore Product ID names several products: the name is part of the key
        'superstore|' || product_id || '|' || coalesce(product_name, '') as product_nk,
        country_raw,
        region,
        state,
        city,
        postal_code,
        -- orders of a store chain, shipped from the store: the store channel
        'store' as channel_name,
        quantity,
        unit_price,
        gross_amount,
        discount_amount,
        net_amount,
        profit_amount,
        'USD' as currency_code,
        false as is_cancellation,
        false as is_adjustment,
        true as is_product,
        is_duplicate_suspect,
        _source,
        _source_file,
        _line
    from superstore
),

unioned as (
    select * from online_retail_lines
    union all
    select * from superstore_lines
),

standardised as (
    select
        unioned.*,
        case
            when country_aliases.country_alias is not null then country_aliases.country_name
            else unioned.country_raw
        end as country
    from unioned
    left join country_aliases
        on upper(unioned.country_raw) = country_aliases.country_alias
),

final as (
    select
        source_system,
        order_id,
        order_line,
        order_date,
        order_at,
        ship_date,
        ship_mode,
        customer_id,
        customer_nk,
        product_id,
        product_nk,
        country,
        region,
        state,
        city,
        postal_code,
        case
            when country is null and region is null and state is null and city is null
                and postal_code is null then null
            else
                'geo|' || coalesce(country, '') || '|' || coalesce(region, '') || '|'
                || coalesce(state, '') || '|' || coalesce(city, '') || '|'
                || coalesce(postal_code, '')
        end as geography_nk,
        channel_name,
        quantity,
        unit_price,
        gross_amount,
        discount_amount,
        net_amount,
        profit_amount,
        currency_code,
        is_cancellation,
        is_adjustment,
        is_product,
        is_duplicate_suspect,
        _source,
        _source_file,
        _line
    from standardised
)

select * from final
