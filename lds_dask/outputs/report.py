"""The all-LA HTML report pack (``lds-dask report``): one profile page per LA plus an index.

Pages are rendered in parallel as Dask tasks, a few LAs per task. Each worker reads the
cube into numpy once (:func:`cached_cube`) and draws lean Bokeh figures shared with the
explorer; rendering the HoloViews objects of :mod:`lds_dask.outputs.plots.figures` cost 15-25 s per page
here, too slow for 309 pages. Pages share one ``static/`` folder holding BokehJS copied
from the installed package, so the pack works offline (file://) without inlining
megabytes of JS 309 times. Headline numbers carry stable ids and ``data-value``
attributes so tests (and people) can check them against the cube.
"""

from __future__ import annotations

import html
import shutil
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from string import Template

import numpy as np

from lds_dask import __version__
from lds_dask.contract import refdata
from lds_dask.cube import stats
from lds_dask.outputs.views.data import (
    MEASURES,
    SAFE_TEXT,
    UNSAFE_TEXT,
    CubeArrays,
    load_cube_arrays,
    open_view,
    series,
)
from lds_dask.outputs.views.figures import (
    fill_breakdown,
    fill_caterpillar,
    fill_trend,
    highlight_caterpillar,
    make_breakdown_figure,
    make_views,
)
from lds_dask.runtime.publish import check_target, publishing

TEMPLATES = Path(__file__).parent / "templates"
PAGE_MEASURE = "case_rate_per_100k"
PAGE_BREAKDOWNS = ["age_band", "sex", "ethnicity", "imd_quintile"]
SIG_WORDS = {"higher": "higher than", "lower": "lower than", "similar": "similar to"}


@cache
def cached_cube(path: str, safe: bool, rules=None) -> CubeArrays:
    """The cube as numpy, read once per worker process and reused by its tasks."""
    return load_cube_arrays(open_view(path, safe, rules), safe=safe)


def copy_static(out: Path) -> list[str]:
    """Copy BokehJS and the stylesheet into ``out/static``; return the script paths."""
    from bokeh import __version__ as bokeh_version
    from bokeh.settings import settings

    js = out / "static" / "js"
    js.mkdir(parents=True, exist_ok=True)
    name = f"bokeh-{bokeh_version}.min.js"
    shutil.copyfile(Path(settings.bokehjs_path()) / "js" / "bokeh.min.js", js / name)
    shutil.copyfile(TEMPLATES / "report.css", out / "static" / "report.css")
    return [f"static/js/{name}"]


def _number(ident: str, value: float, fmt: str, status: float = 0.0) -> str:
    """A number as ``<span id data-value>``; suppressed (NaN) values say so in words."""
    if not np.isfinite(value):
        return (
            f'<span id="{ident}" class="suppressed" data-value="" '
            f'data-status="{int(status) if np.isfinite(status) else 0}">suppressed</span>'
        )
    return f'<span id="{ident}" data-value="{value:.10g}">{format(value, fmt)}</span>'


def headline_values(cube: CubeArrays, la: str, week: int) -> dict[str, float]:
    """The LA's headline measures in one week, plus England's case rate."""
    vals, i = cube.nodes["total"].values, cube.index[la]
    names = ["people_positive", "people_tested", "case_rate_per_100k", "positivity_pct"]
    out = {}
    for name in names:
        for var in (name, f"{name}_lower", f"{name}_upper", f"{name}_status"):
            if var in vals:
                out[var] = float(vals[var][i, week])
    out["england_case_rate"] = float(
        vals["case_rate_per_100k"][cube.index[refdata.ENGLAND_CODE], week]
    )
    return out


def headline_html(cube: CubeArrays, la: str, week: int) -> str:
    """The LA's headline numbers in words, each number in an element with a stable id."""
    v, i = headline_values(cube, la, week), cube.index[la]
    st = {
        k: v.get(f"{k}_status", 0.0)
        for k in ("people_positive", "people_tested", "case_rate_per_100k", "positivity_pct")
    }
    sig = str(cube.sig_vs_england[i, week])
    sig_text = (
        SIG_WORDS.get(sig, "not compared with")
        if np.isfinite(v["case_rate_per_100k"])
        else "not compared with"
    )
    name = html.escape(cube.names[i])
    return (
        f'<p class="headline">In the week of <span id="week">{cube.week_labels()[week]}</span>, '
        f"{_number('people-positive', v['people_positive'], ',.0f', st['people_positive'])} "
        f"people tested positive in {name}, a case rate of "
        f"{_number('case-rate', v['case_rate_per_100k'], ',.1f', st['case_rate_per_100k'])} "
        f"per 100,000 (95% CI {_number('case-rate-lower', v['case_rate_per_100k_lower'], ',.1f')}"
        f" to {_number('case-rate-upper', v['case_rate_per_100k_upper'], ',.1f')}), "
        f'<span id="sig-vs-england" data-value="{html.escape(sig)}">{sig_text}</span> England '
        f"({_number('england-case-rate', v['england_case_rate'], ',.1f')} per 100,000).</p>"
        f'<p class="headline">Of {_number("people-tested", v["people_tested"], ",.0f", st["people_tested"])}'
        f" people tested, {_number('positivity', v['positivity_pct'], '.1f', st['positivity_pct'])}%"
        f" tested positive (95% CI {_number('positivity-lower', v['positivity_pct_lower'], '.1f')}"
        f" to {_number('positivity-upper', v['positivity_pct_upper'], '.1f')}%).</p>"
    )


def make_inequality_figure(cube: CubeArrays, la: str, week: int):
    """Positivity by IMD decile (1 = most deprived) with 95% CIs and the SII line."""
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    node = cube.nodes["imd_decile"]
    keep = [k for k, c in enumerate(node.categories) if c.isdigit()]
    value, lower, upper = (
        a[week, keep] for a in series(cube, "imd_decile", "positivity_pct", cube.index[la])
    )
    tested = node.values["people_tested"][cube.index[la], week, keep]
    x = np.array([int(node.categories[k]) for k in keep])
    src = ColumnDataSource(
        {"x": x, "value": value, "lower": lower, "upper": upper}, name="inequality-source"
    )
    fig = figure(
        title=f"PCR positivity by IMD 2019 decile: {cube.names[cube.index[la]]}",
        height=300,
        sizing_mode="stretch_width",
        tools="save",
        name="inequality-figure",
    )
    fig.segment("x", "lower", "x", "upper", source=src, color="#0072B2")
    fig.scatter("x", "value", source=src, size=8, color="#0072B2")
    ok = np.isfinite(value)
    if ok.sum() >= 2:
        sii, _, intercept = stats.sii_fast(value[ok], tested[ok])
        fig.line(
            [0.5, 10.5],
            [float(intercept), float(intercept + sii)],
            line_dash="dashed",
            color="#000000",
            legend_label=f"SII {float(sii):.3g} percentage points",
        )
    fig.xaxis.axis_label = "IMD 2019 decile (1 = most deprived 10%)"
    fig.yaxis.axis_label = MEASURES["positivity_pct"]
    return fig


def make_neighbours_figure(cube: CubeArrays, la: str, measure: str = PAGE_MEASURE):
    """The LA (bold) against its statistical neighbours (grey) and England (dashed)."""
    from bokeh.plotting import figure

    i = cube.index[la]
    fig = figure(
        title=f"{MEASURES[measure]}: {cube.names[i]} and its statistical neighbours",
        height=320,
        sizing_mode="stretch_width",
        x_axis_type="datetime",
        tools="pan,wheel_zoom,reset,save",
        name="neighbours-figure",
    )
    values = cube.nodes["total"].values[measure]
    for code in (c for c in cube.neighbours[i] if c):
        fig.line(
            cube.weeks,
            values[cube.index[code]],
            color="#999999",
            alpha=0.7,
            legend_label="Neighbours",
        )
    fig.line(
        cube.weeks,
        values[cube.index[refdata.ENGLAND_CODE]],
        color="#000000",
        line_dash="dashed",
        legend_label="England",
    )
    fig.line(cube.weeks, values[i], color="#D55E00", line_width=3, legend_label=cube.names[i])
    fig.legend.location = "top_left"
    fig.yaxis.axis_label = MEASURES[measure]
    return fig


def neighbours_table(cube: CubeArrays, la: str, week: int, measure: str = PAGE_MEASURE) -> str:
    """The LA and its neighbours in the week, ranked, each linking to its own page."""
    values = cube.nodes["total"].values[measure][:, week]
    codes = [la] + [c for c in cube.neighbours[cube.index[la]] if c]
    codes.sort(key=lambda c: -np.nan_to_num(values[cube.index[c]], nan=-np.inf))
    rows = "".join(
        f'<tr{" class=self" if c == la else ""}><td><a href="{c}.html">'
        f"{html.escape(cube.names[cube.index[c]])}</a></td><td>{c}</td>"
        f'<td class="num">{_fmt(values[cube.index[c]])}</td></tr>'
        for c in codes
    )
    return (
        f'<table id="neighbours-table"><tr><th>LA</th><th>code</th>'
        f"<th>{MEASURES[measure]}</th></tr>{rows}</table>"
    )


def _fmt(value: float) -> str:
    return f"{value:,.1f}" if np.isfinite(value) else "suppressed"


def page_figures(cube: CubeArrays, la: str, week: int) -> dict:
    """Every Bokeh figure of one LA's page, by template slot name."""
    views = make_views()
    fill_trend(views["trend"], views["trend_src"], cube, la, PAGE_MEASURE)
    views["trend_span"].location = float(cube.weeks[week].astype("datetime64[ms]").astype(int))
    figs = {"trend": views["trend"]}
    for node in (n for n in PAGE_BREAKDOWNS if n in cube.nodes):
        fig, src = make_breakdown_figure()
        measure = "positivity_pct" if node in ("ethnicity", "imd_quintile") else PAGE_MEASURE
        fill_breakdown(fig, src, cube, node, measure, la)
        fig.name, src.name = f"breakdown-{node}", f"breakdown-{node}-source"
        figs[f"bd_{node}"] = fig
    highlight_caterpillar(views, fill_caterpillar(views, cube, PAGE_MEASURE, week), la)
    figs["caterpillar"] = views["cat"]
    figs["inequality"] = make_inequality_figure(cube, la, week)
    figs["neighbours"] = make_neighbours_figure(cube, la)
    return figs


def _banner(safe: bool) -> tuple[str, str]:
    return ("safe", SAFE_TEXT) if safe else ("unsafe", UNSAFE_TEXT)


def render_page(cube: CubeArrays, la: str, scripts: list[str], cube_name: str = "") -> str:
    """One LA's profile page as HTML (scripts are relative paths to the shared BokehJS)."""
    from bokeh.embed import components

    week = len(cube.weeks) - 1
    figs = page_figures(cube, la, week)
    plot_script, divs = components(figs)
    i = cube.index[la]
    view, banner = _banner(cube.safe)
    region = cube.index.get(cube.region_code[i])
    sii = cube.nodes.get("inequality")
    sii_text = ""
    if sii is not None and "sii_positivity_pct" in sii.values:
        sii_text = (
            f"<p>Slope index of inequality in positivity: "
            f"{_number('sii-positivity', sii.values['sii_positivity_pct'][i, week], '.2f')}"
            " percentage points between the most and least deprived.</p>"
        )
    return Template((TEMPLATES / "page.html").read_text()).substitute(
        title=html.escape(
            f"{cube.names[i]} ({la}) COVID-19 testing profile "
            f"[{'disclosure-controlled' if cube.safe else 'NOT FOR RELEASE'}]"
        ),
        scripts="\n".join(f'<script src="{s}"></script>' for s in scripts),
        la=la,
        name=html.escape(cube.names[i]),
        view=view,
        banner=banner,
        region_text=f"Region: {html.escape(cube.names[region]) if region is not None else '-'}",
        week=cube.week_labels()[week],
        headline=headline_html(cube, la, week),
        div_trend=divs["trend"],
        div_caterpillar=divs["caterpillar"],
        div_breakdowns="".join(v for k, v in divs.items() if k.startswith("bd_")),
        div_inequality=divs["inequality"],
        inequality_text=sii_text,
        div_neighbours=divs["neighbours"],
        neighbours_table=neighbours_table(cube, la, week),
        attribution=html.escape(refdata.ATTRIBUTION),
        version=__version__,
        cube_name=html.escape(cube_name),
        plot_script=plot_script,
    )


def render_chunk(
    cube_path: str, codes: list[str], out: str, safe: bool, scripts: list[str], rules=None
) -> list[dict]:
    """Dask task: write the pages of some LAs; return their index rows."""
    cube = cached_cube(cube_path, safe, rules)
    week = len(cube.weeks) - 1
    rows = []
    for la in codes:
        page = render_page(cube, la, scripts, Path(cube_path).name)
        (Path(out) / f"{la}.html").write_text(page, encoding="utf-8")
        i = cube.index[la]
        rows.append(
            {
                "la": la,
                "name": str(cube.names[i]),
                "region": str(cube.region_code[i]),
                "week": cube.week_labels()[week],
            }
        )
    return rows


def index_html(rows: list[dict], safe: bool, week: str) -> str:
    """The pack's index: every LA linked, grouped by region, with an inline search filter."""
    names = dict(refdata.regions().select("region_code", "region_name").iter_rows())
    sections = []
    for region in sorted({r["region"] for r in rows}, key=lambda c: names.get(c, c)):
        items = "".join(
            f'<li class="la" data-search="{html.escape((r["name"] + " " + r["la"]).lower())}">'
            f'<a id="link-{r["la"]}" href="{r["la"]}.html">{html.escape(r["name"])}</a> '
            f'<span class="code">{r["la"]}</span></li>'
            for r in sorted(rows, key=lambda r: r["name"])
            if r["region"] == region
        )
        sections.append(
            f'<section class="region" data-region="{region}">'
            f"<h2>{html.escape(names.get(region, region))}</h2>"
            f'<ul class="las">{items}</ul></section>'
        )
    view, banner = _banner(safe)
    return Template((TEMPLATES / "index.html").read_text()).substitute(
        title=f"COVID-19 testing profiles [{'disclosure-controlled' if safe else 'NOT FOR RELEASE'}]",
        n_las=len(rows),
        view=view,
        banner=banner,
        week=week,
        sections="\n".join(sections),
        attribution=html.escape(refdata.ATTRIBUTION),
    )


def select_las(cube_path: str | Path, las: list[str] | None) -> list[str]:
    """The LTLA codes to render: all of the cube's, or the requested ones (checked)."""
    from lds_dask.cube.build import open_cube

    total = open_cube(cube_path)["total"]
    known = [
        str(c)
        for c, t in zip(total["area"].values, total["area_type"].values, strict=True)
        if str(t) == "ltla"
    ]
    if not las:
        return known
    unknown = sorted(set(las) - set(known))
    if unknown:
        raise ValueError(f"not lower-tier LA codes in this cube: {', '.join(unknown)}")
    return list(dict.fromkeys(las))


def build_report(
    cube_path: str | Path,
    out: str | Path,
    las: list[str] | None = None,
    safe: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_size: int = 8,
    progress: bool = True,
    rules=None,
    client=None,
    overwrite: bool = False,
) -> list[dict]:
    """Write one page per LA (in parallel on Dask) plus ``index.html`` into `out`.

    ``rules``: the disclosure rules of the safe view (default DisclosureRules()).
    ``client``: an existing Dask client (a refresh shares its own); else one is made.
    The pack is written beside ``out`` and renamed into place when complete; an existing
    ``out`` is replaced only with ``overwrite`` and only if it is a report pack
    (:mod:`lds_dask.runtime.publish`).
    """
    from contextlib import nullcontext

    from lds_dask.runtime.cluster import get_client

    out, cube_path = Path(out), str(Path(cube_path).resolve())
    reads = [("cube", Path(cube_path))]
    check_target(out, "report", overwrite, reads)
    codes = select_las(cube_path, las)
    with (
        publishing(out, "report", overwrite, reads) as tmp,
        nullcontext(client) if client else get_client(scheduler, workers, quiet=not progress) as c,
    ):
        rows = render_pages(c, cube_path, codes, tmp, safe, rules, chunk_size, progress)
        week = rows[0]["week"] if rows else ""
        (tmp / "index.html").write_text(index_html(rows, safe, week), encoding="utf-8")
    return sorted(rows, key=lambda r: r["la"])


def render_pages(
    client, cube_path: str, codes, out: Path, safe: bool, rules, chunk_size: int, progress: bool
) -> list[dict]:
    """Render the pages of ``codes`` into ``out``, a few LAs per Dask task; the index rows."""
    from distributed import as_completed

    scripts = copy_static(out)
    chunks = [codes[k : k + chunk_size] for k in range(0, len(codes), chunk_size)]
    rows: list[dict] = []
    with _progress(progress, len(codes)) as (bar, task):
        futures = [
            client.submit(
                render_chunk, cube_path, c, str(out.resolve()), safe, scripts, rules, pure=False
            )
            for c in chunks
        ]
        for future in as_completed(futures):
            done = future.result()
            rows += done
            bar.advance(task, len(done))
    return rows


@contextmanager
def _progress(show: bool, total: int):
    """A rich progress bar over pages (silent when ``show`` is False)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
    ) as bar:
        yield bar, bar.add_task("LA pages", total=total)
