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
