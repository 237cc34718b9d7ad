"""The refresh stages: each wires library functions together and holds no logic of its own.

synth (optional) -> ingest -> cube -> disclosure -> export -> plots -> report. Each stage has
a fingerprint function (what it depends on) and a run function writing into a temp folder.
"""

from __future__ import annotations

from pathlib import Path

from lds_dask.refresh.jobspec import JobSpec
from lds_dask.refresh.state import RunContext, Stage, StageResult, digest, result


def input_paths(spec: JobSpec) -> dict[str, list[Path]]:
    """raw / survey / ahah inputs: the spec's extracts, or the synth stage's output."""
    if spec.synth is not None:
        out = spec.outputs.synth
        return {
            "raw": [out / "test_records"],
            "survey": [out / "survey_responses"],
            "ahah": [out / "ahah.parquet"],
        }
    i = spec.inputs
    return {
        "raw": list(i.raw),
        "survey": [i.survey] if i.survey else [],
        "ahah": [i.ahah] if i.ahah else [],
    }


def hash_inputs(spec: JobSpec) -> dict[str, str]:
    """sha256 of every input file, by path (what ingest's fingerprint depends on)."""
    from lds_dask.contract.io import list_input_files
    from lds_dask.runtime.hashing import file_sha256

    files = [f for paths in input_paths(spec).values() if paths for f in list_input_files(paths)]
    return {str(f): file_sha256(f) for f in files}


def store_digest(store: Path) -> str:
    """What the cube reads: the store manifest's files and partitions (not its run log)."""
    from lds_dask.store.layout import read_manifest

    if not (store / "_manifest.json").exists():
        return "no-store"
    m = read_manifest(store)
    return digest(m.get("files"), m.get("partitions"))


def fingerprint_synth(ctx: RunContext) -> str:
    return digest("synth", ctx.spec.to_dict()["synth"])


def run_synth(ctx: RunContext, tmp: Path) -> StageResult:
    """Generate the synthetic national extracts (test records, survey, AHAH, truth)."""
    from synthetic_gen.generate import generate

    s = ctx.spec.synth
    m = generate(
        tmp,
        scale=s.scale,
        seed=s.seed,
        start=s.start,
        weeks=s.weeks,
        fmt=s.format,
        dirty_rate=s.dirty_rate,
        client=ctx.client,
        progress=ctx.options.progress,
    )
    rows = m["counts"]["test_records"]["rows"] + m["counts"]["survey_responses"]["rows"]
    return result(
        "synth",
        rows_out=rows,
        outputs={"synth": str(ctx.spec.outputs.synth)},
        details={"counts": m["counts"]},
    )


def fingerprint_ingest(ctx: RunContext) -> str:
    """Input hashes + config + the store as it stands (verified against its manifest)."""
    from lds_dask.store.layout import verify_store

    store = ctx.spec.outputs.store
    if (store / "_store.json").exists():
        verify_store(store)
    ctx.inputs["hashes"] = ctx.inputs.get("hashes") or hash_inputs(ctx.spec)
    return digest("ingest", ctx.spec.to_dict()["ingest"], ctx.inputs["hashes"], store_digest(store))


def run_ingest(ctx: RunContext, _tmp: None) -> StageResult:
    """Validate, quarantine, link and partition the inputs into the store (incremental)."""
    from lds_dask.ingest.run import ingest

    paths, store = input_paths(ctx.spec), ctx.spec.outputs.store
    report = ingest(
        paths["raw"],
        store,
        survey=(paths["survey"] or [None])[0],
        ahah=(paths["ahah"] or [None])[0],
        client=ctx.client,
        max_reject_rate=ctx.spec.ingest.max_reject_rate,
        progress=ctx.options.progress,
    )
    totals = report.totals
    return result(
        "ingest",
        rows_in=totals["rows_in"],
        rows_out=totals["rows_stored"],
        outputs={"store": str(store)},
        details={
            "input_hashes": ctx.inputs["hashes"],
            "run_id": report.run_id,
            "status": report.status,
            "reject_rate": report.reject_rate,
            "rows_quarantined": totals["rows_quarantined"],
        },
    )


def cube_config(spec: JobSpec):
    from lds_dask.cube.build import CubeConfig

    c = spec.cube
    return CubeConfig(
        people_scope=c.people_scope,
        period_starts=tuple(d.isoformat() for d in c.period_starts),
        period_names=c.period_names,
        n_neighbours=c.n_neighbours,
        bundle_mb=c.bundle_mb,
    )


def fingerprint_cube(ctx: RunContext) -> str:
    return digest("cube", ctx.spec.to_dict()["cube"], store_digest(ctx.spec.outputs.store))


def run_cube(ctx: RunContext, tmp: Path) -> StageResult:
    """Build the all-LA cube; rows in = stored records, rows out = England's test count."""
    from lds_dask.cube.build import build_cube, open_cube
    from lds_dask.store.layout import read_manifest

    build_cube(
        ctx.spec.outputs.store,
        tmp,
        client=ctx.client,
        config=cube_config(ctx.spec),
        progress=ctx.options.progress,
    )
    ctx.cache.clear()
    parts = read_manifest(ctx.spec.outputs.store).get("partitions", {}).get("records", {})
    total = open_cube(tmp)["total"]["tests"].sel(area="E92000001").sum().compute()
    return result(
        "cube",
        rows_in=sum(p.get("rows", 0) for p in parts.values()),
        rows_out=int(total),
        outputs={"cube": str(ctx.spec.outputs.cube)},
    )


def disclosure_rules(spec: JobSpec):
    from lds_dask.sdc.rules import DisclosureRules

    d = spec.disclosure
    return DisclosureRules(
        threshold=d.threshold, suppress_zeros=d.suppress_zeros, rounding=d.rounding
    )


def fingerprint_disclosure(ctx: RunContext) -> str:
    return digest("disclosure", ctx.spec.to_dict()["disclosure"], fingerprint_cube(ctx))


def loaded_cube(ctx: RunContext):
    """The cube, read into memory once per run and shared by the stages after it."""
    if "cube" not in ctx.cache:
        from lds_dask.cube.build import open_cube

        ctx.cache["cube"] = open_cube(ctx.spec.outputs.cube).load()
    return ctx.cache["cube"]


def safe_cube(ctx: RunContext):
    """The disclosure-controlled view of the cube under the job's rules, computed once."""
    if "safe" not in ctx.cache:
        from lds_dask.sdc.rules import safe_view

        ctx.cache["safe"] = safe_view(loaded_cube(ctx), disclosure_rules(ctx.spec))
    return ctx.cache["safe"]


def run_disclosure(ctx: RunContext, _tmp: None) -> StageResult:
    """Apply the SDC rules to the cube: count cells in, cells published, by status."""
    import numpy as np

    by_status: dict[str, int] = {}
    for node in safe_cube(ctx).subtree:
        for name, var in node.to_dataset(inherit=False).data_vars.items():
            if name in ("tests_status", "people_tested_status"):
                codes, n = np.unique(np.asarray(var.values), return_counts=True)
                for c, k in zip(codes.tolist(), n.tolist(), strict=True):
                    by_status[str(c)] = by_status.get(str(c), 0) + k
    cells = sum(by_status.values())
    hidden = by_status.get("1", 0) + by_status.get("2", 0)
    return result(
        "disclosure",
        rows_in=cells,
        rows_out=cells - hidden,
        details={"count_cells_by_status": by_status},
    )


def fingerprint_export(ctx: RunContext) -> str:
    return digest("export", ctx.spec.to_dict()["export"], fingerprint_disclosure(ctx))


def run_export(ctx: RunContext, tmp: Path) -> StageResult:
    """Write the disclosure-controlled aggregates (the only outward files) + evidence."""
    from lds_dask.outputs import export

    export.export_cube(
        loaded_cube(ctx),
        tmp,
        disclosure_rules(ctx.spec),
        formats=ctx.spec.export.formats,
        command="lds-dask refresh",
        safe=safe_cube(ctx),
    )
    files = [p for p in tmp.rglob("*") if p.is_file()]
    return result("export", rows_out=len(files), outputs={"export": str(ctx.spec.outputs.export)})


def fingerprint_view(ctx: RunContext, name: str) -> str:
    """Plots/report: their config, the cube, and the SDC rules when they show the safe view."""
    cfg = ctx.spec.to_dict()[name]
    upstream = fingerprint_disclosure(ctx) if cfg["safe"] else fingerprint_cube(ctx)
    return digest(name, cfg, upstream)


def run_plots(ctx: RunContext, tmp: Path) -> StageResult:
    """Every comparison plot for each LA named in ``[plots] las`` (the safe view if asked)."""
    from lds_dask.outputs.plots import figures as plots
    from lds_dask.outputs.plots.figures import la_plots

    p = ctx.spec.plots
    tree = safe_cube(ctx) if p.safe else loaded_cube(ctx)
    tmp.mkdir(parents=True)
    written = []
    for la in p.las:
        for stem, obj in la_plots(tree, la, safe=p.safe).items():
            for fmt in p.formats:
                written.append(tmp / f"{la}_{stem}.{fmt}")
                (plots.save_html if fmt == "html" else plots.save_png)(obj, written[-1])
    return result(
        "plots",
        rows_in=len(p.las),
        rows_out=len(written),
        outputs={"plots": str(ctx.spec.outputs.plots)},
    )


def run_report(ctx: RunContext, tmp: Path) -> StageResult:
    """The HTML report pack (one page per LA + index), built as tasks on this run's cluster."""
    from lds_dask.outputs import report

    las = list(ctx.spec.report.las) or None
    rows = report.build_report(
        ctx.spec.outputs.cube,
        tmp,
        las=las,
        safe=ctx.spec.report.safe,
        progress=ctx.options.progress,
        rules=disclosure_rules(ctx.spec),
        client=ctx.client,
    )
    return result(
        "report",
        rows_in=len(las or ()) or len(rows),
        rows_out=len(rows),
        outputs={
            "report": str(ctx.spec.outputs.report),
            "index": str(ctx.spec.outputs.report / "index.html"),
        },
    )


def _needs_disclosure(spec: JobSpec) -> bool:
    return bool(
        spec.outputs.export
        or (spec.outputs.plots and spec.plots.safe)
        or (spec.outputs.report and spec.report.safe)
    )


STAGES: tuple[Stage, ...] = (
    Stage(
        "synth",
        lambda s: s.synth is not None,
        fingerprint_synth,
        run_synth,
        lambda s: s.outputs.synth,
    ),
    Stage("ingest", lambda s: True, fingerprint_ingest, run_ingest, lambda s: None),
    Stage("cube", lambda s: True, fingerprint_cube, run_cube, lambda s: s.outputs.cube),
    Stage("disclosure", _needs_disclosure, fingerprint_disclosure, run_disclosure, lambda s: None),
    Stage(
        "export",
        lambda s: s.outputs.export is not None,
        fingerprint_export,
        run_export,
        lambda s: s.outputs.export,
    ),
    Stage(
        "plots",
        lambda s: s.outputs.plots is not None,
        lambda c: fingerprint_view(c, "plots"),
        run_plots,
        lambda s: s.outputs.plots,
    ),
    Stage(
        "report",
        lambda s: s.outputs.report is not None,
        lambda c: fingerprint_view(c, "report"),
        run_report,
        lambda s: s.outputs.report,
    ),
)
