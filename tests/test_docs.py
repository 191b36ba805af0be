"""The rendered notebook pages (tools/build_docs.py, `make docs`) show their figures in a real browser.

A page is opened in headless Chromium from a localhost server, inside a probe page that reports each <img>'s natural
size once it has loaded. Tests that need Chromium skip where it is not installed (Debian: `apt-get install chromium`).
test_built_docs checks the pages `make docs` wrote (to $FUSAR_KLIP_DOCS, default _docs/), and skips where there are none.
"""
import functools, http.server, json, os, shutil, subprocess, sys, tempfile, threading, urllib.parse
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_docs  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--mute-audio"]


def find_chromium():
    "A Chromium or Chrome executable ($CHROMIUM first), or None."
    for c in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]:
        if c and shutil.which(c): return shutil.which(c)
    return None


needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no headless browser: Chromium is not installed "
                                    "(apt-get install chromium, or set $CHROMIUM to a Chrome/Chromium executable)")

PROBE = """<!DOCTYPE html><html><body><pre id="result">pending</pre><script>
const pages = %s, out = {};
for (const p of pages) {
  const f = document.createElement("iframe");
  f.style.width = "1200px"; f.style.height = "900px";
  f.addEventListener("load", () => {
    out[p] = Array.from(f.contentDocument.images).map(i => [i.naturalWidth, i.naturalHeight]);
    document.getElementById("result").textContent = JSON.stringify(out);
  });
  f.src = p; document.body.appendChild(f);
}
</script></body></html>"""


def page_figures(folder: Path, pages: list[str], timeout: float = 120) -> dict:
    """Open `pages` (paths inside `folder`) in headless Chromium; return, per page, the natural size (w, h) of each
    <img> once loaded. A broken or undecodable image has size (0, 0)."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            if self.path.startswith("/__probe__"):
                body = (PROBE % json.dumps(["/" + urllib.parse.quote(p) for p in pages])).encode()
                self.send_response(200); self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
            else: super().do_GET()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="fk_chromium_")
    try:
        # the main page's load event waits for every iframe, and each iframe's for its images: --dump-dom then
        # prints the probe's DOM with the sizes written into it
        r = subprocess.run([find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                            f"http://127.0.0.1:{srv.server_port}/__probe__"],
                           capture_output=True, text=True, timeout=timeout)
    finally:
        srv.shutdown(); srv.server_close(); shutil.rmtree(profile, ignore_errors=True)
    dom = r.stdout
    start = dom.find('<pre id="result">') + len('<pre id="result">')
    text = dom[start:dom.find("</pre>", start)]
    assert text and text != "pending", f"Chromium did not report (exit {r.returncode}): {r.stderr[-500:]}"
    got = {urllib.parse.unquote(k.lstrip("/")): [tuple(s) for s in v] for k, v in json.loads(text).items()}
    assert set(got) == set(pages), f"pages that did not load: {sorted(set(pages) - set(got))}"
    return got


def tiny_project(root: Path) -> Path:
    "An nbs/ folder with a stage notebook that draws one figure and hides a cell, and an experiment notebook."
    nbs = root / "nbs"; (nbs / "experiments").mkdir(parents=True)
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nbformat.write(nbformat.v4.new_notebook(cells=[
        md("# demo\n\n> A stage that draws a figure."),
        code("#| hide\nsecret = 'hidden cell'"),
        code("import matplotlib.pyplot as plt\nplt.plot([0, 1, 4]); plt.title('a figure');"),
        code("print('text output')")]), nbs / "00_demo.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[md("# overview\n\n> The project.")]), nbs / "index.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[
        md("# tour\n\n> An experiment."), code("n = 2  # smoke"), code("print(n * 21)")]),
        nbs / "experiments" / "tour.ipynb")
    return nbs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    "The tiny project rendered by build_docs (runs two small notebooks in a kernel: a few seconds)."
    root = tmp_path_factory.mktemp("docs")
    nbs = tiny_project(root)
    pages = build_docs.build(build_docs.reading_order(nbs), root / "_docs", timeout=120, nbs=nbs, log=lambda *a: None)
    return root / "_docs", pages


def test_pages_embed_figures(built):
    out, pages = built
    names = [p["page"] for p in pages]
    assert names == ["overview.html", "00_demo.html", "experiments/tour.html"], names   # reading order, nbs/ layout
    assert [p["error"] for p in pages] == [None] * 3 and [p["figures"] for p in pages] == [0, 1, 0]
    demo, tour = [(out / p).read_text() for p in names[1:]]
    assert demo.count('<img') == 1 and 'src="data:image/png;base64,' in demo       # embedded, not a file next to it
    assert "text output" in demo and "hidden cell" not in demo                  # outputs kept, `#| hide` cells dropped
    assert "42" in tour and "smoke-size defaults" in tour and "smoke-size" not in demo
    index = (out / "index.html").read_text()                                   # the contents, not nbs/index.ipynb
    at = [index.index(f'href="{n}"') for n in names]
    assert at == sorted(at), at
    assert 'href="../index.html"' in tour                                       # the way back from a sub-folder


def test_failing_notebook_still_gets_a_page(tmp_path):
    nbs = tmp_path / "nbs"; nbs.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# broken"),
                                                  nbformat.v4.new_code_cell("print('before')"),
                                                  nbformat.v4.new_code_cell("1 / 0")]), nbs / "00_broken.ipynb")
    [p] = build_docs.build([nbs / "00_broken.ipynb"], tmp_path / "_docs", timeout=120, nbs=nbs, log=lambda *a: None)
    assert "ZeroDivisionError" in p["error"]
    page = (tmp_path / "_docs" / "00_broken.html").read_text()
    assert "FAILED" in page and "before" in page and "ZeroDivisionError" in page
    assert "FAILED" in (tmp_path / "_docs" / "index.html").read_text()


def test_notebook_timeout(tmp_path):
    nbs = tmp_path / "nbs"; nbs.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(60)")]),
                   nbs / "00_slow.ipynb")
    [p] = build_docs.build([nbs / "00_slow.ipynb"], tmp_path / "_docs", timeout=3, nbs=nbs, log=lambda *a: None)
    assert p["error"] and "3 s allowed" in p["error"] and p["seconds"] < 45


@needs_chromium
def test_figures_show_in_chromium(built):
    out, _ = built
    sizes = page_figures(out, [p["page"] for p in built[1]])
    assert len(sizes["00_demo.html"]) == 1 and all(w > 0 and h > 0 for w, h in sizes["00_demo.html"]), sizes
    assert sizes["experiments/tour.html"] == []


@needs_chromium
def test_probe_sees_a_broken_image(tmp_path):
    "The check can fail: an image whose data does not decode has natural size 0."
    good = (ROOT / "nbs" / "images" / "training.png").read_bytes()
    import base64
    uri = lambda b: "data:image/png;base64," + base64.b64encode(b).decode()
    (tmp_path / "p.html").write_text(f'<img src="{uri(good)}"><img src="{uri(b"not an image")}">')
    [(w1, h1), (w2, h2)] = page_figures(tmp_path, ["p.html"])["p.html"]
    assert w1 > 0 and h1 > 0 and (w2, h2) == (0, 0)


def built_docs_folder() -> Path:
    return Path(os.environ.get("FUSAR_KLIP_DOCS") or ROOT / "_docs")


@needs_chromium
@pytest.mark.skipif(not (built_docs_folder() / "pages.json").exists(),
                    reason=f"no rendered notebooks in {built_docs_folder()}: run `make docs` first")
def test_built_docs():
    "Every page `make docs` wrote loads, and shows as many decoded figures as its notebook drew."
    out = built_docs_folder()
    pages = json.loads((out / "pages.json").read_text())
    assert not [p["source"] for p in pages if p["error"]], "notebooks that failed to run"
    sizes = page_figures(out, [p["page"] for p in pages], timeout=300)
    bad = {p["page"]: (p["figures"], sizes[p["page"]]) for p in pages
           if len(sizes[p["page"]]) != p["figures"] or not all(w > 0 and h > 0 for w, h in sizes[p["page"]])}
    assert not bad, f"page: (figures drawn, image sizes in Chromium): {bad}"
    assert sum(p["figures"] for p in pages) > 0
    index = (out / "index.html").read_text()
    assert all(f'href="{p["page"]}"' in index for p in pages)


def test_reuses_papermill_runs(tmp_path):
    "Notebooks papermill executed are rendered as they are, not run again: a failed run shows as failed."
    nbs = tmp_path / "nbs"; (nbs / "experiments").mkdir(parents=True); ran = tmp_path / "ran"; ran.mkdir()
    for name, exc in [("ok", None), ("bad", True)]:
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise SystemExit('must not run')")]),
                       nbs / "experiments" / f"{name}.ipynb")
        done = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
        done.metadata["papermill"] = {"end_time": "2026-01-01T00:00:00", "exception": exc}
        nbformat.write(done, ran / f"{name}.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(2)")]),
                   nbs / "experiments" / "stale.ipynb")                     # edited after its run: run again
    nbformat.write(nbformat.v4.new_notebook(metadata={"papermill": {"end_time": "x"}}), ran / "stale.ipynb")
    os.utime(ran / "stale.ipynb", (1e9, 1e9))
    pages = build_docs.build(build_docs.reading_order(nbs), tmp_path / "_docs", reuse=ran, nbs=nbs, log=lambda *a: None)
    test = {p["name"]: (p["how"], bool(p["error"])) for p in pages}
    assert test == {"ok": ("reused", False), "bad": ("reused", True), "stale": ("executed", False)}, test
