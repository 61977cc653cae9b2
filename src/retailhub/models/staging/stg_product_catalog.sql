-- The product catalog, one row per product_id. Catalogs repeat an id (IKEA lists one item
-- under several categories): the last-listed row wins, so a later delivery supersedes.
with

source as (
    select * from {{ source('product_catalog') }}
),

cleaned as (
    select
        upper(trim(product_id)) as product_id,
        nullif(trim(rh_collapse_spaces(product_name)), '') as product_name,
        nullif(trim(category), '') as category,
        nullif(trim(sub_category), '') as sub_category,
        nullif(trim(brand), '') as brand,
        cast(weight_g as double) as weight_g,
        cast(length_cm as double) as length_cm,
        cast(width_cm as double) as width_cm,
        cast(height_cm as double) as height_cm,
        cast(list_price as decimal(18, 4)) as list_price,
        cast(unit_cost as decimal(18, 4)) as unit_cost,
        _source,
        _source_file,
        _line
    from source
    where product_id is not null and trim(product_id) <> ''
),

ranked as (
    select
        *,
        count(*) over (partition by product_id) as catalog_rows,
        row_number() over (
            partition by product_id order by _source_file desc, _line desc
        ) as recency_rank
    from cleaned
),

final as (
    select
        product_id,
        'product|' || product_id as product_nk,
        product_name,
        category,
        sub_category,
        brand,
        weight_g,
        length_cm,
        width_cm,
        height_cm,
        list_price,
        unit_cost,
        catalog_rows,
        _source,
        _source_file,
        _line
    from ranked
    where recency_rank = 1
)

select * from final
