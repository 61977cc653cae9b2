-- Sales and activity channels: the four known ones, any other name a source uses, and the
-- unknown channel (key 0). Online Retail maps to web, Superstore to store (staging).
with

-- the staging models name each line's channel: reading them, not int_sales_lines, spares
-- this model the invoice lookups of the sales lines
online_retail as (
    select * from {{ ref('stg_online_retail') }}
),

superstore as (
    select * from {{ ref('stg_superstore') }}
),

behaviour as (
    select * from {{ ref('stg_customer_behaviour') }}
),

known_channels as (
    select * from (
        values
            ('web', 'online'),
            ('mobile', 'online'),
            ('marketplace', 'online'),
            ('store', 'offline')
    ) as c (channel_name, channel_type)
),

seen_channels as (
    select channel_name from online_retail where channel_name is not null
    union
    select channel_name from superstore where channel_name is not null
    union
    select channel as channel_name from behaviour where channel is not null
),

channels as (
    select channel_name, channel_type from known_channels
    union all
    select seen_channels.channel_name, 'other' as channel_type
    from seen_channels
    where not exists (
        select 1 from known_channels where known_channels.channel_name = seen_channels.channel_name
    )
),

final as (
    select
        rh_surrogate_key('channel|' || channel_name) as channel_key,
        cast(channel_name as varchar) as channel_name,
        cast(channel_type as varchar) as channel_type,
        false as is_unknown
    from channels

    union all

    select
        cast(0 as bigint) as channel_key,
        'unknown' as channel_name,
        'unknown' as channel_type,
        true as is_unknown
)

select * from final
