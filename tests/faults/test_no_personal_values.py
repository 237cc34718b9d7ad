"""No personal value in any message, from any path: markers planted in every personal field
(the schemas' ``personal: true`` fields) go through every error path of ``validate`` and
``ingest``, run as the real command line in subprocesses, on a real Dask cluster where the
command uses one; stdout, stderr, every Dask log and every file written are searched for
them. Only the quarantine files hold raw rows, by design (they stay inside the TRE): the
store's ``quarantine/`` and ``validate --quarantine``'s folder are the only places left out.
Each failure must also be one ``error:`` line with its exit code and no traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import polars as pl
import psutil
import pytest

from lds_dask.contract.schemas import load_schema
from lds_dask.contract.validation import rule_masks
from lds_dask.runtime.errors import ExitCode
from tests.faults.refresh_helpers import start_cluster, worker_env
from tests.unit.test_schemas import good_record

pytestmark = pytest.mark.cluster

MARK = "PERSONALMARKER"
TABLES = ("test_records", "survey_responses")
PERSONAL = {t: load_schema(t).personal_columns for t in TABLES}
SERIAL = count(1)

RECORD = good_record(test_id="", person_id="")
RESPONSE = {
    "respondent_id": "",
    "visit_date": "2021-02-01",
    "la_code": "E06000001",
    "age": "34",
    "sex": "F",
    "ethnicity": "WHITE",
    "swab_result": "NEGATIVE",
    "survey_weight": "250.5",
}
# reason code -> the change that breaks exactly that rule
BAD = {
    "test_records": {
        "test_id:not_null": {"test_id": ""},
        "person_id:not_null": {"person_id": ""},
        "specimen_date:dtype": {"specimen_date": "01/02/2021"},
        "specimen_date:not_null": {"specimen_date": ""},
        "specimen_date:min": {"specimen_date": "2019-12-31"},
        "specimen_date:max": {"specimen_date": "2999-01-01"},
        "result:not_null": {"result": ""},
        "result:enum": {"result": "MAYBE"},
        "test_type:not_null": {"test_type": ""},
        "test_type:enum": {"test_type": "SWAB"},
        "pillar:dtype": {"pillar": "two"},
        "pillar:not_null": {"pillar": ""},
        "pillar:enum": {"pillar": "3"},
        "lsoa11_code:regex": {"lsoa11_code": "W01000001"},
        "lsoa11_code:in_refdata": {"lsoa11_code": "E01999999"},
        "lsoa11_code:lsoa_in_la": {"lsoa11_code": "E01011949"},  # Hartlepool's, not London's
        "la_code:not_null": {"la_code": "", "lsoa11_code": ""},
        "la_code:regex": {"la_code": "S12000033", "lsoa11_code": ""},
        "la_code:in_refdata": {"la_code": "E06999999", "lsoa11_code": ""},
        "age:dtype": {"age": "forty"},
        "age:min": {"age": "-1"},
        "age:max": {"age": "130"},
        "sex:not_null": {"sex": ""},
        "sex:enum": {"sex": "X"},
        "ethnicity:not_null": {"ethnicity": ""},
        "ethnicity:enum": {"ethnicity": "GREEN"},
        "is_symptomatic:dtype": {"is_symptomatic": "perhaps"},
    },
    "survey_responses": {
        "respondent_id:not_null": {"respondent_id": ""},
        "visit_date:dtype": {"visit_date": "1/2/21"},
        "visit_date:not_null": {"visit_date": ""},
        "visit_date:min": {"visit_date": "2019-01-01"},
        "visit_date:max": {"visit_date": "2999-01-01"},
        "la_code:not_null": {"la_code": ""},
        "la_code:regex": {"la_code": "W06000001"},
        "la_code:in_refdata": {"la_code": "E06999999"},
        "age:dtype": {"age": "x"},
        "age:min": {"age": "-2"},
        "age:max": {"age": "200"},
        "sex:not_null": {"sex": ""},
        "sex:enum": {"sex": "Q"},
        "ethnicity:not_null": {"ethnicity": ""},
        "ethnicity:enum": {"ethnicity": "NONE"},
        "swab_result:not_null": {"swab_result": ""},
        "swab_result:enum": {"swab_result": "VOID"},
        "survey_weight:dtype": {"survey_weight": "heavy"},
        "survey_weight:not_null": {"survey_weight": ""},
        "survey_weight:min": {"survey_weight": "-1"},
        "survey_weight:max": {"survey_weight": "1e10"},
    },
}
TEXT_FIELDS = {  # a cell of only spaces in a text field fails <field>:dtype
    "test_records": (
        "test_id",
        "person_id",
        "result",
        "test_type",
        "lsoa11_code",
        "la_code",
        "sex",
        "ethnicity",
    ),
    "survey_responses": ("respondent_id", "la_code", "sex", "ethnicity", "swab_result"),
}
for _table, _names in TEXT_FIELDS.items():
    BAD[_table].update({f"{name}:dtype": {name: "   "} for name in _names})


def marker() -> str:
    return f"{MARK}{next(SERIAL):05d}"


def row(table: str, **change) -> dict:
    """A valid row with a fresh marker in every personal field, then ``change``."""
    base = RECORD if table == "test_records" else RESPONSE
    return {**base, **{name: marker() for name in PERSONAL[table]}, **change}


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))


def csv_text(rows: list[dict]) -> str:
    return "\n".join([",".join(rows[0]), *(",".join(r.values()) for r in rows)]) + "\n"


def every_rule(table: str) -> list[dict]:
    """One row per rule of ``table``, breaking that rule. ``test_id:unique``: a second copy
    of a row that fails on its own, so that no copy of its marker is stored."""
    rows = [row(table, **change) for change in BAD[table].values()]
    if table == "test_records":
        first = row(table, age="999")
        rows += [first, {**first, "age": "34", "person_id": marker()}]
    return rows


def test_the_bad_rows_cover_every_rule():
    for table in TABLES:
        schema = load_schema(table)
        text = pl.DataFrame(schema=dict.fromkeys(schema.columns, pl.String))
        rules = {code for code, _, _ in rule_masks(text, schema, dt.date.today())}
        unique = {f"{f.name}:unique" for f in schema.fields if f.unique}
        assert rules == set(BAD[table]) | unique, table


# ---------------------------------------------------------------- the files of each case


def unclosed_quote(d: Path) -> list[str]:
    rows = [row("test_records") for _ in range(5)]
    text = csv_text(rows).replace(rows[2]["person_id"], '"' + rows[2]["person_id"])
    (d / "quote.csv").write_text(text)
    return ["--raw", str(d / "quote.csv")]


def survey_quote(d: Path) -> list[str]:
    frame([row("test_records") for _ in range(3)]).write_csv(d / "records.csv")
    rows = [row("survey_responses") for _ in range(4)]
    text = csv_text(rows).replace(rows[1]["respondent_id"], rows[1]["respondent_id"] + '"x')
    (d / "survey.csv").write_text(text)
    return ["--raw", str(d / "records.csv"), "--survey", str(d / "survey.csv")]


def latin1(d: Path) -> list[str]:
    rows = [row("test_records") for _ in range(5)]
    text = csv_text(rows).replace(rows[3]["person_id"], rows[3]["person_id"] + "\xe9")
    (d / "latin1.csv").write_bytes(text.encode("latin-1"))
    return ["--raw", str(d / "latin1.csv")]


def bad_utf8(d: Path) -> list[str]:
    rows = [row("test_records") for _ in range(5)]
    test_id = rows[1]["test_id"].encode()
    (d / "utf8.csv").write_bytes(csv_text(rows).encode().replace(test_id, b"\xff\xfe" + test_id))
    return ["--raw", str(d / "utf8.csv")]


def extra_fields(d: Path) -> list[str]:
    lines = csv_text([row("test_records") for _ in range(5)]).splitlines()
    lines[2] += f",{marker()},{marker()}"
    (d / "extra.csv").write_text("\n".join(lines) + "\n")
    return ["--raw", str(d / "extra.csv")]


def duplicate_header(d: Path) -> list[str]:
    rows = [[*row("test_records").values(), marker()] for _ in range(5)]
    lines = [",".join([*RECORD, "person_id"]), *(",".join(r) for r in rows)]
    (d / "dup.csv").write_text("\n".join(lines) + "\n")
    return ["--raw", str(d / "dup.csv")]


def parquet_dtype(d: Path) -> list[str]:
    df = frame([row("test_records") for _ in range(5)])
    df.with_columns(pl.col("age").cast(pl.Float64) + 0.5).write_parquet(d / "types.parquet")
    return ["--raw", str(d / "types.parquet")]


def empty_inputs(d: Path) -> list[str]:
    (d / "in").mkdir()
    (d / "in" / "header.csv").write_text(",".join(RECORD) + "\n")
    pl.DataFrame(schema=dict.fromkeys(RECORD, pl.String)).write_parquet(d / "in" / "none.parquet")
    return ["--raw", str(d / "in")]


def bad_values(d: Path) -> list[str]:
    frame(every_rule("test_records")).write_csv(d / "records.csv")
    frame(every_rule("survey_responses")).write_parquet(d / "survey.parquet")
    return ["--raw", str(d / "records.csv"), "--survey", str(d / "survey.parquet")]


def bad_values_stored(d: Path) -> list[str]:
    """Bad rows (every rule) beside valid rows without markers: the run commits."""
    records = [{**RECORD, "test_id": f"t{i}", "person_id": f"p{i}"} for i in range(40)]
    frame(every_rule("test_records") + records).write_csv(d / "records.csv")
    answers = [{**RESPONSE, "respondent_id": f"r{i}"} for i in range(40)]
    frame(every_rule("survey_responses") + answers).write_csv(d / "survey.csv")
    paths = ["--raw", str(d / "records.csv"), "--survey", str(d / "survey.csv")]
    return [*paths, "--max-reject-rate", "1"]


@dataclass(frozen=True)
class Case:
    """One error path: its files, and per command its exit code and the start of its
    error line ("" when it succeeds)."""

    name: str
    make: Callable[[Path], list[str]]
    validate: tuple[int, str]  # the test_records input
    ingest: tuple[int, str]
    validate_survey: tuple[int, str] = (0, "")


N_RECORDS, N_RESPONSES = len(BAD["test_records"]) + 2, len(BAD["survey_responses"])
CASES = [
    Case("unclosed-quote", unclosed_quote, (2, "line 4, column person_id"), (2, "line 4, column")),
    Case("survey-quote", survey_quote, (0, ""), (2, "line 3, column respondent_id"), (2, "line 3")),
    Case("latin-1", latin1, (2, "line 5, column person_id"), (2, "line 5, column person_id")),
    Case("bad-utf8", bad_utf8, (2, "line 3, column test_id"), (2, "line 3, column test_id")),
    Case("extra-fields", extra_fields, (2, "line 3, field 13"), (2, "line 3, field 13")),
    Case("duplicate-header", duplicate_header, (2, "column(s) person_id"), (2, "column(s)")),
    Case("parquet-dtype", parquet_dtype, (2, "column age is stored"), (2, "column age is")),
    Case("empty-inputs", empty_inputs, (0, ""), (0, "")),
    Case(
        "bad-values",
        bad_values,
        (3, f"test_records: {N_RECORDS} of {N_RECORDS} rows"),
        (3, "run "),
        (3, f"survey_responses: {N_RESPONSES} of {N_RESPONSES} rows"),
    ),
    Case(
        "bad-values-stored",
        bad_values_stored,
        (3, f"test_records: {N_RECORDS} of {N_RECORDS + 40} rows"),
        (0, ""),
        (3, f"survey_responses: {N_RESPONSES} of {N_RESPONSES + 40} rows"),
    ),
]


# ---------------------------------------------------------------- running them


@dataclass
class Runs:
    """Everything the runs printed and the folders they wrote, to search for markers."""

    root: Path
    texts: dict[str, str] = field(default_factory=dict)
    folders: list[Path] = field(default_factory=list)


def lds(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lds_dask", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=worker_env({"COLUMNS": "400", **(env or {})}),
    )


def check_outcome(proc, code: int, start: str, where: str) -> None:
    """Exit code, at most one ``error:`` line (and where it starts), no traceback."""
    assert proc.returncode == code, f"{where}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == (1 if code else 0), f"{where}: {proc.stderr[-3000:]}"
    if code:
        message = errors[0].removeprefix("error: ")
        assert message.startswith(start) or f": {start}" in message, f"{where}: {message}"
    for noise in ("Traceback", "Compute Failed"):
        assert noise not in proc.stderr + proc.stdout, f"{where}: {noise}"


def inputs_of(args: list[str]) -> list[tuple[str, str]]:
    """(path, table) of each input named by an ingest argument list."""
    given = dict(zip(args[::2], args[1::2], strict=False))
    out = [(given["--raw"], "test_records")]
    return out + ([(given["--survey"], "survey_responses")] if "--survey" in given else [])


def run_case(case: Case, d: Path, scheduler: str, out: Runs) -> None:
    args = case.make(d)
    for i, (path, table) in enumerate(inputs_of(args)):
        quarantine = d / f"validate-quarantine-{i}"  # raw rows by design: not searched
        proc = lds("validate", path, "--table", table, "--quarantine", str(quarantine))
        out.texts[f"{case.name}: validate {table}"] = proc.stdout + proc.stderr
        expected = case.validate if table == "test_records" else case.validate_survey
        check_outcome(proc, *expected, f"{case.name}: validate {table}")
    proc = lds("ingest", *args, "--store", str(d / "store"), "--scheduler", scheduler)
    out.texts[f"{case.name}: ingest"] = proc.stdout + proc.stderr
    check_outcome(proc, *case.ingest, f"{case.name}: ingest")
    out.folders.append(d / "store")


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory) -> Runs:
    """Every case through validate (no cluster) and ingest (one real cluster whose logs
    are kept); the unclosed quote also on the command's own LocalCluster."""
    root = tmp_path_factory.mktemp("markers")
    cluster = start_cluster(request, root / "dask-logs", n_workers=2)
    out = Runs(root, folders=[root / "dask-logs"])
    for case in CASES:
        (root / case.name).mkdir()
        run_case(case, root / case.name, cluster.address, out)
    d = root / "local-cluster"
    d.mkdir()
    proc = lds("ingest", *unclosed_quote(d), "--store", str(d / "store"), "--workers", "2")
    out.texts["unclosed-quote: ingest on a LocalCluster"] = proc.stdout + proc.stderr
    check_outcome(proc, 2, "line 4, column person_id", "LocalCluster ingest")
    out.folders.append(d / "store")
    return out


def searched(folders: list[Path]) -> list[Path]:
    """Every file under ``folders`` but those in a store's ``quarantine/``."""
    return [
        f
        for d in folders
        for f in d.rglob("*")
        if f.is_file() and "quarantine" not in f.relative_to(d).parts
    ]


def test_no_marker_in_any_output_message_log_or_file(runs):
    assert len(runs.texts) >= 2 * len(CASES) + 1
    for name, text in runs.texts.items():
        assert MARK not in text and MARK not in "".join(text.split()), name
    files = searched(runs.folders)
    assert {f.name for f in files} >= {"scheduler.log", "worker0.log", "_manifest.json"}
    assert sum(f.parent.name == "_runs" for f in files) >= 3  # committed, rejected, empty
    for f in files:
        assert MARK.encode() not in f.read_bytes(), f


def test_the_left_out_quarantines_hold_the_bad_rows(runs):
    """What the search leaves out is the quarantine, by design: it holds the bad rows,
    markers and all, with every rule among their reasons."""
    case = runs.root / "bad-values-stored"
    validated = pl.read_parquet(case / "validate-quarantine-0" / "records.rejected.parquet")
    assert set(validated["reason"]) == set(BAD["test_records"]) | {"test_id:unique"}
    assert validated["test_id"].str.starts_with(MARK).sum() == N_RECORDS - 2  # 2 blank ids
    stored = [pl.read_parquet(f) for f in (case / "store" / "quarantine").rglob("*.parquet")]
    assert sum(df.height for df in stored) == N_RECORDS + N_RESPONSES


# ---------------------------------------------------------------- workers killed


class Killer(threading.Thread):
    """SIGKILL the worker processes of ``parent`` once two of them run a slowed task; only
    descendants of the command this test started are ever signalled."""

    def __init__(self, parent: int, sentinels: Path):
        super().__init__(daemon=True)
        self.parent, self.sentinels = parent, sentinels
        self.killed: set[int] = set()

    def run(self):
        deadline = time.time() + 240
        while time.time() < deadline and not self.killed:
            try:
                kids = {c.pid for c in psutil.Process(self.parent).children(recursive=True)}
            except psutil.NoSuchProcess:
                return
            busy = {int(m.name.split("-")[1]) for m in self.sentinels.glob("running-*")} & kids
            if len(busy) >= 2:
                for pid in busy:
                    os.kill(pid, signal.SIGKILL)
                self.killed = busy
            time.sleep(0.05)


def test_both_workers_killed_is_one_line_and_exit_4(tmp_path):
    las = ("E06000001", "E08000025", "E09000033", "E07000178")
    frame([row("test_records", la_code=la, lsoa11_code="") for la in las * 50]).write_csv(
        tmp_path / "records.csv"
    )
    sentinels = tmp_path / "sentinels"
    sentinels.mkdir()
    env = {
        "COLUMNS": "400",
        "LDS_FAULT_SENTINELS": str(sentinels),
        "LDS_FAULT_KERNEL": "compact",
        "LDS_FAULT_DELAY": "5",
        "DASK_DISTRIBUTED__WORKER__PRELOAD": '["tests.faults.slow_stage_preload"]',
    }
    args = ["--raw", str(tmp_path / "records.csv"), "--store", str(tmp_path / "s")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lds_dask", "ingest", *args, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(env),
    )
    killer = Killer(proc.pid, sentinels)
    killer.start()
    stdout, stderr = proc.communicate(timeout=300)
    killer.join(timeout=5)
    assert len(killer.killed) == 2, stderr[-3000:]
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    check_outcome(done, ExitCode.WORKERS_LOST, "Dask workers were lost", "killed workers")
    assert MARK not in stdout + stderr
    for f in searched([tmp_path / "s"]):
        assert MARK.encode() not in f.read_bytes(), f
    assert not (tmp_path / "s" / "records").exists()  # nothing was committed
