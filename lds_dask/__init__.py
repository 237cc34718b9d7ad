"""lds-dask: all-LA COVID-19 testing profiles from record-level NHS Test and Trace data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lds-dask")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"


def __getattr__(name):
    # Heavy modules load on first use, so `import lds_dask` and the CLI stay fast.
    if name in ("open_cube", "cube_to_frame", "build_cube", "CubeConfig"):
        from lds_dask import cube

        return getattr(cube, name)
    raise AttributeError(name)
