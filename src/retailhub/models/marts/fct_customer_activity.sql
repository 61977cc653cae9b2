-- Customer activity at the grain customer x activity date x channel. Rows repeating a grain
-- are summed. A source without dates or channels (the Kaggle file: one row per customer)
-- lands on the unknown date (key 0) and the unknown channel (key 0).
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
            'activity|' || coalesce(customer_nk, '') || '|' || cast(date_key as varchar) || '|'
            || coalesce(channel, '')
        ) as activity_key,
        coalesce(rh_surrogate_key(customer_nk), 0) as customer_key,
        customer_id,
        date_key,
        activity_date,
        coalesce(rh_surrogate_key('channel|' || channel), 0) as channel_key,
        sessions,
        page_views,
        cart_adds,
        orders,
        spend_amount
    from keyed
)

select * from final
