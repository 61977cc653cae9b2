-- Customer activity at the grain customer x activity date x channel. Rows repeating a grain
-- are summed. A source without dates or channels (the Kaggle file: one row per customer)
-- lands on the unknown date (key 0) and the unknown channel (key 0). Customer and channel
-- keys are hashed once per customer / channel (int_customers, dim_channel) and joined, not
-- hashed on every row; a natural key missing there is still hashed, so the key is always
-- rh_surrogate_key(natural key), 0 when there is none.
with

behaviour as (
    select * from {{ ref('stg_customer_behaviour') }}
),

activity as (
    select
        customer_nk,
        customer_id,
        activity_date,
        channel,
        cast(sum(sessions) as bigint) as sessions,
        cast(sum(page_views) as bigint) as page_views,
        cast(sum(cart_adds) as bigint) as cart_adds,
        cast(sum(orders) as bigint) as orders,
        cast(sum(spend_amount) as decimal(18, 4)) as spend_amount
    from behaviour
    group by customer_nk, customer_id, activity_date, channel
),

customers as (
    select customer_nk, rh_surrogate_key(customer_nk) as customer_key
    from {{ ref('int_customers') }}
),

channels as (
    select channel_name, channel_key from {{ ref('dim_channel') }} where not is_unknown
),

keyed as (
    select
        *,
        coalesce(
            cast(extract(year from activity_date) * 10000 + extract(month from activity_date) * 100
                + extract(day from activity_date) as integer),
            0
        ) as date_key
    from activity
),

final as (
    select
        rh_surrogate_key(
            'activity|' || coalesce(keyed.customer_nk, '') || '|' || cast(keyed.date_key as varchar)
            || '|' || coalesce(keyed.channel, '')
        ) as activity_key,
        coalesce(customers.customer_key, rh_surrogate_key(keyed.customer_nk), 0)
            as customer_key,
        keyed.customer_id,
        keyed.date_key,
        keyed.activity_date,
        coalesce(channels.channel_key, rh_surrogate_key('channel|' || keyed.channel), 0)
            as channel_key,
        keyed.sessions,
        keyed.page_views,
        keyed.cart_adds,
        keyed.orders,
        keyed.spend_amount
    from keyed
    left join customers on keyed.customer_nk = customers.customer_nk
    left join channels on keyed.channel = channels.channel_name
)

select * from final
