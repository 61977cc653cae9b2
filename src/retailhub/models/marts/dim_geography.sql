-- Places that sales were shipped to or billed in, at the finest level each source gives
-- (Online Retail: country; Superstore: country, region, state, city and ZIP), plus the
-- unknown place (key 0) for lines whose country is missing or 'Unspecified'.
with

places as (
    -- every place int_sales_lines names, standardised (several spellings may give one place)
    select distinct
        geography_nk,
        country,
        region,
        state,
        city,
        postal_code
    from {{ ref('int_places') }}
    where geography_nk is not null
),

known as (
    select
        rh_surrogate_key(geography_nk) as geography_key,
        country,
        region,
        state,
        city,
        postal_code,
        false as is_unknown
    from places
),

unknown as (
    select
        cast(0 as bigint) as geography_key,
        'Unknown' as country,
        cast(null as varchar) as region,
        cast(null as varchar) as state,
        cast(null as varchar) as city,
        cast(null as varchar) as postal_code,
        true as is_unknown
)

select * from known
union all
select * from unknown
