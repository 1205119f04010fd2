{#-
    Pseudonym of a subject in one dataset's domain: lowercase hex of
    HMAC-SHA256(key, '<domain>:' || subject pseudonym).

    The subject pseudonym (pseudonymize) is shared by the datasets that must
    join (vitals, subscriptions, events). A relation that must not join them
    (the k-anonymous users table) carries the member under a domain pseudonym
    instead: a different, unlinkable value for the same member, so no join
    between the two puts their quasi-identifiers side by side. Only a holder
    of the key can map one to the other. Models that call this must be
    tables or ephemeral (see pseudonym_key).
-#}
{% macro domain_pseudonym(subject_pseudonym, domain) -%}
    lower(hex(hmac({{ pseudonym_key() }}, concat('{{ domain }}:', cast({{ subject_pseudonym }} as string)))))
{%- endmacro %}
