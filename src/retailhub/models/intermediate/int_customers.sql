-- One row per customer natural key. Online Retail and Customer Behaviour share one numeric
-- id space ('online|<id>'), so their rows conform to one customer; Superstore customers are
-- their own space ('superstore|<id>'). Attributes that vary take the latest known value.
with

superstore as (
    select * from {{ ref('stg_superstore') }}
),

behaviour as (
    select * from {{ ref('stg_customer_behaviour') }}
),

country_aliases as (
    select * from {{ ref('int_country_aliases') }}
),

sales_facts as (
    -- a customer's order history is read from fct_sales, which stores every sales line with
    -- its order time, keys and flags: far cheaper than recomputing the lines
    select * from {{ ref('fct_sales') }}
),

sales_nks as (
    -- the natural key behind each fct_sales customer_key (a key is a function of its natural
    -- key alone), from the staged lines, which name it without the invoice lookups of
    -- int_sales_lines
    select customer_nk, rh_surrogate_key(customer_nk) as customer_key
    from (
        select customer_nk from {{ ref('stg_online_retail') }}
        union
        select customer_nk from superstore
    ) as nks
    where customer_nk is not null
),

place_countries as (
    -- the standardised country behind each fct_sales geography_key
    select rh_surrogate_key(geography_nk) as geography_key, country
    from {{ ref('int_places') }}
    where geography_nk is not null
    group by geography_nk, country
),

sales_orders as (
    -- one row per customer x order x place x cancellation keeps all the aggregates below
    -- look at (min/max and the latest order time are the same over lines or these groups);
    -- customer_key 0 is a line without a customer
    select
        customer_key,
        order_id,
        geography_key,
        is_cancellation,
        min(source_system) as source_system,
        min(customer_id) as customer_id,
        max(order_at) as order_at,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from sales_facts
    where customer_key <> 0
    group by customer_key, order_id, geography_key, is_cancellation
),

sales_customers as (
    select
        nks.customer_nk,
        keyed.source_system,
        keyed.customer_id,
        keyed.first_order_date,
        keyed.last_order_date,
        keyed.order_count
    from (
        select
            customer_key,
            min(source_system) as source_system,
            min(customer_id) as customer_id,
            coalesce(
                min(case when not is_cancellation then first_order_date end),
                min(first_order_date)
            ) as first_order_date,
            max(last_order_date) as last_order_date,
            count(distinct order_id) as order_count
        from sales_orders
        group by customer_key
    ) as keyed
    join sales_nks as nks on keyed.customer_key = nks.customer_key
),

sales_countries as (
    -- a customer seen with two countries gets the country of the latest order (a group's
    -- latest line decides its rank, so ranking the groups picks the same line)
    select nks.customer_nk, ranked.country
    from (
        select
            sales_orders.customer_key,
            place_countries.country,
            row_number() over (
                partition by sales_orders.customer_key
                order by
                    sales_orders.order_at desc,
                    sales_orders.order_id desc,
                    place_countries.country
            ) as country_rank
        from sales_orders
        join place_countries on sales_orders.geography_key = place_countries.geography_key
        where place_countries.country is not null
    ) as ranked
    join sales_nks as nks on ranked.customer_key = nks.customer_key
    where ranked.country_rank = 1
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

behaviour_ranked as (
    -- the latest row that carries a profile at all gives the current profile (activity rows
    -- may leave the profile columns empty). Ranked on the ordering columns alone: a window
    -- that carried every profile column through its sort costs twice as much
    select
        customer_nk,
        profile_order,
        activity_date,
        _source_file,
        _line,
        row_number() over (
            partition by customer_nk
            order by profile_order, activity_date desc nulls last, _source_file desc, _line desc
        ) as recency_rank
    from (
        select
            customer_nk,
            case
                when customer_name is not null or email is not null or age is not null
                    or gender is not null or country_raw is not null
                    or loyalty_tier is not null or signup_date is not null
                    or location is not null or purchase_frequency is not null
                then 0 else 1
            end as profile_order,
            activity_date,
            _source_file,
            _line
        from behaviour
        where customer_nk is not null
    ) as ordered
),

behaviour_latest as (
    -- the winning row, found again by everything that ranked it; rows equal in all of that
    -- (one file line loaded twice) are equally latest, and one of them is kept, as before
    select *
    from (
        select
            behaviour.*,
            row_number() over (partition by behaviour.customer_nk) as tie_rank
        from behaviour
        join behaviour_ranked as winners
            on behaviour.customer_nk = winners.customer_nk
            and behaviour.activity_date is not distinct from winners.activity_date
            and behaviour._source_file is not distinct from winners._source_file
            and behaviour._line is not distinct from winners._line
            and winners.recency_rank = 1
        where
            case
                when behaviour.customer_name is not null or behaviour.email is not null
                    or behaviour.age is not null or behaviour.gender is not null
                    or behaviour.country_raw is not null or behaviour.loyalty_tier is not null
                    or behaviour.signup_date is not null or behaviour.location is not null
                    or behaviour.purchase_frequency is not null
                then 0 else 1
            end = winners.profile_order
    ) as tied
    where tie_rank = 1
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
