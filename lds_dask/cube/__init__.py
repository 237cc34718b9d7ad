"""The all-LA profile cube: built from the store, written to and read from zarr."""

from lds_dask.cube.build import CubeConfig, build_cube, cube_to_frame, load_nodes, open_cube
from lds_dask.cube.read import CubeError

__all__ = ["CubeConfig", "CubeError", "build_cube", "cube_to_frame", "load_nodes", "open_cube"]
