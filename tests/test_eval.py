"`fusar-klip eval` across stages: a trained run, the floors, bad checkpoints and bad data, with one-line errors."
import json

import pandas as pd
import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    "A micro world with a 1-step SCIO model, made by the CLI."
    d = tmp_path_factory.mktemp("demo")
    r = run_cli("demo", "--world", "micro", "--out", d, "--workers", "2", "--train-steps", "1")
    assert r.returncode == 0, r.stderr
    return d


def test_eval_run_and_floors(demo, tmp_path):
    r = run_cli("eval", "--checkpoint", demo / "bench" / "klip_s0", "--floors", "--tasks", "vqa,segmentation,retrieval",
                "--data", demo, "--holdout", "Hamburg", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "results.csv")
    assert set(df.model) == {"klip_s0", "random-init", "pixel-stats"}
    assert {"task", "dataset", "split", "metric", "value", "model", "seed", "commit"} <= set(df.columns)
    assert set(df[df.model == "klip_s0"].task) == {"vqa", "segmentation", "retrieval"}
    assert ((df.value >= 0) & (df.value <= 100)).all()
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(df)
    assert (tmp_path / "plots" / "vqa.png").stat().st_size > 5_000
    assert "mean_recall" in (tmp_path / "summary.md").read_text()


def test_checkpoint_that_does_not_match(demo, tmp_path):
    import shutil
    m = tmp_path / "model"
    shutil.copytree(demo / "bench" / "klip_s0" / "model", m)
    cfg = json.loads((m / "config.json").read_text()); cfg["vision_layers"] += 1
    (m / "config.json").write_text(json.dumps(cfg))
    r = run_cli("eval", "--checkpoint", m, "--tasks", "vqa", "--data", demo, "--holdout", "Hamburg", "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "model.safetensors: weights do not match the config's architecture" in r.stderr


def test_bad_data_and_task(demo, tmp_path):
    r = run_cli("eval", "--checkpoint", "pixel-stats", "--tasks", "mstar", "--mstar", demo / "chips", "--out", tmp_path)
    assert r.returncode == 2 and "expected sub-folders train, test" in r.stderr
    r = run_cli("eval", "--checkpoint", "pixel-stats", "--tasks", "counting,teleport", "--out", tmp_path)
    assert r.returncode == 2 and "unknown task(s) teleport" in r.stderr and "segmentation" in r.stderr
    r = run_cli("eval", "--checkpoint", "pixel-stats", "--tasks", "vqa", "--data", demo, "--out", tmp_path)
    assert r.returncode == 2 and "hold out some cities" in r.stderr       # the micro world has no held-out city
    (tmp_path / "c.json").write_text(json.dumps(dict(images=[dict(id=1, file_name="x.png", width=10, height=10)],
                                                     annotations=[], categories=[])))
    r = run_cli("eval", "--checkpoint", "pixel-stats", "--tasks", "boxes", "--boxes", tmp_path / "c.json", "--out", tmp_path)
    assert r.returncode == 2 and "x.png: file not found" in r.stderr
