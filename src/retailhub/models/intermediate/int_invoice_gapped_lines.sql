-- The order line number of every Online Retail line in an invoice segment that is not
-- contiguous (int_invoice_segments): only these are numbered by sorting, by line within
-- the file, then stock code and quantity (a file delivered twice repeats line numbers).
-- An ingest unit holds each line number once, so (order_id, _unit_id, _line) finds a line.
with

lines as (
    select order_id, _source_file, _unit_id, _line, stock_code, quantity
    from {{ ref('stg_online_retail') }}
),

gapped as (
    select order_id, _source_file, lines_before
    from {{ ref('int_invoice_segments') }}
    where not is_contiguous
),

final as (
    select
        lines.order_id,
        lines._unit_id,
        lines._line,
        cast(
            gapped.lines_before + row_number() over (
                partition by lines.order_id, lines._source_file
                order by lines._line, lines.stock_code, lines.quantity
            ) as bigint
        ) as order_line
    from lines
    join gapped
        on lines.order_id = gapped.order_id and lines._source_file = gapped._source_file
)

select * from final
