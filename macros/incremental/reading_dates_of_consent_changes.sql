{#-
    SQL query: the reading dates (as 'yyyy-MM-dd') on which the members the
    current staging model holds differ from the members it should hold now:
    someone who withdrew consent is still there, or someone who granted it
    (or was re-landed) is missing. A consent change lands no new reading, so
    the watermark alone would keep old partitions; with this, the next build
    empties or fills them however old they are. For a staging model, to pass
    as `also_rebuild` to reading_dates_to_process.

    Consent comes from the base_app__analytics_consent model, which the
    calling staging model also joins, so both apply the same rule.

    It compares (reading_date, member) pairs, not rows: the raw ids are
    pseudonymized once per member and date, and stay inside this query,
    which only returns dates. The current model must be a table (the key is
    applied).

    Arguments:
      source_relation: the raw relation the model reads, with `reading_date`
        and the raw `user_id`.
      subject_column: the current model's pseudonym column of the member.
-#}
{% macro reading_dates_of_consent_changes(source_relation, subject_column) -%}
    {%- set consenting_members -%}
        (
            select
                members.reading_date,
                {{ pseudonymize('members.user_id') }} as {{ subject_column }}
            from (
                select distinct
                    landed.reading_date,
                    landed.user_id
                from {{ source_relation }} as landed
                left semi join {{ ref('base_app__analytics_consent') }} as consent
                    on
                        landed.user_id = consent.user_id
                        and consent.has_analytics_consent
            ) as members
        )
    {%- endset -%}
    {{ reading_dates_of_changed_members(consenting_members, subject_column) }}
{%- endmacro %}
