-- One row per customer natural key. Online Retail and Customer Behaviour share one numeric
-- id space ('online|<id>'), so their rows conform to one customer; Superstore customers are
-- their own space ('superstore|<id>'). Attributes that vary take the latest known value.
with

sales_lines as (
    select * from {{ ref('int_sales_lines') }}
),

superstore as (
    select * from {{ ref('stg_superstore') }}
),

behaviour as (
    select * from {{ ref('stg_customer_behaviour') }}
),

country_aliases as (
    select * from {{ ref('int_country_aliases') }}
),

sales_customers as (
    select
        customer_nk,
        min(source_system) as source_system,
        min(customer_id) as customer_id,
        coalesce(min(case when not is_cancellation then order_date end), min(order_date))
            as first_order_date,
        max(order_date) as last_order_date,
        count(distinct order_id) as order_count
    from sales_lines
    where customer_nk is not null
    group by customer_nk
),

sales_countries as (
    -- a customer seen with two countries gets the country of the latest order
    select customer_nk, country
    from (
        select
            customer_nk,
            country,
            row_number() over (
                partition by customer_nk order by order_at desc, order_id desc, country
            ) as country_rank
        from sales_lines
        where customer_nk is not null and country is not null
    ) as ranked
    where country_rank = 1
),

superstore_profiles as (
    -- name and segment are constant per Superstore customer; the most used value guards the rest
    select customer_nk, customer_name, segment
    from (
        select
            customer_nk,
            customer_name,
            segment,
            row_number() over (
                partition by customer_nk order by count(*) desc, customer_name, segment
            ) as profile_rank
        from superstore
        where customer_nk is not null
        group by customer_nk, customer_name, segment
    ) as ranked
    where profile_rank = 1
),

behaviour_latest as (
    -- the latest row that carries a profile at all gives the current profile (activity rows
    -- may leave the profile columns empty)
    select *
    from (
        select
            behaviour.*,
            row_number() over (
                partition by customer_nk
                order by
                    case
                        when customer_name is not null or email is not null or age is not null
                            or gender is not null or country_raw is not null
                            or loyalty_tier is not null or signup_date is not null
                            or location is not null or purchase_frequency is not null
                        then 0 else 1
                    end,
                    activity_date desc nulls last,
                    _source_file desc,
                    _line desc
            ) as recency_rank
        from behaviour
        where customer_nk is not null
    ) as ranked
    where recency_rank = 1
),

behaviour_profiles as (
    select
        latest.customer_nk,
        latest.customer_id,
        latest.customer_name,
        latest.email,
        latest.age,
        latest.gender,
        case
            when country_aliases.country_alias is not null then country_aliases.country_name
            else latest.country_raw
        end as country,
        latest.loyalty_tier,
        latest.signup_date,
        latest.location,
        latest.is_subscribed,
        latest.purchase_frequency,
        latest.payment_method,
        latest.shipping_type,
        latest.previous_purchases
    from behaviour_latest as latest
    left join country_aliases on upper(latest.country_raw) = country_aliases.country_alias
),

customer_nks as (
    select customer_nk from sales_customers
    union
    select customer_nk from behaviour_profiles
),

final as (
    select
        nks.customer_nk,
        coalesce(sales.source_system, 'customer_behaviour') as source_system,
        coalesce(sales.customer_id, profiles.customer_id) as customer_id,
        coalesce(superstore_profiles.customer_name, profiles.customer_name) as customer_name,
        superstore_profiles.segment,
        coalesce(sales_countries.country, profiles.country) as country,
        sales.first_order_date,
        sales.last_order_date,
        coalesce(sales.order_count, 0) as order_count,
        profiles.email,
        profiles.age,
        profiles.gender,
        profiles.loyalty_tier,
        profiles.signup_date,
        profiles.location,
        profiles.is_subscribed,
        profiles.purchase_frequency,
        profiles.payment_method,
        profiles.shipping_type,
        profiles.previous_purchases,
        sales.customer_nk is not null as has_sales,
        profiles.customer_nk is not null as has_behaviour
    from customer_nks as nks
    left join sales_customers as sales on nks.customer_nk = sales.customer_nk
    left join sales_countries on nks.customer_nk = sales_countries.customer_nk
    left join superstore_profiles on nks.customer_nk = superstore_profiles.customer_nk
    left join behaviour_profiles as profiles on nks.customer_nk = profiles.customer_nk
)

select * from final
