-- Country spellings that name the same country, mapped to one standard name. A NULL
-- country_name marks a value that names no country: it goes to the unknown geography.
-- 'European Community' is kept as it is: it is not a country, but it is what the data says.
with

aliases as (
    select * from (
        values
            ('EIRE', 'Ireland'),
            ('REPUBLIC OF IRELAND', 'Ireland'),
            ('RSA', 'South Africa'),
            ('USA', 'United States'),
            ('US', 'United States'),
            ('U.S.', 'United States'),
            ('UNITED STATES OF AMERICA', 'United States'),
            ('UK', 'United Kingdom'),
            ('GREAT BRITAIN', 'United Kingdom'),
            ('UNSPECIFIED', null),
            ('UNKNOWN', null)
    ) as a (country_alias, country_name)
)

select
    cast(country_alias as varchar) as country_alias,
    cast(country_name as varchar) as country_name
from aliases
