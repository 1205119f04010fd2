-- The token vault: one random token per distinct value of every raw column
-- whose declared policy is `tokenize`. It lives in the restricted `raw` zone;
-- only the tokens travel to the anonymized zone (macro tokenize), and only
-- the audited detokenize operation (scripts/detokenize.py) reads values back.
-- Append-only: a value keeps its token for ever, so tokens stay stable across
-- builds; never full-refreshed (config full_refresh: false), which would
-- re-issue every token. Reads source() outside staging on purpose: holding raw
-- values is this model's job, and it never leaves the restricted zone.
-- depends_on: {{ source('app', 'users') }}
{%- set tokenized = [] %}
{%- if execute %}
    {%- for node in graph.sources.values() if node.package_name == project_name %}
        {%- for column_name, column in node.columns.items() %}
            {%- set policy = privacy_policy_of(column) %}
            {%- if policy.treatment == 'tokenize' %}
                {%- do tokenized.append({
                    'relation': source(node.source_name, node.name),
                    'column': column_name,
                    'domain': policy.pii or column_name,
                }) %}
            {%- endif %}
        {%- endfor %}
    {%- endfor %}
{%- endif %}

with

tokenizable_values as (

    {%- for item in tokenized %}
        select distinct
            '{{ item.domain }}' as token_domain,
            cast(`{{ item.column }}` as string) as token_value
        from {{ item.relation }}
        where `{{ item.column }}` is not null
        {%- if not loop.last %}
            union
        {%- endif %}
    {%- endfor %}
    {%- if tokenized | length == 0 %}
        select
            cast(null as string) as token_domain,
            cast(null as string) as token_value
        where false
    {%- endif %}

),

new_values as (

    select tokenizable_values.*
    from tokenizable_values
    {%- if is_incremental() %}
        left anti join {{ this }} as vault
            on
                tokenizable_values.token_domain = vault.token_domain
                and tokenizable_values.token_value = vault.token_value
    {%- endif %}

),

tokenized as (

    select
        token_domain,
        token_value,
        -- Random, not derived from the value: a token reveals nothing even
        -- to someone holding the pseudonymization key.
        concat('tok_', replace(uuid(), '-', '')) as token,
        current_timestamp() as tokenized_at
    from new_values

)

select * from tokenized
