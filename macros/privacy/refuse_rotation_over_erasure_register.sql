{#-
    Called by register_pseudonym_key before it records a new key version.
    raw.erasure_register identifies erased subjects only by their pseudonym
    under the key in use when they were erased (their raw ids are gone, on
    purpose). After a rotation the loader would compute new pseudonyms that
    match none of them, so re-loading an old landing file would silently
    bring erased people back. Until the register can be re-keyed, a
    rotation is refused while it holds anyone: failing loudly is the safe
    side (README, "Known limits").

    Arguments:
      previous_version: the key version registered so far (an integer),
        named in the error.
-#}
{% macro refuse_rotation_over_erasure_register(previous_version) %}
    {% set declared = restricted_table('erasure_register') %}
    {% set register = adapter.get_relation(database=none, schema=declared.schema, identifier=declared.identifier) %}
    {% if register is not none %}
        {% set erased = run_query(
            'select count(distinct subject_pseudonym_id) from ' ~ register).columns[0].values()[0] | int %}
        {% if erased > 0 %}
            {{ exceptions.raise_compiler_error(
                "Key rotation refused: raw.erasure_register holds " ~ erased ~ " erased subject(s) known only by "
                ~ "their version-" ~ previous_version ~ " pseudonym, which a new key could not match when an old "
                ~ "landing file is re-loaded. See docs/known-limits.md (key rotation after an erasure).") }}
        {% endif %}
    {% endif %}
{% endmacro %}
