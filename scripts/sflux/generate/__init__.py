"""Synthetic SantéFlux landing data (scripts/generate_data.py; the run is
sflux.generate.run.generate): subscriptions plus per-minute heart-rate
readings for N users over D days, with faults injected at known rates.

Design choices, and why:

* One seed drives everything (numpy Generators and seeded Faker instances),
  and nothing reads the clock, so the same arguments give byte-identical
  files. That makes test failures reproducible and diffs meaningful.
* Faker only builds small pools (names per locale); rows just index into
  per-user arrays. Per-reading work is a few vectorised numpy passes plus
  Arrow's C++ CSV writer, which keeps the cost per row tiny.
* Users are processed in chunks so memory stays bounded for large runs.
* Every injected fault is counted in ``generation_manifest.json`` so tests
  and data-quality checks downstream can assert exact numbers instead of
  "roughly 0.5 %". The heart-rate bounds and the frozen-sensor rule are read
  from dbt_project.yml (the project's single source for them), and the
  natural signal is kept clear of false "frozen" windows, so the warehouse's
  frozen-sensor count can be compared with the manifest exactly.
"""
