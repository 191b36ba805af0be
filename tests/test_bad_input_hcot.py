"Hostile input to annotate: a redirecting, refusing, dead or empty-answering endpoint, chips without land cover, bad options."
import http.server, json, socket, threading

import numpy as np
import pandas as pd
import pytest
from rasterio.transform import from_origin
from rasterio.warp import transform as warp

from fusar_klip import hcot
from fusar_klip import cli
from fusar_klip.geo import write_raster, tile_scenes

KEY = "sk-hostile-test-0123456789"


def scene(d, name, lon, lat, epsg, landcover=True):
    "A 64 x 64 scene at 10 m around (lon, lat), cut into four 32 px chips; with a land-cover layer when asked."
    (x,), (y,) = warp("EPSG:4326", f"EPSG:{epsg}", [lon], [lat])
    t = from_origin(x - 320, y + 320, 10, 10)
    rng = np.random.default_rng(0)
    sar = write_raster(d / f"{name}_db.tif", rng.normal(-12, 3, (1, 64, 64)).astype("float32"), f"EPSG:{epsg}", t,
                       nodata=-99, band_names=["VV"])
    lc = None
    if landcover:
        codes = np.full((64, 64), 3, "uint8"); codes[:, :24] = 1           # farmland with a strip of water
        lc = write_raster(d / f"{name}_lc.tif", codes, f"EPSG:{epsg}", t, nodata=0, band_names=["landcover"])
    tile_scenes([dict(sar=sar, landcover=lc, scene_id=name)], d / name, 32, progress=False)
    return d / name


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    return dict(lc=scene(d, "hamburg_lc", 9.99, 53.55, 32632),                    # land cover, near a city
                near=scene(d, "hamburg_bare", 9.99, 53.55, 32632, landcover=False),  # no land cover, near a city
                far=scene(d, "desert_bare", 20.0, 30.0, 32634, landcover=False))     # no land cover, no city near


def serve(answer):
    "A loopback HTTP server; `answer(n)` gives (status, headers, body) for the n-th POST. Records Authorization."
    class H(http.server.BaseHTTPRequestHandler):
        auth = []
        def log_message(self, *a): pass
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            H.auth.append(self.headers.get("Authorization"))
            code, headers, body = answer(len(H.auth))
            self.send_response(code)
            for k, v in headers.items(): self.send_header(k, v)
            self.end_headers(); self.wfile.write(body)
        do_GET = do_POST                       # urllib turns a redirected POST into a GET, headers and all
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    s.auth = H.auth
    return s


def chat(content): return 200, {"Content-Type": "application/json"}, json.dumps({"choices": [{"message": {"content": content}}]}).encode()


@pytest.fixture
def servers():
    made = []
    def make(answer): made.append(serve(answer)); return made[-1]
    yield make
    for s in made: s.shutdown(); s.server_close()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    "The CLI's backend, with tiny retry delays so a dead endpoint fails in well under a second."
    class Quick(hcot.OpenAICompatibleBackend):
        def __init__(self, *a, **kw): super().__init__(*a, **{**kw, "backoff": 0.001, "timeout": 5, "max_rps": 0})
    monkeypatch.setattr(hcot, "OpenAICompatibleBackend", Quick)
    monkeypatch.setenv("FK_HOSTILE_KEY", KEY)


def main(argv):
    "`fusar-klip ARGV` in process: its exit status (argparse refuses some options itself, with SystemExit)."
    try: return cli.main(argv)
    except SystemExit as err: return err.code


def annotate(chips_dir, out, url, *extra):
    return main(["annotate", "--chips", str(chips_dir), "--out", str(out), "--backend", "openai-compatible",
                 "--model", "m", "--base-url", url, "--api-key-env", "FK_HOSTILE_KEY", "--variants", "1", *extra])


def url_of(s): return f"http://127.0.0.1:{s.server_port}/v1"


def test_redirect_never_carries_the_key(chips, servers, tmp_path, capsys):
    thief = servers(lambda n: chat("{}"))
    hop = servers(lambda n: (302, {"Location": f"{url_of(thief)}/chat/completions"}, b""))
    rc, out = annotate(chips["lc"], tmp_path / "c", url_of(hop)), capsys.readouterr()
    assert thief.auth == [] and hop.auth == [f"Bearer {KEY}"]       # one request, to the URL given, and no further
    assert rc == 2
    assert f"{url_of(hop)}/chat/completions: the endpoint redirected to {url_of(thief)}/chat/completions; " \
           "pass the final URL as --base-url" in out.err
    assert KEY not in out.err + out.out
    assert not (tmp_path / "c" / "corpus.parquet").exists()


def test_refused_key_is_an_error_not_retried(chips, servers, tmp_path, capsys):
    s = servers(lambda n: (401, {}, f'{{"error": "invalid key {KEY}"}}'.encode()))
    assert annotate(chips["lc"], tmp_path / "c", url_of(s)) == 2
    err = capsys.readouterr().err
    assert f"--api-key-env FK_HOSTILE_KEY: the endpoint {url_of(s)}/chat/completions refused the key (HTTP 401)" in err
    assert KEY not in err and len(s.auth) == 1
    # a key refused later in the run (the preflight passed) still stops it: never a silent template corpus
    later = servers(lambda n: chat("{}") if n == 1 else (403, {}, b""))
    assert annotate(chips["lc"], tmp_path / "c2", url_of(later)) == 2
    assert "refused the key (HTTP 403)" in capsys.readouterr().err and len(later.auth) == 2
    assert not (tmp_path / "c2" / "corpus.parquet").exists()


def test_unreachable_endpoint_fails_the_run(chips, tmp_path, capsys):
    with socket.socket() as sk: sk.bind(("127.0.0.1", 0)); port = sk.getsockname()[1]     # a port nobody listens on
    assert annotate(chips["lc"], tmp_path / "c", f"http://127.0.0.1:{port}/v1") == 2
    err = capsys.readouterr().err
    assert f"--base-url: cannot get an answer from http://127.0.0.1:{port}/v1/chat/completions (ConnectionRefusedError" in err
    assert "after 5 attempt(s)" in err
    assert not list((tmp_path / "c").rglob("b*.json"))               # stopped by the preflight, before any batch


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/v1", "data:,{}", "http:///v1", "127.0.0.1:8000"])
def test_base_url_must_be_http_with_a_host(chips, tmp_path, capsys, url):
    assert annotate(chips["lc"], tmp_path / "c", url) == 2
    assert "annotate: error: --base-url: " in (err := capsys.readouterr().err)
    assert "is not an http:// or https:// URL with a host" in err


def test_a_web_page_is_not_an_endpoint(chips, servers, tmp_path, capsys):
    s = servers(lambda n: (200, {"Content-Type": "text/html"}, b"<html>login</html>"))     # e.g. a wrong --base-url
    assert annotate(chips["lc"], tmp_path / "c", url_of(s)) == 2
    assert "does not answer like a chat-completions API" in capsys.readouterr().err
    assert len(s.auth) == 1                                          # the preflight, and nothing after it


def test_empty_answers_are_rejections_with_template_fallback(chips, servers, tmp_path, capsys):
    s = servers(lambda n: chat('Sure: {}'))
    assert annotate(chips["lc"], tmp_path / "c", url_of(s)) == 0, capsys.readouterr().err
    rej = json.loads((tmp_path / "c" / "rejections.json").read_text())
    corpus = pd.read_parquet(tmp_path / "c" / "corpus.parquet")
    assert len(corpus) == 4 and set(corpus.backend) == {"openai-compatible"}
    assert {r["reason"] for r in rej} == {"no usable keyword"} and {r["fallback"] for r in rej} == {"template"}
    assert {(r["chip_id"], r["level"]) for r in rej} == {(c, lv) for c in corpus.chip_id for lv in ("L1", "L2", "L3")}
    assert all(len(json.loads(c)) >= 5 for c in corpus.clauses)          # the template filled every level
    stats = json.loads((tmp_path / "c" / "stats.json").read_text())
    assert stats["rejections"] == {"no usable keyword": 12}


def test_chips_without_land_cover(chips, tmp_path, capsys):
    # near a city: captioned with the place only, and the corpus stats say how many chips lack land cover and why
    assert main(["annotate", "--chips", str(chips["near"]), "--out", str(tmp_path / "near")]) == 0, capsys.readouterr().err
    corpus = pd.read_parquet(tmp_path / "near" / "corpus.parquet")
    assert len(corpus) == 12 and all(c.startswith("this image was acquired near hamburg")
                                     for c in corpus.caption[corpus.variant == 0])
    missing = json.loads((tmp_path / "near" / "stats.json").read_text())["missing"]
    assert missing["no_landcover"] == 4 and missing["no_caption"] == 0
    assert "4 of 4 chips have no land cover (tile with --landcover)" in missing["why"]
    # far from any city: nothing to say, so no empty captions -- the run is refused, each chip a logged rejection
    assert main(["annotate", "--chips", str(chips["far"]), "--out", str(tmp_path / "far")]) == 2
    err = capsys.readouterr().err
    assert "no chip has anything to caption" in err and "--landcover" in err
    assert not (tmp_path / "far" / "corpus.parquet").exists()
    rej = json.loads((tmp_path / "far" / "rejections.json").read_text())
    assert len(rej) == 4 and {r["reason"] for r in rej} == {"empty caption"}
    assert all(r["detail"].startswith("no land cover, no targets layer, nearest city") for r in rej)


@pytest.mark.parametrize("opt,value", [("--batch", "0"), ("--batch", "-3"), ("--variants", "0"), ("--noise", "1.5"),
                                       ("--noise", "-0.1"), ("--noise", "nan"), ("--noise-drop", "1.5")])
def test_bad_options_are_refused(chips, tmp_path, capsys, opt, value):
    assert main(["annotate", "--chips", str(chips["lc"]), "--out", str(tmp_path / "c"), opt, value]) == 2
    err = capsys.readouterr().err
    assert "annotate: error: " in err and opt in err.splitlines()[-1]
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kw,opt", [(dict(batch=0), "--batch"), (dict(variants=0), "--variants"),
                                    (dict(noise=1.5), "--noise"), (dict(noise=float("nan")), "--noise"),
                                    (dict(noise_drop=-0.1), "--noise-drop")])
def test_bad_options_through_the_api(chips, tmp_path, kw, opt):
    from fusar_klip.geo import SARInputError
    with pytest.raises(SARInputError, match=f"^{opt}: must be"):
        hcot.annotate_corpus(chips["lc"], tmp_path / "c", progress=False, **kw)
    assert not (tmp_path / "c").exists()
