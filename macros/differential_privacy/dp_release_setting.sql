{#-
    One setting of the differentially private release in progress: var
    `dp_release`, which scripts/release_dp.py passes from the DPO's
    conf/differential_privacy.yml. The project declares no default, so the
    bounds and the domain have one source only.

    Without the var (any build but a release's, and parse, compile, docs,
    lint) it returns a fixed sample whose release_id is 'compile_only',
    which the input model turns into an empty table.

    Arguments:
      name: release_id, first_date, last_date (yyyy-MM-dd),
        max_cells_per_member, max_events_per_member_cell or
        max_amount_cents_per_member_cell.
-#}
{% macro dp_release_setting(name) -%}
    {%- set compile_only = {
        'release_id': 'compile_only',
        'first_date': '2026-01-01',
        'last_date': '2026-01-01',
        'max_cells_per_member': 1,
        'max_events_per_member_cell': 1,
        'max_amount_cents_per_member_cell': 1,
    } -%}
    {%- if name not in compile_only -%}
        {{ exceptions.raise_compiler_error("dp_release_setting: unknown setting '" ~ name ~ "'") }}
    {%- endif -%}
    {%- set settings = var('dp_release', none) -%}
    {%- if settings is none -%}
        {{ return(compile_only[name]) }}
    {%- endif -%}
    {%- set value = settings[name] if settings is mapping and name in settings else none -%}
    {%- set pattern = '[0-9]{4}-[0-9]{2}-[0-9]{2}' if name.endswith('_date')
        else '[0-9a-z_]{1,64}' if name == 'release_id' else '[1-9][0-9]{0,17}' -%}
    {%- if value is none or not modules.re.fullmatch(pattern, value | string) -%}
        {{ exceptions.raise_compiler_error(
            "var dp_release." ~ name ~ " must match " ~ pattern ~ ", got " ~ value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
