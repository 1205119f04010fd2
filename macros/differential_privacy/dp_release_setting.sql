{#-
    One setting of the differentially private release in progress: var
    `dp_release`, which scripts/release_dp.py passes from the DPO's
    conf/differential_privacy.yml. The project declares no default, so the
    bounds and the domain have one source only.

    Building the release's input without it (`dbt build --selector release`
    by hand) stops with a one-line error. Parsing, compiling, docs and lint
    get a fixed compile-only sample instead, so they need no release.

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
        {%- if execute and flags.WHICH in ('run', 'build') and not var('offline_compile', false) -%}
            {{ exceptions.raise_compiler_error(
                "The DP release's input (" ~ model.name ~ ") is built only by `make release`"
                ~ " (scripts/release_dp.py), which passes the DPO's settings from"
                ~ " conf/differential_privacy.yml; see docs/privacy.md.") }}
        {%- endif -%}
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
