"""Job specs: the TOML file that names a refresh's inputs, outputs, definitions and cluster.

A spec is data, never logic (DESIGN.md): ``lds-dask refresh JOB.toml`` wires library
functions together as the spec says. Every section is a frozen dataclass; an unknown key,
a value of the wrong type or a missing input file is a :class:`JobSpecError` whose one-line
message names the spec file, the section and the key (or the missing path). Relative
input paths are read relative to the spec file (a spec travels with its extracts); the
relative output root is read relative to the working directory, stage outputs under it.
Every key is documented in ``jobs/README.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from lds_dask.runtime.errors import BadInputError

PEOPLE_SCOPES = ("PCR", "ALL")
EXPORT_FORMATS = ("csv", "parquet", "xlsx")
PLOT_FORMATS = ("html", "png")
INPUT_FORMATS = ("parquet", "csv")


class JobSpecError(BadInputError, ValueError):
    """The job spec is invalid: unknown key, wrong type, bad value or missing input."""


@dataclass(frozen=True)
class JobSection:
    """``[job]``: what this refresh is called (names the run manifest)."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class InputsSection:
    """``[inputs]``: real extracts. ``raw`` files or folders of test records (CSV/parquet)."""

    raw: tuple[Path, ...]
    survey: Path | None = None
    ahah: Path | None = None


@dataclass(frozen=True)
class SynthSection:
    """``[synth]``: generate synthetic national inputs instead of reading real extracts."""

    scale: float = 0.01
    seed: int = 42
    start: dt.date = dt.date(2020, 5, 25)
    weeks: int = 52
    dirty_rate: float = 0.0
    format: str = "parquet"


@dataclass(frozen=True)
class IngestSection:
    """``[ingest]``: validation ceiling; a run rejecting more rows than this commits nothing."""

    max_reject_rate: float = 0.05


@dataclass(frozen=True)
class OutputsSection:
    """``[outputs]``: where each stage writes; relative paths are under ``root``.

    An empty ``export``, ``plots`` or ``report`` switches that stage off.
    """

    root: Path
    store: Path
    cube: Path
    export: Path | None = None
    plots: Path | None = None
    report: Path | None = None
    synth: Path | None = None


@dataclass(frozen=True)
class CubeSection:
    """``[cube]``: the people definition, the LSOA-view periods and the task size.

    Mirrors :class:`lds_dask.cube.build.CubeConfig`; every breakdown of the cube contract is built.
    """

    people_scope: str = "PCR"
    period_starts: tuple[dt.date, ...] = (dt.date(2020, 9, 1),)
    period_names: tuple[str, ...] = ("wave_1", "wave_2")
    n_neighbours: int = 15
    bundle_mb: float = 64.0


@dataclass(frozen=True)
class DisclosureSection:
    """``[disclosure]``: statistical disclosure control rules for everything that leaves."""

    threshold: int = 10
    suppress_zeros: bool = True
    rounding: int = 0


@dataclass(frozen=True)
class ExportSection:
    """``[export]``: file formats of the disclosure-controlled aggregates."""

    formats: tuple[str, ...] = ("csv",)


@dataclass(frozen=True)
class PlotsSection:
    """``[plots]``: comparison plots for some LAs (plots are per LA, so ``las`` is required)."""

    las: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("html",)
    safe: bool = True


@dataclass(frozen=True)
class ReportSection:
    """``[report]``: the HTML report pack; empty ``las`` means all 309 LAs."""

    las: tuple[str, ...] = ()
    safe: bool = True


@dataclass(frozen=True)
class ClusterSection:
    """``[cluster]``: an existing scheduler, or the LocalCluster size (0 = one per core)."""

    scheduler: str = ""
    n_workers: int = 0
    memory_limit: str = ""


@dataclass(frozen=True)
class JobSpec:
    """A validated job spec; ``path`` is the spec file, ``sha256`` its bytes' hash."""

    path: Path
    sha256: str
    job: JobSection
    outputs: OutputsSection
    inputs: InputsSection | None = None
    synth: SynthSection | None = None
    ingest: IngestSection = field(default_factory=IngestSection)
    cube: CubeSection = field(default_factory=CubeSection)
    disclosure: DisclosureSection = field(default_factory=DisclosureSection)
    export: ExportSection = field(default_factory=ExportSection)
    plots: PlotsSection = field(default_factory=PlotsSection)
    report: ReportSection = field(default_factory=ReportSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)

    def to_dict(self) -> dict:
        """JSON-ready config (paths and dates as strings) for manifests and fingerprints."""
        return _plain(dataclasses.asdict(self))


SECTIONS: dict[str, type] = {
    "job": JobSection,
    "inputs": InputsSection,
    "synth": SynthSection,
    "ingest": IngestSection,
    "outputs": OutputsSection,
    "cube": CubeSection,
    "disclosure": DisclosureSection,
    "export": ExportSection,
    "plots": PlotsSection,
    "report": ReportSection,
    "cluster": ClusterSection,
}


def load_jobspec(
    path: str | Path, root: str | Path | None = None, check_inputs: bool = True
) -> JobSpec:
    """Read and validate a TOML job spec; ``root`` overrides ``[outputs] root``."""
    from lds_dask.runtime.hashing import file_sha256

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise JobSpecError(f"{path}: no such job spec") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobSpecError(f"{path}: cannot read job spec ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise JobSpecError(f"{path}: not valid TOML ({exc})") from None
    spec = parse_jobspec(raw, path, root=root)
    if check_inputs:
        check_input_paths(spec)
    return dataclasses.replace(spec, sha256=file_sha256(path))


def parse_jobspec(raw: dict, path: Path, root: str | Path | None = None) -> JobSpec:
    """Build a :class:`JobSpec` from parsed TOML (no file-system checks on inputs)."""
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise JobSpecError(
            f"{path}: unknown section [{unknown[0]}] (allowed: {', '.join(SECTIONS)})"
        )
    for name in ("job", "outputs"):
        if name not in raw:
            raise JobSpecError(f"{path}: missing section [{name}]")
    if ("inputs" in raw) == ("synth" in raw):
        raise JobSpecError(f"{path}: give exactly one of [inputs] (real extracts) or [synth]")
    # Inputs are relative to the spec file; outputs to the working directory.
    base, cwd = path.resolve().parent, Path.cwd().resolve()
    sections = {
        name: build_section(
            SECTIONS[name], table, f"{path}: [{name}]", cwd if name == "outputs" else base
        )
        for name, table in raw.items()
    }
    sections["outputs"] = resolve_outputs(sections["outputs"], cwd, root)
    if "synth" in sections and sections["outputs"].synth is None:
        sections["outputs"] = dataclasses.replace(
            sections["outputs"], synth=sections["outputs"].root / "synth"
        )
    spec = JobSpec(path=path.resolve(), sha256="", **sections)
    check_values(spec)
    return spec


def build_section(cls: type, table: object, where: str, base: Path):
    """One section dataclass from its TOML table: unknown/missing keys and types checked."""
    if not isinstance(table, dict):
        raise JobSpecError(f"{where} must be a table")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise JobSpecError(f"{where} unknown key {unknown[0]!r} (allowed: {', '.join(names)})")
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in table]
    if missing:
        raise JobSpecError(f"{where} missing key {missing[0]!r}")
    values = {k: convert_value(v, hints[k], f"{where} {k}", base) for k, v in table.items()}
    return cls(**values)


def convert_value(value: object, hint: object, where: str, base: Path):
    """Check one TOML value against a field's type; paths become absolute (spec-relative)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):  # X | None: "" means None
        if value == "":
            return None
        return convert_value(value, next(a for a in args if a is not type(None)), where, base)
    if origin is tuple:
        if not isinstance(value, list):
            raise JobSpecError(f"{where} must be a list")
        return tuple(convert_value(v, args[0], where, base) for v in value)
    return _scalar(value, hint, where, base)


def _scalar(value: object, hint: object, where: str, base: Path):
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise JobSpecError(f"{where} must be a non-empty path string")
        return Path(value) if Path(value).is_absolute() else base / value
    if hint is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        raise JobSpecError(f"{where} must be a date like 2020-05-25")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool) and type(value) is hint:
        return value
    raise JobSpecError(
        f"{where} must be {getattr(hint, '__name__', hint)}, got {type(value).__name__}"
    )


def resolve_outputs(out: OutputsSection, base: Path, root: str | Path | None) -> OutputsSection:
    """Put relative stage outputs under ``root`` (itself relative to the spec, or overridden)."""
    top = Path(root).resolve() if root is not None else out.root
    rel = {f.name: getattr(out, f.name) for f in dataclasses.fields(out) if f.name != "root"}
    fixed = {k: None if v is None else top / _relative_to(v, base) for k, v in rel.items()}
    return OutputsSection(root=top, **fixed)


def _relative_to(p: Path, base: Path) -> Path:
    # Stage paths were made absolute against the spec folder; undo that to re-root them.
    try:
        return p.relative_to(base)
    except ValueError:
        return p


def check_values(spec: JobSpec) -> None:
    """Value rules a type cannot express: enums, ranges, known LA codes."""
    where = str(spec.path)
    _one_of((spec.cube.people_scope,), PEOPLE_SCOPES, f"{where}: [cube] people_scope")
    if len(spec.cube.period_names) != len(spec.cube.period_starts) + 1 or list(
        spec.cube.period_starts
    ) != sorted(set(spec.cube.period_starts)):
        raise JobSpecError(
            f"{where}: [cube] period_names needs one more name than "
            "period_starts, and period_starts must increase"
        )
    _in_range(spec.cube.n_neighbours, 1, 308, f"{where}: [cube] n_neighbours")
    _in_range(spec.cube.bundle_mb, 0.001, 1e5, f"{where}: [cube] bundle_mb")
    _one_of(spec.export.formats, EXPORT_FORMATS, f"{where}: [export] formats")
    _one_of(spec.plots.formats, PLOT_FORMATS, f"{where}: [plots] formats")
    if spec.synth:
        _one_of((spec.synth.format,), INPUT_FORMATS, f"{where}: [synth] format")
        _in_range(spec.synth.scale, 1e-6, 10.0, f"{where}: [synth] scale")
        _in_range(spec.synth.weeks, 1, 520, f"{where}: [synth] weeks")
        _in_range(spec.synth.dirty_rate, 0.0, 1.0, f"{where}: [synth] dirty_rate")
    _in_range(spec.ingest.max_reject_rate, 0.0, 1.0, f"{where}: [ingest] max_reject_rate")
    _in_range(spec.disclosure.threshold, 1, 10**6, f"{where}: [disclosure] threshold")
    _one_of((spec.disclosure.rounding,), (0, 5, 10), f"{where}: [disclosure] rounding")
    _in_range(spec.cluster.n_workers, 0, 10**4, f"{where}: [cluster] n_workers")
    check_la_codes(spec.plots.las, f"{where}: [plots] las")
    check_la_codes(spec.report.las, f"{where}: [report] las")
    if spec.outputs.plots is not None and not spec.plots.las:
        raise JobSpecError(
            f"{where}: [plots] las must name at least one LA when [outputs] plots is set"
        )


def _one_of(values: tuple, allowed: tuple, where: str) -> None:
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise JobSpecError(
            f"{where}: {bad[0] if bad else 'empty'!r} is not one of {', '.join(map(str, allowed))}"
        )


def _in_range(value: float, low: float, high: float, where: str) -> None:
    if not low <= value <= high:
        raise JobSpecError(f"{where} must be between {low} and {high}")


def check_la_codes(codes: tuple[str, ...], where: str) -> None:
    """Every code must be one of the 309 English LAD21 codes."""
    from lds_dask.contract import refdata

    known = refdata.la_codes()
    bad = [c for c in codes if c not in known]
    if bad:
        raise JobSpecError(f"{where}: {bad[0]!r} is not an English LAD21 code")


def check_input_paths(spec: JobSpec) -> None:
    """Every named input must exist: one line naming the first missing path."""
    if spec.inputs is None:
        return
    named = [("raw", p) for p in spec.inputs.raw] + [
        (k, p) for k in ("survey", "ahah") if (p := getattr(spec.inputs, k)) is not None
    ]
    if not spec.inputs.raw:
        raise JobSpecError(f"{spec.path}: [inputs] raw must name at least one file or folder")
    for key, p in named:
        if not p.exists():
            raise JobSpecError(f"{spec.path}: [inputs] {key}: no such file or directory: {p}")


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path | dt.date):
        return str(obj) if not isinstance(obj, Path) else obj.as_posix()
    return obj
