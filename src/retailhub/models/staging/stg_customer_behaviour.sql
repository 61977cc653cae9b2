-- Customer behaviour rows, cleaned: ids normalised to the online key space shared with
-- Online Retail, channel and frequency labels standardised. One row per accepted source row.
with

source as (
    select * from {{ source('customer_behaviour') }}
),

cleaned as (
    select
        nullif(rh_clean_id(cast(customer_id as varchar)), '') as customer_id,
        activity_date,
        nullif(lower(trim(channel)), '') as channel,
        sessions,
        page_views,
        cart_adds,
        orders,
        spend,
        nullif(trim(rh_collapse_spaces(customer_name)), '') as customer_name,
        nullif(lower(trim(email)), '') as email,
        age,
        nullif(trim(gender), '') as gender,
        nullif(trim(country), '') as country_raw,
        nullif(trim(loyalty_tier), '') as loyalty_tier,
        signup_date,
        nullif(trim(cast(location as varchar)), '') as location,
        cast(purchase_amount as double) as purchase_amount,
        lower(trim(cast(subscription_status as varchar))) as subscription_status,
        lower(trim(cast(discount_applied as varchar))) as discount_applied,
        lower(trim(cast(promo_code_used as varchar))) as promo_code_used,
        cast(previous_purchases as bigint) as previous_purchases,
        nullif(trim(cast(payment_method as varchar)), '') as payment_method,
        nullif(trim(cast(shipping_type as varchar)), '') as shipping_type,
        lower(trim(cast(purchase_frequency as varchar))) as purchase_frequency,
        _source,
        _source_file,
        _line,
        _unit_id
    from source
),

standardised as (
    select
        customer_id,
        case when customer_id is not null then 'online|' || customer_id end as customer_nk,
        activity_date,
        channel,
        sessions,
        page_views,
        cart_adds,
        -- a row without activity measures but with a purchase amount (the Kaggle layout: one
        -- purchase per customer) counts as one order of that amount
        coalesce(orders, case when purchase_amount is not null then 1 end) as orders,
        cast(coalesce(spend, purchase_amount) as decimal(18, 4)) as spend_amount,
        customer_name,
        email,
        age,
        gender,
        country_raw,
        loyalty_tier,
        signup_date,
        location,
        case
            when subscription_status in ('yes', 'true', '1', 'y') then true
            when subscription_status in ('no', 'false', '0', 'n') then false
        end as is_subscribed,
        case
            when discount_applied in ('yes', 'true', '1', 'y') then true
            when discount_applied in ('no', 'false', '0', 'n') then false
        end as is_discount_applied,
        case
            when promo_code_used in ('yes', 'true', '1', 'y') then true
            when promo_code_used in ('no', 'false', '0', 'n') then false
        end as is_promo_code_used,
        previous_purchases,
        payment_method,
        shipping_type,
        case
            when purchase_frequency in ('bi-weekly', 'biweekly', 'fortnightly') then 'Fortnightly'
            when purchase_frequency in ('every 3 months', 'quarterly') then 'Quarterly'
            when purchase_frequency = 'weekly' then 'Weekly'
            when purchase_frequency = 'monthly' then 'Monthly'
            when purchase_frequency in ('annually', 'yearly') then 'Annually'
            when purchase_frequency = '' then null
            else purchase_frequency
        end as purchase_frequency,
        _source,
        _source_file,
        _line,
        _unit_id
    from cleaned
)

select * from standardised
