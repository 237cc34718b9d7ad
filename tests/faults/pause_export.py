"""``python -m tests.faults.pause_export SENTINEL lds-dask-args...``: the refresh CLI, with
export pausing forever after its first table file, having touched SENTINEL.

The killed-mid-export test SIGKILLs this process while it waits, so the kill lands in the
middle of a real export: some files written, nothing published yet.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lds_dask import export
from lds_dask.cli import main

_real = export._write_frame


def _write_then_pause(frame, path, fmt):
    _real(frame, path, fmt)
    Path(sys.argv[1]).touch()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    export._write_frame = _write_then_pause
    main(sys.argv[2:])
