"""The benchmark: hand-written Spark jobs and the runner that times them against dbt."""
