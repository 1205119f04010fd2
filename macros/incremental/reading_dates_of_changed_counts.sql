{#-
    SQL query: the reading dates (as 'yyyy-MM-dd') whose row count in
    `upstream` differs from the count the current model recorded for them
    (rows removed upstream by a consent withdrawal or an erasure land
    nothing new, so the watermark alone would not rebuild them). For an
    aggregate-per-date model, to pass as `also_rebuild` to
    reading_dates_to_process.

    Arguments:
      upstream: the relation this model counts, with `reading_date`.
      count_column: the current model's column holding upstream's row count
        per reading_date.
-#}
{% macro reading_dates_of_changed_counts(upstream, count_column) -%}
    select cast(built.reading_date as string) as reading_date
    from {{ this }} as built
    left join (
        select
            upstream.reading_date,
            count(*) as n_rows
        from {{ upstream }} as upstream
        group by upstream.reading_date
    ) as counted
        on built.reading_date = counted.reading_date
    where not built.{{ count_column }} <=> counted.n_rows
{%- endmacro %}
