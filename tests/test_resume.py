"Lost work: a run killed mid-way and rerun ends with exactly the output of an uninterrupted run (issue 2, section 6)."
import json, os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import run_cli
from fusar_klip.geo import read_manifest

EXE = str(Path(sys.executable).parent / "fusar-klip")


def kill_when(cmd, ready, timeout=120):
    "Start `cmd`, SIGKILL it as soon as `ready()` is true; return whether it was killed before finishing."
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "MPLBACKEND": "Agg"})
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < timeout:
        if ready():
            p.send_signal(signal.SIGKILL); p.wait(); return True
        time.sleep(0.002)
    p.wait()
    return False


def tree(d: Path) -> dict:
    "Relative path -> content fingerprint for every file under `d` (pixels for rasters, text otherwise)."
    out = {}
    for f in sorted(d.rglob("*")):
        if not f.is_file(): continue
        rel = f.relative_to(d).as_posix()
        if f.suffix == ".tif":
            with rasterio.open(f) as src: out[rel] = (src.read().tobytes(), src.transform, src.crs, src.tags())
        elif f.suffix == ".parquet": out[rel] = read_manifest(f).to_json() if f.name == "manifest.parquet" else "part"
        else: out[rel] = f.read_bytes()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("world")
    r = run_cli("synth", "--world", "micro", "--out", d / "scenes", "--workers", "1")
    assert r.returncode == 0, r.stderr
    return d / "scenes"


def test_tiling_killed_and_resumed_equals_uninterrupted(world, tmp_path):
    args = ["tile", str(world), "--size", "16"]            # 2 scenes x 576 chips: long enough to kill mid-way
    ref = run_cli(*args, "--out", tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "resumed"
    n_ref = len(list((tmp_path / "ref").rglob("*_r*_c*.tif")))
    killed = kill_when([EXE, *args, "--out", str(out)],
                       lambda: out.exists() and sum(1 for _ in out.rglob("*_r*_c*.tif")) >= n_ref // 3)
    assert killed, "the run finished before it could be killed; make the workload larger"
    assert not (out / "manifest.parquet").exists()
    done_before = len(list(out.rglob("*_r*_c*.tif")))
    assert 0 < done_before < n_ref
    r = run_cli(*args, "--out", out)
    assert r.returncode == 0, r.stderr
    assert f"{done_before - 1}" in r.stdout or "already there" in r.stdout
    assert tree(out) == tree(tmp_path / "ref")                   # same files, pixels, tags and manifest; no temporaries
    man = read_manifest(out / "manifest.parquet")
    assert man.chip_id.is_unique and len(man) == n_ref // 2      # no duplicates, no gaps (chip + land-cover file each)


def test_synth_killed_and_resumed_equals_uninterrupted(tmp_path):
    ref = run_cli("synth", "--world", "micro", "--out", tmp_path / "ref", "--workers", "1")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "resumed"
    first = json.loads((tmp_path / "ref" / "index.json").read_text())["scenes"][0]["scene_id"]
    killed = kill_when([EXE, "synth", "--world", "micro", "--out", str(out), "--workers", "1"],
                       lambda: (out / first / "scene.json").exists())
    assert killed
    assert not (out / "index.json").exists()
    r = run_cli("synth", "--world", "micro", "--out", out, "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert tree(out) == tree(tmp_path / "ref")


@pytest.fixture(scope="module")
def traindata(world, tmp_path_factory):
    "The micro world's 2 scenes tiled into ~70 training chips of 64 px, one caption each."
    from fusar_klip.geo import tile_scenes
    from fusar_klip.hcot import annotate_corpus
    from fusar_klip.synth import tiling_inputs
    d = tmp_path_factory.mktemp("traindata")
    tile_scenes(tiling_inputs(world, split="train"), d / "chips", 64, progress=False)
    annotate_corpus(d / "chips", d / "hcot", world, variants=1, progress=False)
    return d


def test_training_killed_and_resumed_logs_the_same_metrics(traindata, tmp_path):
    """Killed between two metrics lines (checkpoints every 2 steps, a line every 5), the resumed run writes the metrics
    of the uninterrupted one: the losses averaged into the next line are in the checkpoint."""
    def cfg(name):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(dict(data=str(traindata), out=str(tmp_path / name), mode="blip", layers=1, steps=8,
                                     batch_size=2, max_len=160, queue_size=16, log_every=5, ckpt_every=2, mask_prob=0.0,
                                     sample_negatives=False, progress=False, tensorboard=False)))
        return p
    r = run_cli("train", "--config", cfg("ref"))
    assert r.returncode == 0, r.stderr[-2000:]
    ck = tmp_path / "part" / "checkpoints"
    step = lambda: json.loads((ck / "latest.json").read_text())["step"] if (ck / "latest.json").exists() else 0
    killed = kill_when([EXE, "train", "--config", str(cfg("part"))], lambda: step() >= 2)
    assert killed, "training finished before it could be killed"
    assert step() in (2, 4, 6)                                   # a checkpoint between two lines: losses wait in the window
    r = run_cli("train", "--config", cfg("part"))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = lambda name: [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    ref, part = lines("ref"), lines("part")
    assert [x["step"] for x in part] == [x["step"] for x in ref] == [5, 8]
    timing = ("sec_per_step", "samples_per_s")
    for a, b in zip(part, ref):
        assert a.keys() == b.keys()
        for k in a.keys() - set(timing):                         # equal up to float summation order between processes
            assert a[k] == (pytest.approx(b[k], rel=1e-6, abs=1e-9) if isinstance(b[k], float) else b[k]), (k, a, b)
