{#-
    Replace a value by its token from the token vault (restricted zone). The
    token ('tok_' + 32 hex characters, random) carries no information about the
    value; only the vault, which never leaves `raw`, maps it back, through the
    audited detokenize operation (scripts/detokenize.py).
    The vault must already hold the value: models/restricted/token_vault.sql
    tokenizes every value whose column policy is `tokenize`, and models that
    call this macro declare `-- depends_on: {{ ref('token_vault') }}`.

    Arguments:
      column: the column to tokenize, qualified by its relation alias.
      domain: the vault domain (the raw column's `pii` type, e.g. national_id).
-#}
{% macro tokenize(column, domain) -%}
    (
        select max(token_vault.token)
        from {{ ref('token_vault') }} as token_vault
        where
            token_vault.token_domain = '{{ domain }}'
            and token_vault.token_value = {{ column }}
    )
{%- endmacro %}
