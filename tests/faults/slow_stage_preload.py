"""Worker preload for the lost-workers tests (dask's ``distributed.worker.preload``).

Each ingest task of the kernel named by ``LDS_FAULT_KERNEL`` (``stage``: stage 1,
``compact``: stage 2), on start, writes ``running-<pid>-<uuid>`` into
``LDS_FAULT_SENTINELS`` and waits ``LDS_FAULT_DELAY`` seconds before its real work, so a
test can kill the workers while those tasks run. The real kernels are unchanged.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path

from lds_dask.ingest import compact, run, stage


def slowed(real):
    @functools.wraps(real)
    def kernel(*args, **kwargs):
        sentinels = Path(os.environ["LDS_FAULT_SENTINELS"])
        running = sentinels / f"running-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        running.touch()
        time.sleep(float(os.environ.get("LDS_FAULT_DELAY", "1.0")))
        try:
            return real(*args, **kwargs)
        finally:
            running.unlink(missing_ok=True)

    return kernel


# Tasks carry the kernel by reference (module + name), so workers call these wrappers.
if os.environ.get("LDS_FAULT_KERNEL", "stage") == "stage":
    stage.stage_files = run.stage_files = slowed(stage.stage_files)
else:
    compact.compact_bundle = run.compact_bundle = slowed(compact.compact_bundle)
