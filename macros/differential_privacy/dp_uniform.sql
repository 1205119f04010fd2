{#-
    The uniform draw on [-0.5, 0.5) that laplace_noise turns into noise.
    Seeded only when var `dp_seed` is set (tests, to make a release
    reproducible); otherwise fresh randomness per run, because noise that
    anyone can regenerate from the code protects nothing.

    Arguments:
      stream: offset added to the seed, so two draws in one row differ.
-#}
{% macro dp_uniform(stream=0) -%}
    {%- set seed = var('dp_seed', none) -%}
    (rand({{ (seed | int + stream) if seed is not none else '' }}) - 0.5)
{%- endmacro %}
