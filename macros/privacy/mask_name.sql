{#-
    Mask a person's name, keeping only the initial letter of each word:
    'Jean Dupont' -> 'J*** D***', 'Dupont, Jean' -> 'D*** J***',
    "Gerard 't Hooft" -> 'G*** t*** H***'. Every word becomes exactly four
    characters (its first letter, skipping leading punctuation, then '***'),
    so the mask leaks neither the length of the name nor its punctuation; a
    word without a letter is dropped.
-#}
{% macro mask_name(column) -%}
    nullif(
        array_join(
            transform(
                filter(
                    transform(
                        split(trim({{ column }}), '[\\s,]+'),
                        name_part -> regexp_extract(name_part, '(\\p{L})', 1)
                    ),
                    initial -> initial != ''
                ),
                initial -> concat(initial, '***')
            ),
            ' '
        ),
        ''
    )
{%- endmacro %}
