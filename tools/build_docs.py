#!/usr/bin/env python
"""Render the notebooks as pages a student can read without running them (`make docs` -> _docs/index.html).

Each stage notebook (nbs/index.ipynb, nbs/NN_*.ipynb) and each experiment notebook (nbs/experiments/*.ipynb, with its
smoke-size defaults) is executed in a Jupyter kernel, as a reader would run it, and written as one HTML page with its
figures embedded as PNG data: the pages fetch nothing from the network and open from disk. index.html links them in
reading order with each notebook's title, summary, run time and figure count; pages.json holds the same for tests.

    python tools/build_docs.py                       # every notebook -> _docs/
    python tools/build_docs.py --reuse .ci/out       # reuse experiment notebooks papermill just executed there
    python tools/build_docs.py nbs/00_geo.ipynb      # only these (index.html lists what is in the folder)

Each notebook gets `--timeout` seconds (default 600). A notebook that fails or runs out of time still gets its page,
showing the cells up to the error; the exit status is then 1. A reused notebook must be newer than its source (a run
that papermill recorded as failed is shown as failed), and papermill must have drawn its figures inline
(MPLBACKEND=module://matplotlib_inline.backend_inline; with Agg it has none). Executed notebooks are kept in
<out>/.executed/ so that every page, and its links to its neighbours, can be re-rendered after a partial build.
"""
from __future__ import annotations

import argparse, html, json, os, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
EXPERIMENT_ORDER = ["world_tour", "pretrain_tiny", "scio_rounds", "report"]   # others follow, by name
INLINE = "module://matplotlib_inline.backend_inline"
FIGURE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
WIDGET = "application/vnd.jupyter.widget-view+json"


def reading_order(nbs: Path = NBS) -> list[Path]:
    "Stage notebooks (the overview first, then by number), then the experiments in the order they build on each other."
    stages = ([nbs / "index.ipynb"] if (nbs / "index.ipynb").exists() else []) + sorted(nbs.glob("[0-9]*.ipynb"))
    exps = sorted((nbs / "experiments").glob("*.ipynb"),
                  key=lambda p: (EXPERIMENT_ORDER.index(p.stem) if p.stem in EXPERIMENT_ORDER else 99, p.stem))
    return stages + exps


def is_experiment(path: Path) -> bool: return path.parent.name == "experiments"


def page_name(path: Path) -> str:
    "The page's path inside the docs folder: the notebook's path under nbs/, as .html (nbs/index.ipynb: overview.html)."
    if is_experiment(path): return f"experiments/{path.stem}.html"
    return "overview.html" if path.stem == "index" else f"{path.stem}.html"   # index.html is the contents


def title_and_summary(nb) -> tuple[str, str]:
    "The first markdown cell's `# title` and `> summary` lines (nbdev's front matter)."
    for c in nb.cells:
        if c.cell_type != "markdown": continue
        t = re.search(r"^#\s+(.+)$", c.source, re.M)
        s = re.search(r"^>\s*(.+)$", c.source, re.M)
        return (t.group(1).strip() if t else ""), (s.group(1).strip() if s else "")
    return "", ""


def count_figures(nb) -> int:
    "Image outputs in an executed notebook (one per figure drawn)."
    return sum(any(k in o.get("data", {}) for k in FIGURE_TYPES)
               for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def reusable(src: Path, reuse_dir: Path | None):
    """The copy of `src` papermill executed into `reuse_dir`, if it is newer than `src`, and the error papermill
    recorded (None if it ran through); (None, None) when there is no such copy."""
    import nbformat
    done = Path(reuse_dir or "/nonexistent") / src.name
    if not done.exists() or done.stat().st_mtime < src.stat().st_mtime: return None, None
    nb = nbformat.read(done, as_version=4)
    pm = nb.metadata.get("papermill", {})
    if pm.get("exception"): return nb, "failed in the test run (papermill): see its cell below"
    return (nb, None) if pm.get("end_time") else (None, None)


def execute(src: Path, timeout: float, kernel: str = "python3", kernel_log: Path | None = None):
    """Run `src` top to bottom in a fresh kernel started in its folder, with inline figures.
    `timeout` bounds the whole notebook; the kernel process's own messages go to `kernel_log`.
    Returns (notebook with outputs, error message or None)."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(src, as_version=4)
    deadline = time.time() + timeout
    client = NotebookClient(nb, kernel_name=kernel, resources={"metadata": {"path": str(src.parent)}},
                            timeout_func=lambda _src: max(1, int(deadline - time.time())), store_widget_state=False)
    log = open(kernel_log, "w") if kernel_log else subprocess.DEVNULL
    try:   # figures inline even where the caller set MPLBACKEND=Agg (`make test` does, for its test steps)
        client.execute(env={**os.environ, "MPLBACKEND": INLINE}, stderr=log)
        return nb, None
    except Exception as e:   # a failing cell, a timeout, a dead kernel: the page still shows what ran
        msg = str(e).strip().splitlines()
        if "timed out" in str(e).lower() or type(e).__name__ == "CellTimeoutError":
            return nb, f"stopped after the {timeout:.0f} s allowed for one notebook"
        return nb, (msg[-1] if msg else type(e).__name__)[:300]
    finally:
        if kernel_log: log.close()


def for_reading(nb, nav: str):
    "Drop `#| hide` cells and widget outputs (live progress bars), point notebook links at pages, add `nav` on top."
    import nbformat
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            if re.match(r"\s*#\|\s*hide\b", c.source): continue
            c.outputs = [o for o in c.get("outputs", []) if WIDGET not in o.get("data", {})]
        elif c.cell_type == "markdown":
            c.source = re.sub(r"\]\(([^)\s]+)\.ipynb\)", r"](\1.html)", c.source)
        cells.append(c)
    nb.cells = [nbformat.v4.new_markdown_cell(nav)] + cells
    nb.metadata.pop("widgets", None)
    return nb


_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock -%}
{%- block html_head_js_mathjax -%}{%- endblock -%}
{%- block html_head_js_mermaidjs -%}{%- endblock -%}
{%- block jupyter_widgets -%}{%- endblock -%}
"""


def to_html(nb, title: str) -> str:
    "One self-contained page: JupyterLab's look, figures as data URIs, no script from a CDN."
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    exp = HTMLExporter(extra_loaders=[DictLoader({"fk_offline.html.j2": _TEMPLATE})], template_file="fk_offline.html.j2")
    body, _ = exp.from_notebook_node(nb, resources={"metadata": {"name": title}})
    remote = [s for s in re.findall(r"<script\b.*?</script>", body, re.S) if re.search(r"\bsrc=|https?://", s)]
    assert not remote, f"a page would fetch a script: {remote[:2]}"
    return body


def commit() -> str:
    try:
        h = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nbs", "fusar_klip"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return (h + (" + local changes" if dirty else "")) if h else "unknown"
    except OSError: return "unknown"


def nav_markdown(i: int, pages: list[dict], info: dict) -> str:
    "Links to the contents and the neighbouring pages, and how this page was produced."
    up = "../" if "/" in pages[i]["page"] else ""
    link = lambda p: f"[{p['name']}]({up}{p['page']})"
    parts = [f"[contents]({up}index.html)"]
    if i > 0: parts.insert(0, "← " + link(pages[i - 1]))
    if i + 1 < len(pages): parts.append(link(pages[i + 1]) + " →")
    how = (f"run in {info['seconds']:.0f} s" if info["how"] == "executed" else "executed by the test run (papermill)")
    smoke = " with its smoke-size defaults (a tiny world and a few steps: figures show the mechanics, not results)" \
            if info["experiment"] else ""
    state = f"**FAILED: {info['error']}** -- the cells below stop there. " if info["error"] else ""
    return (" · ".join(parts) + f"\n\n*{state}`{info['source']}`, {how}{smoke}, {info['date']}, commit {info['commit']}. "
            "Open the notebook in Jupyter to change and rerun it.*")


INDEX_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
li{margin:.5rem 0}.meta{color:#666;font-size:.9em}.failed{color:#b00;font-weight:bold}"""


def write_index(out: Path, pages: list[dict]):
    "index.html (reading order, with what each page is) and pages.json (the same, for tests)."
    code = lambda t: re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(t))
    def item(p):
        fail = f' <span class="failed">FAILED: {html.escape(p["error"])}</span>' if p["error"] else ""
        how = f"ran in {p['seconds']:.0f} s" if p["how"] == "executed" else "reused from the test run"
        return (f'<li><a href="{p["page"]}">{html.escape(p["name"])}</a> -- {html.escape(p["title"])}{fail}<br>'
                f'{code(p["summary"])} <span class="meta">({p["figures"]} figure(s), {how})</span></li>')
    stages = [p for p in pages if not p["experiment"]]
    exps = [p for p in pages if p["experiment"]]
    first = pages[0] if pages else {"date": "", "commit": ""}
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>fusar-klip notebooks</title>
<style>{INDEX_CSS}</style></head><body>
<h1>fusar-klip notebooks</h1>
<p>Every notebook executed and rendered with its outputs ({first['date']}, commit {first['commit']}), in reading order.
Each stage notebook is the source of one module of <code>fusar_klip</code>; the experiment notebooks run with their
smoke-size defaults, so their numbers show that the pipeline works, not how well. Rebuild with <code>make docs</code>.</p>
<h2>The pipeline, stage by stage</h2><ol>{''.join(item(p) for p in stages)}</ol>
<h2>Experiments</h2><ol>{''.join(item(p) for p in exps)}</ol>
</body></html>"""
    (out / "index.html").write_text(doc)
    (out / "pages.json").write_text(json.dumps(pages, indent=1))


def build(notebooks: list[Path], out: Path, timeout: float = 600, reuse: Path | None = None,
          kernel: str = "python3", nbs: Path = NBS, log=print) -> list[dict]:
    """Execute (or reuse) each notebook, then (re-)render every page in `out` and index.html listing them in reading
    order (pages built earlier stay, with fresh links). Returns one record per listed page."""
    import nbformat
    out.mkdir(parents=True, exist_ok=True)
    rel = lambda p: str(Path(p).resolve().relative_to(nbs.resolve().parent))
    old = {p["source"]: p for p in json.loads((out / "pages.json").read_text())} if (out / "pages.json").exists() else {}
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit()}
    done, kept = {}, out / ".executed"   # executed notebooks, so that every page (and its links) can be re-rendered
    order = [p.resolve() for p in reading_order(nbs)]
    for src in sorted((Path(n).resolve() for n in notebooks), key=lambda p: order.index(p) if p in order else 999):
        t0 = time.time()
        (nb, err), how = reusable(src, reuse), "reused"
        if nb is None:
            (out / ".kernel-logs").mkdir(exist_ok=True)
            (nb, err), how = execute(src, timeout, kernel, out / ".kernel-logs" / f"{src.stem}.log"), "executed"
        title, summary = title_and_summary(nb)
        done[rel(src)] = p = dict(name=src.stem, source=rel(src), page=page_name(src), title=title, summary=summary,
                                  experiment=is_experiment(src), how=how, seconds=round(time.time() - t0, 1),
                                  error=err, figures=count_figures(nb), **info)
        (kept / p["page"]).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, kept / Path(p["page"]).with_suffix(".ipynb"))
        log(f"{p['source']}: {'FAILED (' + err + ')' if err else how} in {p['seconds']:.0f}s, {p['figures']} figure(s)")
    pages = [done.get(rel(p)) or old.get(rel(p)) for p in reading_order(nbs)]
    pages = [p for p in pages if p and (kept / Path(p["page"]).with_suffix(".ipynb")).exists()]
    for i, p in enumerate(pages):
        nb = nbformat.read(kept / Path(p["page"]).with_suffix(".ipynb"), as_version=4)
        (out / p["page"]).parent.mkdir(parents=True, exist_ok=True)
        (out / p["page"]).write_text(to_html(for_reading(nb, nav_markdown(i, pages, p)), f"{p['name']}: {p['title']}"))
    write_index(out, pages)
    return pages


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="notebooks to render (default: all, in reading order)")
    ap.add_argument("--out", type=Path, default=ROOT / "_docs", help="docs folder (default: _docs)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds allowed per notebook (default: 600)")
    ap.add_argument("--reuse", type=Path, help="folder of notebooks papermill executed (e.g. .ci/out) to reuse")
    ap.add_argument("--kernel", default="python3", help="Jupyter kernel to run the notebooks in")
    a = ap.parse_args(argv)
    t0 = time.time()
    pages = build(a.notebooks or reading_order(), a.out, a.timeout, a.reuse, a.kernel)
    bad = [p for p in pages if p["error"]]
    print(f"{len(pages)} pages, {sum(p['figures'] for p in pages)} figures, {len(bad)} failed, "
          f"{time.time() - t0:.0f}s -> {a.out / 'index.html'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
