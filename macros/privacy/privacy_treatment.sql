{#-
    One select-list entry (`<expression> as <output column>`) applying a
    declared treatment to a raw column, or None for `drop`. The output column
    is named after the treatment unless the policy sets `output`:

      keep                       -> same name
      drop                       -> not selected
      pseudonymize               -> <name minus _id>_pseudonym_id (keyed HMAC)
      tokenize                   -> <name>_token (vault domain = the pii type)
      mask_name | mask_email | mask_phone | mask_ip -> <name>_masked
      generalize_age_band        -> age_band
      generalize_postcode        -> <name>_prefix
      generalize_city_to_region  -> region
      truncate_to_month          -> <name minus _at>_month (first day of month)
      truncate_to_date           -> <name minus _at>_date

    Arguments:
      policy: dict from privacy_policy_of (pii, treatment, output, keep_chars).
      column_sql: the qualified raw column.
      column_name: its bare name.
-#}
{% macro privacy_treatment(policy, column_sql, column_name) %}
    {%- set treatment = policy.treatment -%}
    {%- set stem = column_name[:-3] if column_name.endswith('_at') or column_name.endswith('_id') else column_name -%}
    {%- if treatment == 'drop' -%}
        {{ return(none) }}
    {%- elif treatment == 'keep' -%}
        {%- set pair = [column_sql, column_name] -%}
    {%- elif treatment == 'pseudonymize' -%}
        {%- set pair = [pseudonymize(column_sql), stem ~ '_pseudonym_id' if column_name.endswith('_id') else column_name ~ '_pseudonym'] -%}
    {%- elif treatment == 'tokenize' -%}
        {%- set pair = [tokenize(column_sql, policy.pii or column_name), column_name ~ '_token'] -%}
    {%- elif treatment == 'mask_name' -%}
        {%- set pair = [mask_name(column_sql), column_name ~ '_masked'] -%}
    {%- elif treatment == 'mask_email' -%}
        {%- set pair = [mask_email(column_sql), column_name ~ '_masked'] -%}
    {%- elif treatment == 'mask_phone' -%}
        {%- set pair = [mask_phone(column_sql), column_name ~ '_masked'] -%}
    {%- elif treatment == 'mask_ip' -%}
        {%- set pair = [mask_ip(column_sql), column_name ~ '_masked'] -%}
    {%- elif treatment == 'generalize_age_band' -%}
        {%- set pair = [generalize_age_band(column_sql), 'age_band'] -%}
    {%- elif treatment == 'generalize_postcode' -%}
        {%- set pair = [generalize_postcode(column_sql, policy.keep_chars), column_name ~ '_prefix'] -%}
    {%- elif treatment == 'generalize_city_to_region' -%}
        {%- set pair = [generalize_city_to_region(column_sql), 'region'] -%}
    {%- elif treatment == 'truncate_to_month' -%}
        {%- set pair = ['cast(date_trunc(\'month\', ' ~ column_sql ~ ') as date)', stem ~ '_month'] -%}
    {%- elif treatment == 'truncate_to_date' -%}
        {%- set pair = ['to_date(' ~ column_sql ~ ')', stem ~ '_date'] -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "Unknown privacy treatment '" ~ treatment ~ "' declared for column " ~ column_name
            ~ " (see macros/privacy/privacy_treatment.sql for the list).") }}
    {%- endif -%}
    {{ return(pair[0] ~ ' as ' ~ (policy.output or pair[1])) }}
{% endmacro %}
