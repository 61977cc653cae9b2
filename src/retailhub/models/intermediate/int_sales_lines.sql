-- Both sales sources in one shape: one row per order line with natural keys for every
-- dimension (customer, product, geography, channel) and amounts in the source currency.
with

online_retail as (
    select * from {{ ref('stg_online_retail') }}
),

invoice_segments as (
    select * from {{ ref('int_invoice_segments') }}
),

gapped_lines as (
    select * from {{ ref('int_invoice_gapped_lines') }}
),

superstore as (
    select * from {{ ref('stg_superstore') }}
),

places as (
    -- int_places standardised every place these lines name. The staging models write no
    -- empty strings (empty text is NULL there), so '' stands for NULL in the join key. One
    -- row per key (min() of a single value is that value) on plain columns lets DuckDB drop
    -- the join for a reader that uses neither country nor geography_nk
    select
        country_key,
        region_key,
        state_key,
        city_key,
        postal_code_key,
        min(country) as country,
        min(geography_nk) as geography_nk
    from (
        select
            coalesce(country_raw, '') as country_key,
            coalesce(region, '') as region_key,
            coalesce(state, '') as state_key,
            coalesce(city, '') as city_key,
            coalesce(postal_code, '') as postal_code_key,
            country,
            geography_nk
        from {{ ref('int_places') }}
    ) as keyed
    group by country_key, region_key, state_key, city_key, postal_code_key
),

online_retail_lines as (
    select
        'online_retail' as source_system,
        online_retail.order_id,
        invoice_segments.order_key,
        -- the line's position in its invoice, by (file, line): arithmetic in a contiguous
        -- segment, looked up for the lines of the others
        case
            when invoice_segments.is_contiguous
                then invoice_segments.lines_before + online_retail._line
                    - invoice_segments.first_line + 1
            else gapped_lines.order_line
        end as order_line,
        cast(invoice_segments.order_at as date) as order_date,
        invoice_segments.order_at,
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
        channel_name,
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
        online_retail._source_file,
        online_retail._line,
        online_retail._unit_id
    from online_retail
    left join invoice_segments
        on online_retail.order_id = invoice_segments.order_id
        and online_retail._source_file = invoice_segments._source_file
    left join gapped_lines
        on online_retail.order_id = gapped_lines.order_id
        and online_retail._unit_id = gapped_lines._unit_id
        and online_retail._line = gapped_lines._line
),

superstore_lines as (
    select
        'superstore' as source_system,
        order_id,
        rh_surrogate_key('superstore|' || order_id) as order_key,
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
        channel_name,
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
        _line,
        _unit_id
    from superstore
),

unioned as (
    select * from online_retail_lines
    union all
    select * from superstore_lines
),

placed as (
    select
        lines.*,
        places.country,
        places.geography_nk
    from (
        select
            unioned.*,
            coalesce(country_raw, '') as country_key,
            coalesce(region, '') as region_key,
            coalesce(state, '') as state_key,
            coalesce(city, '') as city_key,
            coalesce(postal_code, '') as postal_code_key
        from unioned
    ) as lines
    left join places
        on lines.country_key = places.country_key
        and lines.region_key = places.region_key
        and lines.state_key = places.state_key
        and lines.city_key = places.city_key
        and lines.postal_code_key = places.postal_code_key
),

final as (
    select
        source_system,
        order_id,
        order_key,
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
        geography_nk,
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
        _line,
        _unit_id
    from placed
)

select * from final
