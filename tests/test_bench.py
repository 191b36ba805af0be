"""The benchmark scripts still run, at their smallest sizes. Nothing here is timed: speed is what the scripts measure
when run by hand (see the README)."""
import subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(script, *args) -> str:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], capture_output=True, text=True,
                       timeout=900, cwd=ROOT)
    assert r.returncode == 0, f"{script} failed:\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    "A micro world with a noisy one-caption corpus (what the SCIO benchmarks read)."
    from conftest import micro_world
    return micro_world(tmp_path_factory.mktemp("micro"), "hcot_noisy", noise=0.3)


def test_bench_scio(micro):
    out = bench("bench_scio.py", "--data", micro, "--layers", 1, "--batch", 4, "--steps", 1, "--warmup", 0, "--corpus", 8)
    for line in ("phase A", "phase B itm", "phase C decoder", "corpus pass"): assert line in out, out
    out = bench("bench_scio.py", "--data", micro, "--layers", 1, "--batch", 4, "--steps", 1, "--warmup", 0, "--corpus", 8,
                "--candidates", "closed,corpus,generated")
    assert "candidates closed,corpus,generated" in out, out


def test_itc_positives(micro):
    out = bench("itc_positives.py", "--data", micro, "--corpus", micro / "hcot_noisy", "--steps", 3, "--layers", 1,
                "--batch", 4, "--queue", 16, "--window", 1)
    assert "steps per epoch" in out and len([l for l in out.splitlines() if l.strip().startswith(("1-", "2-", "3-"))]) == 3, out


def test_bench_annotate(micro):
    out = bench("bench_annotate.py", "--chips", micro / "chips", "--world", micro / "scenes", "--n", 5, "--repeats", 1)
    assert "end to end" in out and "rendering" in out, out


def test_bench_model():
    out = bench("bench_model.py", "--batch", 2, "--text-len", 16, "--steps", 1, "--warmup", 0, "--no-anchor",
                "--attn", "sdpa,eager")
    assert "% of peak" in out and "speed-up sdpa / eager" in out, out


def test_bench_tiling():
    out = bench("bench_tiling.py", "--sizes", 256, "--repeats", 1, "--methods", "window")
    assert out.strip(), out


def test_bench_loader():
    out = bench("bench_loader.py", "--batch", 4, "--batches", 2, "--repeats", 1, "--workers", 0, "--step-ms", 100)
    assert "packed shards" in out and "chips/s" in out and "packed / folder" in out and "step's consumption" in out, out


def test_bench_mim():
    out = bench("bench_mim.py", "--layers", 1, "--batch", 2, "--text-len", 16, "--steps", 1, "--warmup", 0)
    assert "without mim" in out and "with / without mim:" in out, out
    out = bench("bench_mim.py", "--term", "simclr", "--layers", 1, "--batch", 2, "--text-len", 16, "--steps", 1, "--warmup", 0)
    assert "without simclr" in out and "with / without simclr:" in out, out


def test_final_norm_probe(tmp_path):
    "The LayerNorm diagnostic on a toy class-folder set and an untrained tiny model: both columns for both models."
    import numpy as np
    from PIL import Image
    from fusar_klip.data import load_tokenizer
    from fusar_klip.model import KlipConfig, KlipModel
    g = np.random.default_rng(0)
    for s in ("train", "test"):
        for k, c in enumerate("AB"):
            (tmp_path / "cf" / s / c).mkdir(parents=True)
            for i in range(6):
                a = g.gamma(4, 10, (128, 128)); a[20:40 + 20 * k, 50:80] = 250
                Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(tmp_path / "cf" / s / c / f"{i}.png")
    tok = load_tokenizer("corpus", ["a small corpus of words for the tokenizer"] * 3, 50)
    KlipModel(KlipConfig(vision_layers=1, text_layers=1, queue_size=16), tok).save_pretrained(tmp_path / "m")
    out = bench("final_norm_probe.py", "--data", tmp_path / "cf", "--checkpoint", tmp_path / "m", "--random-init",
                "--pca", 4, "--json", tmp_path / "r.json")
    import json
    r = json.loads((tmp_path / "r.json").read_text())
    assert set(r) == {"m", "random-init"} and all(set(v) == {"after", "before"} for v in r.values()), r
    assert "after final norm" in out and all(0 <= x <= 100 for v in r.values() for x in v.values()), out
