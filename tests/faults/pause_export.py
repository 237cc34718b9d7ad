"""``python -m tests.faults.pause_export SENTINEL lds-dask-args...``: the refresh CLI, with
the export pausing forever after its first table file is written, having touched SENTINEL.

The killed-mid-export test SIGKILLs this process while it waits, so the kill lands in the
middle of a real export: some files written into the export's temp folder, nothing
published. (It hooks ``lds_dask.outputs.export._write_frame``, the export's one table writer.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lds_dask.cli import main
from lds_dask.outputs import export


def _pause_after(real):
    def write_then_pause(*args, **kwargs):
        real(*args, **kwargs)
        Path(sys.argv[1]).touch()
        while True:
            time.sleep(1)

    return write_then_pause


if __name__ == "__main__":
    assert hasattr(export, "_write_frame"), (
        "lds_dask.outputs.export._write_frame is gone: update me"
    )
    export._write_frame = _pause_after(export._write_frame)
    main(sys.argv[2:])
