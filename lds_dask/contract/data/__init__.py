"""lds_dask.contract.data."""
