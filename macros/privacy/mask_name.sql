{#-
    Mask a person's name, keeping only the initial of each word:
    'Jean Dupont' -> 'J*** D***', 'Dupont, Jean' -> 'D*** J***'.
    Every word becomes exactly four characters, so the mask leaks neither the
    length of the name nor its punctuation.
-#}
{% macro mask_name(column) -%}
    nullif(
        array_join(
            transform(
                filter(split(trim({{ column }}), '[\\s,]+'), name_part -> name_part != ''),
                name_part -> concat(left(name_part, 1), '***')
            ),
            ' '
        ),
        ''
    )
{%- endmacro %}
