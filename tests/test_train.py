"""Training: 2 gloo processes equal one, a killed run resumes to the same weights, bad input (issue 5), image-only training
under DDP, and a vision-language run on that encoder, frozen (init_vision, vision_lr=0), under DDP."""
import json, os, subprocess, sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli
from test_resume import kill_when, EXE

TORCHRUN = str(Path(sys.executable).parent / "torchrun")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from conftest import micro_world
    return micro_world(tmp_path_factory.mktemp("traindata"), size=64, noise=0.3)    # 2 x 36 chips, one caption each


def config(tmp_path, data, **kw):
    base = dict(data=str(data), out=str(tmp_path / "run"), mode="blip", layers=1, steps=4, batch_size=8, max_len=160,
                queue_size=16, log_every=1, ckpt_every=2, mask_prob=0.0, sample_negatives=False, progress=False)
    base.update(kw)
    p = tmp_path / f"cfg_{abs(hash(json.dumps(base, sort_keys=True)))}.json"
    p.write_text(json.dumps(base))
    return p


def weights(run):
    return load_file(str(Path(run) / "model" / "model.safetensors"))


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_gloo_processes_match_one(data, tmp_path):
    one = config(tmp_path, data, out=str(tmp_path / "one"), batch_size=8)
    r = run_cli("train", "--config", one)
    assert r.returncode == 0, r.stderr[-2000:]
    two = config(tmp_path, data, out=str(tmp_path / "two"), batch_size=4)
    r = subprocess.run([TORCHRUN, "--nproc-per-node", "2", "--no-python", EXE, "train", "--config", str(two)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    m1 = [json.loads(l) for l in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(l) for l in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in m1] == [x["step"] for x in m2] == [1, 2, 3, 4]
    for a, b in zip(m1, m2):
        for k in ("itc", "itm", "rec", "total"): assert abs(a[k] - b[k]) < 1e-4 * max(1, abs(a[k])), (k, a, b)
    assert max_diff(weights(tmp_path / "one"), weights(tmp_path / "two")) < 1e-4


def test_killed_run_resumes_to_the_same_weights(data, tmp_path):
    full = config(tmp_path, data, out=str(tmp_path / "full"), mode="klip", steps=6, ckpt_every=2, batch_size=4,
                  scio=dict(rounds=2, max_variants=2))
    assert run_cli("train", "--config", full).returncode == 0
    part = config(tmp_path, data, out=str(tmp_path / "part"), mode="klip", steps=6, ckpt_every=2, batch_size=4,
                  scio=dict(rounds=2, max_variants=2))
    ck = tmp_path / "part" / "checkpoints"
    killed = kill_when([EXE, "train", "--config", str(part)],
                       lambda: (ck / "latest.json").exists() and json.loads((ck / "latest.json").read_text())["step"] >= 6)
    assert killed, "training finished before it could be killed"
    r = run_cli("train", "--config", part)
    assert r.returncode == 0, r.stderr[-2000:]
    assert max_diff(weights(tmp_path / "full"), weights(tmp_path / "part")) == 0.0
    a = (tmp_path / "full" / "corpus_r2.parquet").read_bytes() == (tmp_path / "part" / "corpus_r2.parquet").read_bytes()
    import pandas as pd
    assert pd.read_parquet(tmp_path / "full" / "corpus_r2.parquet").equals(pd.read_parquet(tmp_path / "part" / "corpus_r2.parquet"))
    steps = [json.loads(l)["step"] for l in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) == list(range(1, 13))            # no duplicated or missing metric lines
    sc = [json.loads(l) for l in (tmp_path / "full" / "scio.jsonl").read_text().splitlines()]
    assert [s["round"] for s in sc] == [1, 2] and all("precision" in s and "error_rate_after" in s for s in sc)


def test_bad_training_input(data, tmp_path):
    r = run_cli("train", "--config", config(tmp_path, data, scio=dict(phases=[0.5, 0.6, 0.1]), mode="klip"))
    assert r.returncode == 2 and "summing to 1" in r.stderr
    r = run_cli("train", "--config", config(tmp_path, data, wings=1))
    assert r.returncode == 2 and "unknown training config keys: wings" in r.stderr
    cfg = config(tmp_path, data, out=str(tmp_path / "r1"), steps=2)
    assert run_cli("train", "--config", cfg).returncode == 0
    r = run_cli("train", "--config", cfg, "--set", "layers=2")
    assert r.returncode == 2 and "another config" in r.stderr
    ck = tmp_path / "r1" / "checkpoints"
    latest = ck / json.loads((ck / "latest.json").read_text())["checkpoint"]
    latest.write_bytes(latest.read_bytes()[:100])                        # a half-written checkpoint
    r = run_cli("train", "--config", cfg)
    assert r.returncode == 2 and "no readable checkpoint to resume from" in r.stderr, r.stderr   # none earlier to fall back to
    # a corpus without keyword spans: nothing to reconstruct
    import pandas as pd
    c = pd.read_parquet(data / "hcot" / "corpus.parquet")
    c["clauses"] = c.clauses.map(lambda s: json.dumps([dict(x, keyword="", start=0, end=0) for x in json.loads(s)]))
    (tmp_path / "nokw").mkdir(); c.to_parquet(tmp_path / "nokw" / "corpus.parquet")
    r = run_cli("train", "--config", config(tmp_path, data, out=str(tmp_path / "r2"), corpus=str(tmp_path / "nokw")))
    assert r.returncode == 2 and "no caption has keyword spans" in r.stderr


def test_image_only_mode_trains_under_two_gloo_processes(data, tmp_path):
    "mode 'image' leaves the text tower idle: DDP must be told so, and the contrastive term must be what it learns from."
    two = config(tmp_path, data, out=str(tmp_path / "img"), mode="image", simclr=1.0, batch_size=4, steps=2)
    r = subprocess.run([TORCHRUN, "--nproc-per-node", "2", "--no-python", EXE, "train", "--config", str(two)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    m = [json.loads(l) for l in (tmp_path / "img" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in m] == [1, 2]
    assert all(x["itc"] == x["itm"] == x["rec"] == 0 and 0 < x["simclr"] == x["total"] for x in m), m
    w = weights(tmp_path / "img")
    assert any(k.startswith("simclr_head") for k in w)
    cfg = json.loads((tmp_path / "img" / "model" / "config.json").read_text())
    assert cfg["weights"]["simclr"] == 1.0 and cfg["simclr_temp"] == 0.2


def test_frozen_pretrained_encoder_under_two_gloo_processes(data, tmp_path):
    "image-only pretraining, then a blip run on its encoder frozen: under DDP the encoder stays the one it started from."
    img = config(tmp_path, data, out=str(tmp_path / "img"), mode="image", simclr=1.0, batch_size=8, steps=2)
    assert run_cli("train", "--config", img).returncode == 0
    lit = config(tmp_path, data, out=str(tmp_path / "lit"), init_vision=str(tmp_path / "img"), vision_lr=0.0, batch_size=4, steps=2)
    r = subprocess.run([TORCHRUN, "--nproc-per-node", "2", "--no-python", EXE, "train", "--config", str(lit)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    src, got = weights(tmp_path / "img"), weights(tmp_path / "lit")
    vis = [k for k in src if k.startswith("vision_model.")]
    assert vis and all(torch.equal(src[k], got[k]) for k in vis)
    assert not any(k.startswith("simclr_head") for k in got)                     # the source's heads are not taken
    m = [json.loads(l) for l in (tmp_path / "lit" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in m] == [1, 2] and all(x["itc"] > 0 and x["itm"] > 0 for x in m)
    bad = config(tmp_path, data, out=str(tmp_path / "bad"), init_vision=str(tmp_path / "img"), layers=2)
    r = run_cli("train", "--config", bad)
    assert r.returncode == 2 and "init_vision: its image encoder does not fit this model (its vs this model's: vision_layers 1 vs 2)" in r.stderr
    assert not any((tmp_path / "bad").iterdir())                                  # refused before any work (the CLI made the folder)
