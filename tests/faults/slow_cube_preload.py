"""Worker preload for the worker-killed fault test (``dask worker --preload``).

Each cube counting task, on start, writes ``start-<pid>-<bundle>-<uuid>`` and
``running-<pid>-<bundle>-<uuid>`` into ``LDS_FAULT_SENTINELS`` (``<bundle>`` names the
task's LAs), waits ``LDS_FAULT_DELAY`` seconds, does its real work, and removes its
``running-`` file. The test kills a worker that has a ``running-`` file, so the kill lands
while a cube task is running on it, and the ``start-`` files show the task ran again.
The real kernel is unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
from pathlib import Path

from lds_dask.cube import counts as cube_counts

_real = cube_counts.count_bundle


def bundle_id(las) -> str:
    return hashlib.sha256(",".join(las).encode()).hexdigest()[:12]


@functools.wraps(_real)
def count_bundle(bundle, *args, **kwargs):
    sentinels = Path(os.environ["LDS_FAULT_SENTINELS"])
    name = f"{os.getpid()}-{bundle_id(bundle)}-{uuid.uuid4().hex[:8]}"
    (sentinels / f"start-{name}").touch()
    running = sentinels / f"running-{name}"
    running.touch()
    time.sleep(float(os.environ.get("LDS_FAULT_DELAY", "1.0")))
    try:
        return _real(bundle, *args, **kwargs)
    finally:
        running.unlink()


# Tasks carry the kernel by reference (module + name), so workers call this wrapper.
cube_counts.count_bundle = count_bundle
