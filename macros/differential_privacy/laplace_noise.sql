{#-
    A Laplace(0, scale) draw per row, by inverse transform sampling from a
    uniform column: -scale * sign(u) * ln(1 - 2|u|), u uniform on [-0.5, 0.5).
    The uniform draw must be its own column (computed once per row in an
    earlier CTE) because the expression uses it twice.

    For a count or sum whose sensitivity (the most one person can change it,
    after clipping contributions) is Δ, scale = Δ / ε gives ε-differential
    privacy for that release.

    Arguments:
      uniform_column: column holding rand() - 0.5.
      scale: Δ / ε, a number or SQL expression.
-#}
{% macro laplace_noise(uniform_column, scale) -%}
    (
        -({{ scale }}) * signum({{ uniform_column }})
        * ln(greatest(1 - 2 * abs({{ uniform_column }}), 1e-300))
    )
{%- endmacro %}
