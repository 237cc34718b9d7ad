"""Ingest: validate, quarantine, deduplicate, link and partition raw extracts."""
