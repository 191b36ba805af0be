"The paper's caption format (issue 11, parts 1 and 4): parse, round trip, the official style, L5, model backends, training."
import http.server, json, re, threading

import pandas as pd
import pytest

from conftest import ROOT, run_cli
from fusar_klip import hcot
from fusar_klip.facts import ChipFacts

FIXTURE = ROOT / "tests" / "fixtures" / "official_sample.json"     # written for this test in the released shape


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "The micro world in 64 px chips with an official-style corpus (2 variants) and a template corpus."
    d = tmp_path_factory.mktemp("official")
    assert run_cli("synth", "--world", "micro", "--out", d / "scenes", "--workers", "1").returncode == 0
    r = run_cli("tile", d / "scenes", "--out", d / "chips", "--size", "64")
    assert r.returncode == 0, r.stderr
    off = hcot.annotate_corpus(d / "chips", d / "official", d / "scenes", variants=2, progress=False, style="official")
    tpl = hcot.annotate_corpus(d / "chips", d / "template", d / "scenes", variants=2, progress=False)
    facts = {r["chip_id"]: ChipFacts.from_row(r) for r in pd.read_parquet(d / "chips" / "facts.parquet").to_dict("records")}
    return dict(dir=d, official=off["stats"], template=tpl["stats"], facts=facts)


def test_fixture_every_sentence_gets_a_keyword_and_round_trips():
    data = json.loads(FIXTURE.read_text())
    recs, rep = hcot.from_official(FIXTURE)
    assert (rep["sentences"], rep["prefix"], rep["unmatched"], rep["empty"]) == (80, 79, 1, 0)
    assert rep["unmatched_by_field"] == {"Roads": 1}
    for r in recs:
        for c in r.clauses:
            assert c.keyword.strip() and c.text[c.start:c.end] == c.keyword, c
    kw = {c.field: c.keyword for c in recs[0].clauses}
    assert kw["Terrain"] == "Flat farmland plain crossed by a narrow canal"
    assert kw["Distribution"] == "Fields fill the western two thirds, houses cluster in the north-east"
    roads = next(c for c in recs[6].clauses if c.field == "Roads")       # no prefix: the whole sentence is the keyword
    assert roads.keyword == "Curved local streets wind between the houses" and roads.start == 0
    back = hcot.to_official(recs)
    assert [json.dumps(d) for d in back] == [json.dumps(d) for d in data]     # the same strings, in the same field order


def test_fixture_becomes_a_training_corpus(tmp_path):
    st = hcot.official_corpus(FIXTURE, tmp_path / "c")
    recs = hcot.read_corpus(tmp_path / "c")
    assert [r.chip_id for r in recs] == [f"S{i:04d}" for i in range(1, 11)] and st["parse"]["unmatched"] == 1
    assert all(c.keyword for r in recs for c in r.clauses)


def test_official_style_corpus(world):
    off, tpl, facts = world["official"], world["template"], world["facts"]
    print("MTLD official", off["mtld"], "template", tpl["mtld"])
    assert off["mtld"] >= 80 and tpl["mtld"] < 60
    assert off["l5"] == [] and off["rejections"] == {}          # composed phrases pass L5 untouched
    recs = hcot.read_corpus(world["dir"] / "official")
    assert {r.variant for r in recs} == {0, 1} and len(recs) == off["records"]
    for r in recs:
        for c in r.clauses:
            assert hcot.is_official(c) and c.text[c.start:c.end] == c.keyword
            assert hcot.phrase_problems(c.field, c.keyword, facts[r.chip_id]) == [], (r.chip_id, c)
    # the kit's own official JSON reads back completely by prefix, and round-trips exactly
    js = json.loads((world["dir"] / "official" / "captions_official.json").read_text())
    back, rep = hcot.from_official(js)
    assert rep["unmatched"] == 0 and rep["prefix"] == rep["sentences"] > 10 * len(js)
    assert hcot.to_official(back) == js
    assert json.loads((world["dir"] / "official" / "config.json").read_text())["style"] == "official"


def test_l5_catches_corrupted_phrases(world):
    facts = world["facts"]
    recs = [r for r in hcot.read_corpus(world["dir"] / "official") if r.variant == 0]
    n = 0
    for r in recs:
        f = facts[r.chip_id]
        noisy, cor = hcot.inject_noise(r, f, 0.5, seed=3)
        cal = hcot.calibrate_l5(noisy, f)
        assert {x.field for x in cor} <= {l["field"] for l in cal.l5}
        assert all(hcot.phrase_problems(c.field, c.keyword, f) == [] for c in cal.clauses)
        n += len(cor)
    assert n > len(recs)
    # a model's phrase with claims the facts contradict is rewritten; one that agrees is kept as it is
    f = next(f for f in facts.values() if f.landcover.get("farmland", 0) > 0.5 and f.water_fraction == 0)
    rec = hcot.HCoT(f.chip_id, 0, [hcot.official_clause("Water", "extensive open water in the upper strip"),
                                   hcot.official_clause("Terrain", "hilly mountain forest"),
                                   hcot.official_clause("Roads", hcot.official_phrase("Roads", f, __import__("random").Random(0)))])
    cal = hcot.calibrate_l5(rec, f)
    assert [(l["action"], l["field"]) for l in cal.l5] == [("repaired", "Water"), ("repaired", "Terrain")]
    assert "no elevation" in cal.l5[1]["reason"] and cal.clauses[2] == rec.clauses[2]


def serve(answer):
    "A loopback chat-completions server: `answer(prompt)` gives the reply text; prompts are recorded."
    class H(http.server.BaseHTTPRequestHandler):
        prompts = []
        def log_message(self, *a): pass
        def do_POST(self):
            prompt = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["messages"][-1]["content"]
            H.prompts.append(prompt)
            data = json.dumps({"choices": [{"message": {"content": answer(prompt)}}]}).encode()
            self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
            self.wfile.write(data)
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    s.prompts = H.prompts
    return s


def asked(prompt):
    "The prefixes a prompt asks for, in order."
    return re.findall(r"^(.+?)\.\.\.$", prompt.split("Sentences:")[0], re.M)


def test_openai_backend_official_sentences_retry_and_fallback(world, monkeypatch):
    monkeypatch.setenv("FK_OFF_KEY", "k")
    f = max(world["facts"].values(), key=lambda f: (len(f.targets), f.building_count))
    def answer(prompt):             # the first answer leaves out the last field; the retry brings it
        pres = asked(prompt)
        if "could not be read" not in prompt: pres = pres[:-1]
        return "Here you go:\n" + "\n".join(f"{p}flat farmland with patches of woodland." for p in pres)
    s = serve(answer)
    try:
        b = hcot.OpenAICompatibleBackend(f"http://127.0.0.1:{s.server_port}/v1", "m", "FK_OFF_KEY", backoff=0.01, max_rps=0)
        recs, rej = hcot.annotate_chip(f, b, variants=2, style="official")
        assert rej == [] and len(s.prompts) == 8                       # two requests per level, nothing left unread
        assert sum("could not be read" in p for p in s.prompts) == 4
        for r in recs:
            assert r.backend == "openai-compatible" and {c.field for c in r.clauses} >= {"Terrain", "Water", "Count"}
            for c in r.clauses: assert hcot.phrase_problems(c.field, c.keyword, f) == [] and hcot.is_official(c)
        assert {l["field"] for l in recs[0].l5} >= {"Count", "Water"}  # the stub's phrase says nothing about either
    finally: s.shutdown(); s.server_close()
    junk = serve(lambda p: "I am sorry, I cannot describe images.")
    try:
        b = hcot.OpenAICompatibleBackend(f"http://127.0.0.1:{junk.server_port}/v1", "m", "FK_OFF_KEY", backoff=0.01, max_rps=0)
        recs, rej = hcot.annotate_chip(f, b, variants=1, style="official")
        allowed = [fd.name for fd in hcot.FIELDS if fd.derive(f) is not None]
        assert sorted(r["field"] for r in rej) == sorted(allowed) and len(junk.prompts) == 8
        assert {(r["reason"], r["fallback"]) for r in rej} == {("no usable keyword", "template")}
        assert "after 2 request(s)" in rej[0]["detail"]
        assert recs[0].l5 == [] and all(hcot.is_official(c) for c in recs[0].clauses)   # composed from the facts instead
    finally: junk.shutdown(); junk.server_close()


def test_klip_trains_on_an_official_json(world, tmp_path):
    d = world["dir"]
    st = hcot.official_corpus(d / "official" / "captions_official.json", tmp_path / "oc", d / "chips")
    assert st["parse"]["unmatched"] == 0 and st["parse"]["records_with_chips"] == st["records"]
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(data=str(d), corpus=str(tmp_path / "oc"), out=str(tmp_path / "run"), mode="klip",
                                   layers=1, steps=3, batch_size=4, max_len=256, queue_size=16, log_every=1, ckpt_every=3,
                                   sample_negatives=False, progress=False, scio=dict(rounds=1, max_variants=1))))
    r = run_cli("train", "--config", cfg)
    assert r.returncode == 0, r.stderr[-2000:]
    m = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in m] == [1, 2, 3] and all(x["rec"] > 0 for x in m)      # keyword phrases reconstructed
    assert (tmp_path / "run" / "model").is_dir()


def test_bad_input(tmp_path):
    with pytest.raises(hcot.SARInputError, match="--style"): hcot.annotate_chip(None, style="llm")
    (tmp_path / "x.json").write_bytes(b"\xff\xfe not text")
    with pytest.raises(hcot.SARInputError, match="not UTF-8"): hcot.from_official(tmp_path / "x.json")
    with pytest.raises(hcot.SARInputError, match="no record has a sentence for a known field"):
        hcot.official_corpus([{"image_id": "a.png", "Colour": "Colour: red."}], tmp_path / "c")
