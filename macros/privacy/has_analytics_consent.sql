{#-
    Predicate: the member behind `user_id_column` has consented to analytics.
    Every staging model that reads personal data filters on it, so members
    without consent reach neither the anonymized nor the analytics zone. A
    semi-join on the raw users table; a member unknown to it has no consent.

    Arguments:
      user_id_column: the raw user id column of the model's source.
-#}
{% macro has_analytics_consent(user_id_column) -%}
    {{ user_id_column }} in (
        select consenting_users.user_id
        from {{ source('app', 'users') }} as consenting_users
        where consenting_users.consent_analytics
    )
{%- endmacro %}
