"""The data contract: schemas, validation, bands and packaged reference data."""
