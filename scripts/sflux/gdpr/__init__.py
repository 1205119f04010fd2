"""GDPR data-subject requests: export, erasure and verification over the manifest of subject data."""
