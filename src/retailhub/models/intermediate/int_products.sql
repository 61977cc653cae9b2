-- One row per product natural key: every product seen in sales plus the catalog's own.
-- Online Retail stock codes and catalog ids share one key space (case-insensitive); a
-- Superstore product is its Product ID plus its name, because one ID names several products.
with

online_retail as (
    select * from {{ ref('stg_online_retail') }}
),

superstore as (
    select * from {{ ref('stg_superstore') }}
),

catalog as (
    select * from {{ ref('stg_product_catalog') }}
),

online_retail_descriptions as (
    -- the only pass over the lines: how often each description (NULL included) is used for a
    -- code, counting real (priced) sales apart; the kind depends on the code alone
    select
        stock_code,
        description,
        non_product_kind,
        count(case when unit_price > 0 then 1 end) as priced_lines,
        count(*) as lines
    from online_retail
    group by stock_code, description, non_product_kind
),

online_retail_chosen_names as (
    -- one name per code: most used on priced lines, then most used, then alphabetical
    select stock_code, description
    from (
        select
            stock_code,
            description,
            row_number() over (
                partition by stock_code order by priced_lines desc, lines desc, description
            ) as name_rank
        from online_retail_descriptions
        where description is not null
    ) as ranked
    where name_rank = 1
),

online_retail_codes as (
    select
        stock_code,
        -- every line of a code has the same classification; min() just collapses them
        min(non_product_kind) as non_product_kind,
        count(distinct description) as name_variants
    from online_retail_descriptions
    group by stock_code
),

online_retail_products as (
    select
        'product|' || codes.stock_code as product_nk,
        'online_retail' as source_system,
        codes.stock_code as product_id,
        coalesce(names.description, catalog.product_name) as product_name,
        catalog.category,
        catalog.sub_category,
        catalog.brand,
        catalog.list_price,
        catalog.unit_cost,
        catalog.weight_g,
        catalog.length_cm,
        catalog.width_cm,
        catalog.height_cm,
        codes.non_product_kind is null as is_product,
        codes.non_product_kind,
        codes.name_variants,
        catalog.product_id is not null as is_in_catalog
    from online_retail_codes as codes
    left join online_retail_chosen_names as names on codes.stock_code = names.stock_code
    left join catalog on catalog.product_id = codes.stock_code
),

superstore_variants as (
    select
        product_id,
        product_name,
        -- category is part of the ID, so it is constant per product; min() collapses rows
        min(category) as category,
        min(sub_category) as sub_category
    from superstore
    group by product_id, product_name
),

superstore_products as (
    select
        'superstore|' || variants.product_id || '|' || coalesce(variants.product_name, '')
            as product_nk,
        'superstore' as source_system,
        variants.product_id,
        coalesce(variants.product_name, catalog.product_name) as product_name,
        coalesce(variants.category, catalog.category) as category,
        coalesce(variants.sub_category, catalog.sub_category) as sub_category,
        catalog.brand,
        catalog.list_price,
        catalog.unit_cost,
        catalog.weight_g,
        catalog.length_cm,
        catalog.width_cm,
        catalog.height_cm,
        true as is_product,
        cast(null as varchar) as non_product_kind,
        count(*) over (partition by variants.product_id) as name_variants,
        catalog.product_id is not null as is_in_catalog
    from superstore_variants as variants
    left join catalog on catalog.product_id = variants.product_id
),

catalog_only_products as (
    select
        catalog.product_nk,
        'product_catalog' as source_system,
        catalog.product_id,
        catalog.product_name,
        catalog.category,
        catalog.sub_category,
        catalog.brand,
        catalog.list_price,
        catalog.unit_cost,
        catalog.weight_g,
        catalog.length_cm,
        catalog.width_cm,
        catalog.height_cm,
        true as is_product,
        cast(null as varchar) as non_product_kind,
        cast(case when catalog.product_name is null then 0 else 1 end as bigint) as name_variants,
        true as is_in_catalog
    from catalog
    where not exists (
        select 1 from online_retail_codes as codes where codes.stock_code = catalog.product_id
    )
    and not exists (
        select 1 from superstore_variants as variants where variants.product_id = catalog.product_id
    )
),

final as (
    select * from online_retail_products
    union all
    select * from superstore_products
    union all
    select * from catalog_only_products
)

select * from final
