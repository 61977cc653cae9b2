-- Products of both sales sources and the catalog, plus the unknown product (key 0).
with

products as (
    select * from {{ ref('int_products') }}
),

known as (
    select
        rh_surrogate_key(product_nk) as product_key,
        source_system,
        product_id,
        product_name,
        category,
        sub_category,
        brand,
        list_price,
        unit_cost,
        weight_g,
        length_cm,
        width_cm,
        height_cm,
        is_product,
        non_product_kind,
        name_variants,
        is_in_catalog,
        false as is_unknown
    from products
),

unknown as (
    select
        cast(0 as bigint) as product_key,
        'unknown' as source_system,
        cast(null as varchar) as product_id,
        'Unknown product' as product_name,
        cast(null as varchar) as category,
        cast(null as varchar) as sub_category,
        cast(null as varchar) as brand,
        cast(null as decimal(18, 4)) as list_price,
        cast(null as decimal(18, 4)) as unit_cost,
        cast(null as double) as weight_g,
        cast(null as double) as length_cm,
        cast(null as double) as width_cm,
        cast(null as double) as height_cm,
        false as is_product,
        cast(null as varchar) as non_product_kind,
        cast(0 as bigint) as name_variants,
        false as is_in_catalog,
        true as is_unknown
)

select * from known
union all
select * from unknown
