"""Worker preload for the worker-killed fault test (``dask worker --preload``).

Each cube counting task touches a sentinel file named after its worker's pid, then waits
``LDS_FAULT_DELAY`` seconds before doing its real work, so the test can kill a worker
process while a cube task is running on it. The real kernel is unchanged.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path

from lds_dask import cube_counts

_real = cube_counts.count_bundle


@functools.wraps(_real)
def count_bundle(*args, **kwargs):
    sentinels = Path(os.environ["LDS_FAULT_SENTINELS"])
    (sentinels / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
    time.sleep(float(os.environ.get("LDS_FAULT_DELAY", "1.0")))
    return _real(*args, **kwargs)


# Tasks carry the kernel by reference (module + name), so workers call this wrapper.
cube_counts.count_bundle = count_bundle
