{#-
    Truncate an IP address to its network: IPv4 keeps the /24
    ('192.168.17.42' -> '192.168.17.0/24'), IPv6 keeps the /48
    ('2001:db8:85a3:8d3:1319:8a2e:370:7348' -> '2001:db8:85a3::/48').
    Compressed IPv6 ('2001:db8::1') is expanded first, so '::' never hides
    where the /48 ends; leading zeros are dropped (RFC 5952 style). Anything
    that is not a valid address (an octet above 255, a five-digit group, two
    '::', too many or too few groups, IPv4-mapped forms) becomes NULL.

    Arguments:
      column: SQL expression holding the address.
-#}
{% macro mask_ip(column) -%}
    {%- set ip = 'lower(trim(' ~ column ~ '))' -%}
    {%- set left_groups = "filter(split(split(" ~ ip ~ ", '::')[0], ':'), ip_group -> ip_group != '')" -%}
    {%- set right_groups = "filter(split(coalesce(element_at(split(" ~ ip ~ ", '::'), 2), ''), ':'), ip_group -> ip_group != '')" -%}
    {%- set octet = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])' -%}
    {%- set groups = '[0-9a-f]{1,4}(:[0-9a-f]{1,4})*' -%}
    case
        when {{ ip }} rlike '^{{ octet }}(\\.{{ octet }}){3}$'
            then concat(substring_index({{ ip }}, '.', 3), '.0/24')
        when
            {{ ip }} rlike '^[0-9a-f]{1,4}(:[0-9a-f]{1,4}){7}$'
            or (
                {{ ip }} rlike '^({{ groups }})?::({{ groups }})?$'
                and size({{ left_groups }}) + size({{ right_groups }}) <= 7
            )
            then concat(
                array_join(
                    transform(
                        slice(
                            case
                                when {{ ip }} like '%::%'
                                    then concat(
                                        {{ left_groups }},
                                        array_repeat('0', greatest(0, 8 - size({{ left_groups }}) - size({{ right_groups }}))),
                                        {{ right_groups }}
                                    )
                                else split({{ ip }}, ':')
                            end,
                            1,
                            3
                        ),
                        ip_group -> coalesce(nullif(regexp_replace(ip_group, '^0+', ''), ''), '0')
                    ),
                    ':'
                ),
                '::/48'
            )
    end
{%- endmacro %}
