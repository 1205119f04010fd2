{#-
    Start of the tumbling window of `window_minutes` that contains `timestamp_column`.
    Windows are aligned to the UTC epoch, so a timestamp exactly on a boundary
    (12:10:00 for 10-minute windows) opens a new window, and the same reading
    always falls in the same window whatever else is in the batch.
-#}
{% macro tumbling_window_start(timestamp_column, window_minutes) -%}
    timestamp_seconds(
        floor(unix_seconds({{ timestamp_column }}) / ({{ window_minutes }} * 60))
        * ({{ window_minutes }} * 60)
    )
{%- endmacro %}
