{#-
    Mask an email address, keeping the first two characters of the local part
    and the top-level domain: 'jean.dupont@example.fr' -> 'je***@***.fr'.
    The fixed-width stars hide the lengths. A value that is not shaped like an
    email becomes NULL rather than passing through unmasked.

    Arguments:
      column: SQL expression holding the email.
-#}
{% macro mask_email(column) -%}
    case
        when trim({{ column }}) rlike '^[^@\\s]+@[^@\\s]+\\.[^@\\s.]+$'
            then concat(
                left(substring_index(trim({{ column }}), '@', 1), 2),
                '***@***.',
                lower(substring_index(trim({{ column }}), '.', -1))
            )
    end
{%- endmacro %}
