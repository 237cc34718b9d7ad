"""Job specs and the end-to-end refresh."""
