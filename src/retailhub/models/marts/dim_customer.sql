-- Customers of every source, conformed where the data allows, plus the unknown customer
-- (key 0) that sales lines without a customer point to.
with

customers as (
    select * from {{ ref('int_customers') }}
),

known as (
    select
        rh_surrogate_key(customer_nk) as customer_key,
        source_system,
        customer_id,
        customer_name,
        segment,
        country,
        first_order_date,
        last_order_date,
        order_count,
        email,
        age,
        gender,
        loyalty_tier,
        signup_date,
        location,
        is_subscribed,
        purchase_frequency,
        payment_method,
        shipping_type,
        previous_purchases,
        has_sales,
        has_behaviour,
        false as is_unknown
    from customers
),

unknown as (
    select
        cast(0 as bigint) as customer_key,
        'unknown' as source_system,
        cast(null as varchar) as customer_id,
        'Unknown customer' as customer_name,
        cast(null as varchar) as segment,
        cast(null as varchar) as country,
        cast(null as date) as first_order_date,
        cast(null as date) as last_order_date,
        cast(0 as bigint) as order_count,
        cast(null as varchar) as email,
        cast(null as bigint) as age,
        cast(null as varchar) as gender,
        cast(null as varchar) as loyalty_tier,
        cast(null as date) as signup_date,
        cast(null as varchar) as location,
        cast(null as boolean) as is_subscribed,
        cast(null as varchar) as purchase_frequency,
        cast(null as varchar) as payment_method,
        cast(null as varchar) as shipping_type,
        cast(null as bigint) as previous_purchases,
        false as has_sales,
        false as has_behaviour,
        true as is_unknown
)

select * from known
union all
select * from unknown
