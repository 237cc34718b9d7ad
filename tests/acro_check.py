"""Load an export's results.json with ACRO's own loader and check what it names.

Runs inside the acro virtual environment (tests/acro_env.py), so it imports acro and the
standard library only, never lds_dask. Usage: ``python acro_check.py EXPORT_DIR``.

Exit 0 and print one JSON line ``{"acro": version, "outputs": {uid: [file, ...]}}`` when:
results.json lists at least one output; every output names at least one file and every
named file exists; ``acro.record.load_records`` reads the folder and returns exactly the
listed outputs, each with an ACRO status and its CSV files loaded as tables; and
``Records.validate_outputs`` asks for nothing (an output that is not "pass" carries the
exception text ACRO would otherwise prompt for). Otherwise exit 1 with every problem found.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from acro.record import load_records
from acro.version import __version__

STATUSES = ("pass", "fail", "review")


def named_files(directory: Path) -> tuple[dict[str, list[str]], list[str]]:
    """The files each output of results.json names, and the problems with them."""
    listed = json.loads((directory / "results.json").read_text(encoding="utf-8"))["results"]
    outputs = {uid: [f["name"] for f in rec["files"]] for uid, rec in listed.items()}
    problems = [] if outputs else ["results.json lists no outputs"]
    for uid, names in outputs.items():
        if not names:
            problems.append(f"{uid}: names no file")
        missing = [n for n in names if not (directory / n).is_file()]
        problems += [f"{uid}: names {n}, which does not exist" for n in missing]
    return outputs, problems


def loaded_problems(directory: Path, outputs: dict[str, list[str]]) -> list[str]:
    """What ACRO's loader and its completeness check make of the folder."""
    try:
        records = load_records(str(directory))
    except Exception as exc:  # any failure to load is the finding
        return [f"load_records raised {type(exc).__name__}: {exc}"]
    problems = []
    if sorted(records.get_keys()) != sorted(outputs):
        problems.append(f"load_records read {sorted(records.get_keys())}, not {sorted(outputs)}")
    for uid in records.get_keys():
        record, names = records.get(uid), outputs.get(uid, [])
        tables = [n for n in names if n.endswith(".csv")]
        if record.status not in STATUSES:
            problems.append(f"{uid}: status {record.status!r} is not one of {STATUSES}")
        if len(record.output) != (len(tables) or len(names)):
            problems.append(f"{uid}: ACRO loaded {len(record.output)} outputs of {names}")
    try:
        records.validate_outputs()  # prompts (stdin is closed: EOFError) if one is missing
    except EOFError:
        problems.append("Records.validate_outputs asked for an exception: an output needs one")
    return problems


def main(directory: Path) -> int:
    outputs, problems = named_files(directory)
    if not problems:
        problems = loaded_problems(directory, outputs)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(json.dumps({"acro": __version__, "outputs": outputs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
