"HCoT annotation at corpus scale: shards, torchrun, kill and resume, bad input (issue 3)."
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from conftest import run_cli
from test_resume import kill_when, EXE
from fusar_klip.facts import chip_facts, SceneTargets
from fusar_klip.geo import SARInputError, read_manifest, write_raster
from fusar_klip.hcot import annotate_chip, annotate_corpus, read_corpus


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    d = tmp_path_factory.mktemp("ann")
    assert run_cli("synth", "--world", "micro", "--out", d / "scenes", "--workers", "1").returncode == 0
    r = run_cli("tile", d / "scenes", "--out", d / "chips", "--size", "32")    # 2 x 144 chips
    assert r.returncode == 0, r.stderr
    return d


def corpus_of(d):
    return pd.read_parquet(d / "corpus.parquet")


def test_cli_annotate_and_shards_agree(chips, tmp_path):
    ref = run_cli("annotate", "--chips", chips / "chips", "--out", tmp_path / "ref", "--batch", "16")
    assert ref.returncode == 0, ref.stderr
    assert "corpus:" in ref.stdout and "MTLD" in ref.stdout
    for i in (1, 0):
        r = run_cli("annotate", "--chips", chips / "chips", "--out", tmp_path / "sh", "--batch", "16", "--shard", f"{i}/2")
        assert r.returncode == 0, r.stderr
    assert "not merged yet" not in r.stdout
    assert corpus_of(tmp_path / "sh").equals(corpus_of(tmp_path / "ref"))
    official = json.loads((tmp_path / "ref" / "captions_official.json").read_text())
    assert len(official) == len(read_manifest(chips / "chips" / "manifest.parquet"))
    assert {"image_id", "Terrain", "Functionality", "Distribution", "Layout", "Boundary", "Buildings", "Roads", "Water"} <= set(official[0])


def test_torchrun_two_processes(chips, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists(): pytest.skip("torchrun not installed")
    r = subprocess.run([str(torchrun), "--nproc-per-node", "2", "--no-python", EXE, "annotate", "--chips",
                        str(chips / "chips"), "--out", str(tmp_path / "tr"), "--batch", "16"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "tr" / "shards" / "000-of-002.done").exists() and (tmp_path / "tr" / "shards" / "001-of-002.done").exists()
    ref = tmp_path / "ref"
    assert run_cli("annotate", "--chips", chips / "chips", "--out", ref, "--batch", "16").returncode == 0
    assert corpus_of(tmp_path / "tr").equals(corpus_of(ref))


def test_killed_annotation_resumes_exactly(chips, tmp_path):
    args = ["annotate", "--chips", str(chips / "chips"), "--out", str(tmp_path / "k"), "--batch", "4", "--variants", "5"]
    assert run_cli(*args[:3], "--out", tmp_path / "ref", "--batch", "4", "--variants", "5").returncode == 0
    shard = tmp_path / "k" / "shards" / "000-of-001"
    killed = kill_when([EXE, *args], lambda: shard.exists() and len(list(shard.glob("b*.json"))) >= 10)
    assert killed, "annotation finished before it could be killed"
    assert not (tmp_path / "k" / "corpus.parquet").exists()
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert corpus_of(tmp_path / "k").equals(corpus_of(tmp_path / "ref"))
    assert not list((tmp_path / "k").rglob(".*tmp*"))
    c = corpus_of(tmp_path / "k")
    assert not c.duplicated(["chip_id", "variant"]).any()


def test_noise_keeps_the_truth(chips, tmp_path):
    r = run_cli("annotate", "--chips", chips / "chips", "--out", tmp_path / "n", "--noise", "0.3", "--variants", "1")
    assert r.returncode == 0, r.stderr
    cors = pd.read_parquet(tmp_path / "n" / "corruptions.parquet")
    recs = {x.chip_id: x for x in read_corpus(tmp_path / "n")}
    assert len(cors) > 0 and {"count", "landform"} <= set(cors.kind)
    for _, x in cors.iterrows():
        assert recs[x.chip_id].clauses[x.clause].keyword == x.noisy_keyword
        assert x.true_keyword is None or x.true_keyword != x.noisy_keyword


def test_dropped_clauses_keep_the_truth(chips, tmp_path):
    from fusar_klip.scio import clean_records
    for name, extra in (("clean", []), ("drop", ["--noise", "0.5", "--noise-drop", "0.5"])):
        r = run_cli("annotate", "--chips", chips / "chips", "--out", tmp_path / name, "--variants", "1", *extra)
        assert r.returncode == 0, r.stderr
    cors = pd.read_parquet(tmp_path / "drop" / "corruptions.parquet")
    assert "drop" in set(cors.kind) and len(set(cors.kind)) > 1
    clean = {(x.chip_id, x.variant): x.caption for x in read_corpus(tmp_path / "clean")}
    back = clean_records(read_corpus(tmp_path / "drop"), cors)
    assert {(x.chip_id, x.variant): x.caption for x in back} == clean


def test_bad_layers(chips, tmp_path):
    man = read_manifest(chips / "chips" / "manifest.parquet")
    row = man.iloc[0].to_dict()
    # a land-cover layer with codes the table does not know: clear error, or counted with unknown='ignore'
    lc = chips / "chips" / row["landcover_path"]
    with rasterio.open(lc) as src: prof, arr, t = src.profile, src.read(1), src.transform
    arr[:4, :4] = 77
    bad = tmp_path / "lc77.tif"
    write_raster(bad, arr, prof["crs"], t, nodata=0)
    with pytest.raises(SARInputError, match=r"lc77.tif: land-cover codes \[77\] are not in the class table"):
        chip_facts(row | {"landcover_path": None}, chips / "chips", landcover_layer=bad)
    f = chip_facts(row | {"landcover_path": None}, chips / "chips", landcover_layer=bad, unknown="ignore")
    assert f.unknown_codes == {77: 16}
    # a missing layer given explicitly is an error; an empty targets layer is fine: count 0, no target clauses
    with pytest.raises(SARInputError, match="file not found"):
        chip_facts(row | {"landcover_path": "nope_lc.tif"}, chips / "chips")
    empty = tmp_path / "empty.geojson"; empty.write_text('{"type": "FeatureCollection", "features": []}')
    f = chip_facts(row, chips / "chips", SceneTargets(empty, row["native_crs"]))
    recs, rej = annotate_chip(f, variants=1)
    assert [c.keyword for c in recs[0].clauses if c.field == "Count"] == ["0"]
    assert not any(c.level == "L4" and c.field != "Count" for c in recs[0].clauses) and rej == []
    # no layers at all (a real scene with nothing beside it): no claims, an empty caption, nothing invented
    f = chip_facts(row | {"landcover_path": None}, chips / "chips")
    recs, _ = annotate_chip(f, variants=1)
    assert [c.field for c in recs[0].clauses] == ["Place"] or recs[0].clauses == []
    # an empty land-cover layer (all nodata): no land-cover claims
    write_raster(tmp_path / "zeros.tif", np.zeros_like(arr), prof["crs"], t, nodata=0)
    f = chip_facts(row | {"landcover_path": None}, chips / "chips", landcover_layer=tmp_path / "zeros.tif")
    assert f.landcover == {} and not any(c.field in ("Terrain", "Water") for c in annotate_chip(f, variants=1)[0][0].clauses)


def test_llm_rejections_are_counted(chips, tmp_path, monkeypatch):
    from fusar_klip import hcot
    answers = iter(['not json', '{"Functionality": "port", "Bogus": "x"}', '{"Distribution": "volume scattering"}', '{}'] * 1000)
    class Fake(hcot.TemplateBackend):
        name = "fake-llm"
        def keywords(self, f, level, previous): return hcot.parse_json_answer(next(answers))
    man = read_manifest(chips / "chips" / "manifest.parquet")
    st = SceneTargets(chips / "scenes" / man.scene_id.iloc[0] / "targets.geojson", man.native_crs.iloc[0])
    f = chip_facts(man.iloc[0], chips / "chips", st)
    recs, rej = annotate_chip(f, Fake(), variants=1)
    reasons = sorted(r["reason"] for r in rej)
    assert "ValueError" in reasons and "unsupported fields" in reasons
    assert all(c.keyword in hcot.FIELD[c.field].accepts(f) for c in recs[0].clauses)     # L5 leaves no contradiction
