-- UCI Online Retail lines, cleaned and flagged. One row per accepted source row: nothing is
-- dropped here, every quirk becomes a column so the marts can decide (see docs/data-model.md).
with

source as (
    select * from {{ source('online_retail') }}
),

cleaned as (
    select
        trim(invoice_no) as invoice_no,
        upper(trim(stock_code)) as stock_code,
        nullif(trim(rh_collapse_spaces(description)), '') as description,
        quantity,
        invoice_at,
        cast(unit_price as decimal(18, 4)) as unit_price,
        -- the sources layer writes 17850; strip a float tail or leading zeros if one slips through
        nullif(rh_clean_id(cast(customer_id as varchar)), '') as customer_id,
        nullif(trim(country), '') as country_raw,
        _source,
        _source_file,
        _line,
        _unit_id
    from source
),

flagged as (
    select
        *,
        invoice_no like 'C%' as is_cancellation,
        invoice_no like 'A%' as is_bad_debt,
        (
            unit_price = 0
            and customer_id is null
            and invoice_no not like 'C%'
            and invoice_no not like 'A%'
        ) as is_stock_adjustment,
        case
            when regexp_matches(stock_code, '^[0-9]{5}[A-Z]*$') then null
            when stock_code in ('POST', 'DOT') then 'postage'
            when stock_code = 'M' then 'manual'
            when stock_code = 'C2' then 'carriage'
            when stock_code = 'D' then 'discount'
            when stock_code = 'S' then 'samples'
            when stock_code = 'BANK CHARGES' then 'bank_charges'
            when stock_code = 'AMAZONFEE' then 'marketplace_fee'
            when stock_code = 'CRUK' then 'charity'
            when stock_code = 'PADS' then 'pads'
            when stock_code = 'B' then 'bad_debt'
            when stock_code like 'GIFT%' then 'gift_voucher'
            when stock_code like 'DCGS%' then 'dcgs'
            else 'other'
        end as non_product_kind
    from cleaned
),

final as (
    select
        invoice_no as order_id,
        invoice_at,
        stock_code,
        description,
        quantity,
        unit_price,
        customer_id,
        case when customer_id is not null then 'online|' || customer_id end as customer_nk,
        country_raw,
        -- a UK online gift shop: every line is a web sale
        'web' as channel_name,
        is_cancellation,
        is_bad_debt,
        is_stock_adjustment,
        (is_bad_debt or is_stock_adjustment) as is_adjustment,
        non_product_kind is null as is_product,
        non_product_kind,
        _source,
        _source_file,
        _line,
        _unit_id
    from flagged
)

select * from final
