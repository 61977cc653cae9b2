-- One row per order line of both sales sources. Amounts are signed (cancellations are
-- negative), so summing net_amount nets returns; filter is_cancellation / is_adjustment /
-- is_product to choose what counts as product revenue.
--
-- rh_surrogate_key is an MD5, and there are orders of magnitude more lines than products,
-- places or channels: their keys are hashed once per member and joined to the lines. The
-- natural key is still hashed for a line whose product or place the list lacks, so the key
-- is always rh_surrogate_key(natural key), 0 when there is none.
with

sales_lines as (
    select * from {{ ref('int_sales_lines') }}
),

products as (
    select product_nk, unit_cost, rh_surrogate_key(product_nk) as product_key
    from {{ ref('int_products') }}
),

places as (
    select geography_nk, rh_surrogate_key(geography_nk) as geography_key
    from (select distinct geography_nk from {{ ref('int_places') }}) as nks
),

channels as (
    select channel_name, channel_key from {{ ref('dim_channel') }} where not is_unknown
),

costed as (
    select
        sales_lines.*,
        case
            -- Superstore states profit, so its cost is what the profit leaves of the sale
            when sales_lines.profit_amount is not null
                then sales_lines.net_amount - sales_lines.profit_amount
            when products.unit_cost is not null
                then cast(sales_lines.quantity * products.unit_cost as decimal(18, 4))
        end as cost_amount,
        coalesce(products.product_key, rh_surrogate_key(sales_lines.product_nk), 0)
            as product_key,
        coalesce(places.geography_key, rh_surrogate_key(sales_lines.geography_nk), 0)
            as geography_key,
        coalesce(
            channels.channel_key, rh_surrogate_key('channel|' || sales_lines.channel_name), 0
        ) as channel_key
    from sales_lines
    left join products on sales_lines.product_nk = products.product_nk
    left join places on sales_lines.geography_nk = places.geography_nk
    left join channels on sales_lines.channel_name = channels.channel_name
),

final as (
    select
        -- the order's key (hashed once per invoice segment in int_invoice_segments) with the
        -- line number XORed into it: unique within an order, and as unlikely to collide across
        -- orders as a hash per line, which cost a third of this model's projections
        xor(order_key, cast(order_line as bigint)) as sales_key,
        source_system,
        order_id,
        cast(order_line as integer) as order_line,
        order_date,
        order_at,
        coalesce(
            cast(extract(year from order_date) * 10000 + extract(month from order_date) * 100
                + extract(day from order_date) as integer),
            0
        ) as date_key,
        coalesce(rh_surrogate_key(customer_nk), 0) as customer_key,
        customer_id,
        product_key,
        product_id,
        geography_key,
        channel_key,
        ship_date,
        ship_mode,
        quantity,
        cast(unit_price as decimal(18, 4)) as unit_price,
        cast(gross_amount as decimal(18, 4)) as gross_amount,
        cast(discount_amount as decimal(18, 4)) as discount_amount,
        cast(net_amount as decimal(18, 4)) as net_amount,
        cast(coalesce(profit_amount, net_amount - cost_amount) as decimal(18, 4))
            as profit_amount,
        cast(cost_amount as decimal(18, 4)) as cost_amount,
        currency_code,
        is_cancellation,
        is_adjustment,
        is_product,
        is_duplicate_suspect,
        _source,
        _source_file,
        _line
    from costed
)

select * from final
