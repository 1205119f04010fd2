{#-
    SQL query: the reading dates (as 'yyyy-MM-dd') on which the members of
    the current model differ from the members of `upstream` (a consent
    change or an erasure upstream rewrote a date without new landings, so
    the watermark alone would not rebuild it). For an intermediate model, to
    pass as `also_rebuild` to reading_dates_to_process.

    A member whose every upstream row on a date is legitimately filtered out
    by the model also counts as a difference: that date is rebuilt each
    run, which costs time but never correctness.

    Arguments:
      upstream: the relation this model reads from (or a parenthesized
        query), with `reading_date` and the same subject column.
      subject_column: the pseudonym column of the member, in both relations.
      upstream_filter: optional SQL predicate on `upstream` (alias upstream):
        only its rows can reach the model, e.g. the quality filter.
-#}
{% macro reading_dates_of_changed_members(upstream, subject_column, upstream_filter=none) -%}
    select cast(coalesce(expected.reading_date, held.reading_date) as string) as reading_date
    from (
        select distinct
            upstream.reading_date,
            upstream.{{ subject_column }} as member_pseudonym_id
        from {{ upstream }} as upstream
        {%- if upstream_filter %}
        where {{ upstream_filter }}
        {%- endif %}
    ) as expected
    full outer join (
        select distinct
            built.reading_date,
            built.{{ subject_column }} as member_pseudonym_id
        from {{ this }} as built
    ) as held
        on
            expected.reading_date = held.reading_date
            and expected.member_pseudonym_id = held.member_pseudonym_id
    where expected.member_pseudonym_id is null or held.member_pseudonym_id is null
{%- endmacro %}
