"Real unlabeled chips join pretraining: import-chips -> mix -> train on the command line; MSTAR and Sentinel-1 when ../shared/data is there."
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import micro_world, run_cli
from fusar_klip.geo import read_manifest
from fusar_klip.hcot import read_corpus
from fusar_klip.real_chips import annotate_real, import_chips, read_real_facts, real_problems


def fake_chip(seed, shape=(72, 72)):
    "An 8-bit MSTAR-like chip: Rayleigh speckle, a bright 14 x 7 px target at the centre, a shadow below it."
    rng = np.random.default_rng(seed)
    amp = rng.rayleigh(18, shape)
    cy, cx = shape[0] // 2, shape[1] // 2
    amp[cy - 7:cy + 7, cx - 3:cx + 4] *= 8
    amp[cy + 9:cy + 22, cx - 3:cx + 4] *= 0.15
    return np.clip(amp, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fake_real(tmp_path_factory):
    "Eight fake real chips in two class folders, JPEG and PNG, 70 to 80 px."
    from PIL import Image
    d = tmp_path_factory.mktemp("fake_real")
    for i in range(8):
        sub = d / ("T72" if i % 2 else "BMP2"); sub.mkdir(exist_ok=True)
        Image.fromarray(fake_chip(i, (70 + i, 72))).save(sub / f"hb{i:03d}.{'png' if i % 3 else 'jpeg'}", quality=95)
    return d


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory.mktemp("real_world"), size=64, split="train")


def test_import_mix_train_on_the_command_line(fake_real, world, tmp_path):
    r = run_cli("import-chips", fake_real, "--out", tmp_path / "real" / "chips", "--sensor", "fake", "--band", "X",
                "--polarisation", "HH", "--res", "0.3", "--size", "64", "--variants", "2")
    assert r.returncode == 0, r.stderr
    assert "8 chips (8 written" in r.stdout and "16 captions" in r.stdout
    man = read_manifest(tmp_path / "real" / "chips" / "manifest.parquet")
    assert len(man) == 8 and man.lon.isna().all() and not man.georeferenced.any() and set(man["size"]) == {64}
    facts, recs = read_real_facts(tmp_path / "real" / "chips"), read_corpus(tmp_path / "real" / "hcot")
    assert all(real_problems(x, facts[x.chip_id]) == [] for x in recs)
    assert sum(len(f.targets) >= 1 for f in facts.values()) >= 6             # the fake targets are found
    # a rerun resumes: nothing is written again
    r = run_cli("import-chips", fake_real, "--out", tmp_path / "real" / "chips", "--sensor", "fake", "--band", "X",
                "--polarisation", "HH", "--res", "0.3", "--size", "64", "--variants", "2")
    assert r.returncode == 0 and "8 chips (0 written, 8 already there)" in r.stdout, r.stderr
    r = run_cli("mix", "--world", world, "--real", tmp_path / "real" / "chips", "--out", tmp_path / "mixed")
    assert r.returncode == 0, r.stderr
    mm = read_manifest(tmp_path / "mixed" / "chips" / "manifest.parquet")
    assert (mm.origin == "real").sum() == 8 and mm.chip_id.str.startswith("real_").sum() == 8
    # klip training on the mixed folder, SCIO rounds included (screening and proofreading meet the new fields)
    cfg = dict(data=str(tmp_path / "mixed"), out=str(tmp_path / "run"), mode="klip", layers=1, steps=6, batch_size=4,
               max_len=160, queue_size=16, log_every=2, ckpt_every=3, progress=False, tensorboard=False,
               scio=dict(rounds=1, max_variants=3, candidates="closed,edits"))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    r = run_cli("train", "--config", tmp_path / "cfg.json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "model").is_dir()


def test_bad_input_is_one_line(fake_real, tmp_path):
    import shutil
    bad = tmp_path / "bad"; shutil.copytree(fake_real, bad)
    (bad / "T72" / "zz_broken.jpeg").write_bytes(b"\xff\xd8\xff not a picture")
    r = run_cli("import-chips", bad, "--out", tmp_path / "out", "--res", "0.3", "--size", "64")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]                              # (above it: the progress bar)
    assert last.startswith("fusar-klip import-chips: error: ") and "zz_broken.jpeg: not an image" in last
    r = run_cli("import-chips", fake_real, "--out", tmp_path / "out2", "--size", "64")
    assert r.returncode == 2 and "--res: the pixel spacing in metres is needed" in r.stderr
    r = run_cli("mix", "--world", tmp_path, "--real", tmp_path, "--out", tmp_path / "m", "--real-fraction", "1.5")
    assert r.returncode == 2 and "--real-fraction" in r.stderr


def test_mstar_chips(shared_data, tmp_path):
    from fusar_klip.eval_real import amplitude_to_db
    from fusar_klip.geo import read_display_chip
    from fusar_klip.real_chips import _read_db
    src = shared_data / "MSTAR-10" / "train"
    man, st = import_chips(src, tmp_path / "chips", "MSTAR", "X", "HH", 0.3, limit=30, progress=False)
    assert st.written == 30 and set(man["size"]) == {128} and (man.valid_fraction == 1).all()
    # the scale the MSTAR benchmark reads (eval_real), up to dequantisation
    r = man.iloc[0]
    mine = _read_db(tmp_path / "chips" / r.path)
    theirs = amplitude_to_db(read_display_chip(src / r.source, 128))
    bright = theirs > -30                                # dequantisation matters only near 0
    assert np.abs(mine - theirs)[bright].max() < 0.5 and abs(np.median(mine - theirs)) < 0.05
    stats = annotate_real(tmp_path / "chips", tmp_path / "hcot", variants=1, progress=False)
    facts = read_real_facts(tmp_path / "chips")
    assert all(real_problems(x, facts[x.chip_id]) == [] for x in read_corpus(tmp_path / "hcot"))
    big = [f.targets[0] for f in facts.values() if f.targets]
    assert len(big) >= 27 and 5 <= np.median([t["length_m"] for t in big]) <= 20          # vehicles: about 5 to 15 m
    assert sum(t["cell"] == "center" for t in big) >= 25
    assert np.median([f.enl for f in facts.values()]) < 2                                   # single-look speckle
    assert stats["field_coverage"]["Count"] == 1.0 and "Backscatter" not in stats["field_coverage"]   # relative dB: no level


def test_sentinel1_tile(shared_data, tmp_path):
    tif = shared_data / "sentinel1" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
    man, st = import_chips(tif, tmp_path / "chips", "Sentinel-1", "C", "VV", scale="db", size=64, progress=False)
    assert st.chips == len(man) > 0 and man.georeferenced.all() and man.lon.notna().all() and (man.res == 20).all()
    annotate_real(tmp_path / "chips", tmp_path / "hcot", variants=1, progress=False)
    facts, recs = read_real_facts(tmp_path / "chips"), read_corpus(tmp_path / "hcot")
    fields = {c.field for r in recs for c in r.clauses}
    assert {"Sensor", "Resolution", "Backscatter", "Clutter"} <= fields and not fields & {"Count", "Size", "Location"}
    assert all(real_problems(x, facts[x.chip_id]) == [] for x in recs)
    assert all(-20 < f.clutter_db < -3 for f in facts.values())      # the tile's sigma0 (1st-99th percentile -22.9 to -4 dB)
