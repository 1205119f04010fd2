{#-
    SHA-256 of a value, without a key. WARNING: never use it on identifiers.
    An id such as 'user_000001' has a few million possible values; hashing all
    of them takes seconds, so an unkeyed hash of an id is a lookup table away
    from the id (tests/python/test_privacy_macros.py reverses every one).
    Use `pseudonymize` (keyed HMAC) for ids. This macro is only for values
    with real entropy, e.g. deduplicating free text, and no policy maps a
    PII column to it.

    Arguments:
      column: SQL expression to hash.
-#}
{% macro unkeyed_hash(column) -%}
    sha2(cast({{ column }} as string), 256)
{%- endmacro %}
