"""Running work: the task runner, the Dask cluster, content hashes."""
