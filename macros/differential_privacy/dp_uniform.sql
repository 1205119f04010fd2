{#-
    The uniform draw on [-0.5, 0.5) that laplace_noise turns into noise.
    Seeded only when var `dp_seed` is set (tests, to make a release
    reproducible); otherwise fresh randomness per run, because noise that
    anyone can regenerate from the code protects nothing.

    Spark seeds partition i of rand(s) with s + i, so streams are spaced a
    prime far beyond any partition count apart: rand(seed + 1) would replay
    rand(seed) shifted by one partition.

    Arguments:
      stream: which independent stream (0, 1, ...), so two draws in one row differ.
-#}
{% macro dp_uniform(stream=0) -%}
    {%- set seed = var('dp_seed', none) -%}
    (rand({{ (seed | int + stream * 1000000007) if seed is not none else '' }}) - 0.5)
{%- endmacro %}
