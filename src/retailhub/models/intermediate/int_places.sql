-- One row per place as the sales sources write it (Online Retail: a country; Superstore:
-- country, region, state, city and ZIP), with the standardised country and the geography
-- natural key. Standardising the few places, not the millions of lines that name them, is
-- what keeps int_sales_lines cheap: a line looks its place up here.
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

written_places as (
    select
        country_raw,
        cast(null as varchar) as region,
        cast(null as varchar) as state,
        cast(null as varchar) as city,
        cast(null as varchar) as postal_code
    from online_retail
    group by country_raw

    union

    select country_raw, region, state, city, postal_code
    from superstore
    group by country_raw, region, state, city, postal_code
),

standardised as (
    select
        written_places.*,
        case
            when country_aliases.country_alias is not null then country_aliases.country_name
            else written_places.country_raw
        end as country
    from written_places
    left join country_aliases
        on upper(written_places.country_raw) = country_aliases.country_alias
),

final as (
    select
        country_raw,
        region,
        state,
        city,
        postal_code,
        country,
        case
            when country is null and region is null and state is null and city is null
                and postal_code is null then null
            else
                'geo|' || coalesce(country, '') || '|' || coalesce(region, '') || '|'
                || coalesce(state, '') || '|' || coalesce(city, '') || '|'
                || coalesce(postal_code, '')
        end as geography_nk
    from standardised
)

select * from final
