"""The validated, LA-partitioned store: layout, manifest, commit, readers."""
