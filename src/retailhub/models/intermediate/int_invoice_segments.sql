-- Online Retail invoices cut into segments: the lines an invoice has in one source file,
-- with what belongs to the whole invoice. int_sales_lines numbers an invoice's lines 1..n in
-- (file, line) order from these: a contiguous segment (no line missing between its first
-- and last, the common case) numbers its lines by arithmetic, lines_before + _line -
-- first_line + 1, and only the lines of the other segments are sorted
-- (int_invoice_gapped_lines). A window over the wide lines instead (sorting every line by
-- invoice) costs more than everything else fct_sales does.
with

lines as (
    select order_id, _source_file, _line, invoice_at from {{ ref('stg_online_retail') }}
),

segments as (
    select
        order_id,
        _source_file,
        min(invoice_at) as first_invoice_at,
        min(_line) as first_line,
        count(*) as line_count,
        -- false when another invoice's line or a quarantined one lies in between, or when a
        -- line number repeats (a file delivered twice)
        max(_line) - min(_line) + 1 = count(*) as is_contiguous
    from lines
    group by order_id, _source_file
),

final as (
    select
        order_id,
        _source_file,
        rh_surrogate_key('online_retail|' || order_id) as order_key,
        -- an invoice is one order at one moment: the first minute wins when it spans two
        min(first_invoice_at) over (partition by order_id) as order_at,
        first_line,
        line_count,
        is_contiguous,
        -- the invoice's lines in files that sort before this one
        cast(
            coalesce(
                sum(line_count) over (
                    partition by order_id
                    order by _source_file
                    rows between unbounded preceding and 1 preceding
                ),
                0
            ) as bigint
        ) as lines_before
    from segments
)

select * from final
