"""``python -m lds_dask`` is the ``lds-dask`` command."""

from lds_dask.cli import main

main()
