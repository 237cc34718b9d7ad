"""Benchmarks: ``python -m bench`` (or ``lds-dask bench``) runs the suite; see bench/README.md."""
