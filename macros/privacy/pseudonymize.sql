{#-
    Keyed pseudonym of an identifier: lowercase hex of HMAC-SHA256(key, value).

    Keyed, because ids such as `user_000001` have so little entropy that an
    unkeyed hash is reversed by enumerating them. The same key gives the same
    pseudonym in every model, so pseudonymized tables still join.
    Models that call this must be tables (see pseudonym_key).
-#}
{% macro pseudonymize(column) -%}
    lower(hex(hmac({{ pseudonym_key() }}, cast({{ column }} as string))))
{%- endmacro %}
