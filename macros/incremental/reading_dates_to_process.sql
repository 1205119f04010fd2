{#-
    The reading dates an incremental run of the current model must rebuild,
    as a list of 'yyyy-MM-dd' strings; none on a full build (rebuild all).

    A date is rebuilt when `upstream` holds a row for it that landed after
    the newest row this model has seen (late-arriving or reloaded data, at
    any age), or when it is one of the last `vitals_lookback_days` dates
    already built (a safety net for corrections that keep their old
    landing time), or when `also_rebuild` returns it. Everything else keeps
    its partition.

    Arguments:
      upstream: the relation this model reads from (a source or ref).
      upstream_landed_at: that relation's landing-time column.
      also_rebuild: optional SQL query returning more dates to rebuild, as
        'yyyy-MM-dd' strings in its only column: the dates whose content
        changed without new landings, such as a consent withdrawal (see
        reading_dates_of_consent_changes and its siblings).
    Requires the current model to have `reading_date` and `landed_at` columns.
-#}
{% macro reading_dates_to_process(upstream, upstream_landed_at, also_rebuild=none) %}
    {#- `this` is undefined while a dbt unit test compiles the model. #}
    {% if not execute or this is none or not is_incremental() %}
        {{ return(none) }}
    {% endif %}
    {% set query %}
        with built as (
            select
                max(landed_at) as watermark,
                max(reading_date) as last_date
            from {{ this }}
        )
        select distinct cast(upstream.reading_date as string) as reading_date
        from {{ upstream }} as upstream
        cross join built
        where
            upstream.{{ upstream_landed_at }} > coalesce(built.watermark, timestamp'1900-01-01 00:00:00')
            or upstream.reading_date > date_sub(built.last_date, {{ var('vitals_lookback_days') | int }})
        {%- if also_rebuild %}
        union
        {{ also_rebuild }}
        {%- endif %}
        order by 1
    {% endset %}
    {% set dates = run_query(query).columns[0].values() | list %}
    {% do log("incremental " ~ this ~ ": rebuilding " ~ (dates | length) ~ " reading date(s)"
        ~ (": " ~ dates | join(", ") if dates else ""), info=true) %}
    {{ return(dates) }}
{% endmacro %}
