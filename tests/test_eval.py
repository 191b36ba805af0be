"`fusar-klip eval` across stages: a trained run, the floors, bad checkpoints and bad data, with one-line errors."
import json

import pandas as pd
import pytest

from conftest import run_cli
from fusar_klip import evaluate as ev


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
    df = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert {"klip_s0", "random-init", "pixel-stats"} <= set(df.model) <= {"klip_s0", *ev.FLOORS}
    assert {"task", "dataset", "split", "metric", "value", "model", "seed", "commit", "chosen"} <= set(df.columns)
    assert (df[df.protocol == "probe"].chosen != "").all() and (df[df.task == "retrieval"].chosen == "").all()
    assert set(df[df.model == "klip_s0"].task) == {"vqa", "segmentation", "retrieval"}
    assert ((df.value >= 0) & (df.value <= 100)).all()
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(df)
    assert (tmp_path / "plots" / "vqa.png").stat().st_size > 5_000
    summary = (tmp_path / "summary.md").read_text()
    assert "mean_recall" in summary and "strongest floor" in summary.splitlines()[0]


def test_pixels_floor_and_chosen_probes(demo, tmp_path):
    "The pixels floor through the CLI: PCA sizes and C chosen on validation, recorded per row; strongest floor named."
    r = run_cli("eval", "--checkpoint", "pixels", "--checkpoint", "pixel-stats", "--tasks", "vqa,counting,landcover,segmentation",
                "--data", demo, "--holdout", "Hamburg", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    df = ev.read_results(tmp_path)
    px = df[df.model == "pixels"]
    assert set(px.task) == {"vqa", "counting", "landcover", "segmentation"}
    chip = px[px.task.isin(["counting", "landcover"]) | px.metric.isin(["count", "main_landform"])]
    assert len(chip) and chip.chosen.str.contains(r"^(?:cls|mean|both) pca=\d+ (?:C|alpha)=").all(), chip.chosen.tolist()
    assert px[px.task == "segmentation"].chosen.str.startswith("patch C=").all()
    sf = ev.strongest_floor(df)
    assert set(sf.floor) <= {"pixels", "pixel-stats"} and len(sf) == len(df.groupby(["task", "protocol", "metric"]))


def test_large_box_images_are_tiled_not_squashed(demo, tmp_path):
    "A trained checkpoint on 300 x 200 px box images: a 384 px canvas at native scale, encoded as 128 px tiles."
    import numpy as np
    from PIL import Image
    g = np.random.default_rng(0); (tmp_path / "img").mkdir()
    ims, anns = [], []
    for i in range(8):
        a = g.gamma(4, 10, (200, 300)).clip(0, 100); x = 20 + 30 * i; a[100:116, x:x + 16] = 250
        Image.fromarray(a.astype(np.uint8)).save(tmp_path / "img" / f"{i}.png")
        ims.append(dict(id=i, file_name=f"img/{i}.png", width=300, height=200, split="train" if i < 6 else "test"))
        anns.append(dict(id=i, image_id=i, category_id=1, bbox=[x, 100, 16, 16]))
    (tmp_path / "c.json").write_text(json.dumps(dict(images=ims, annotations=anns, categories=[dict(id=1, name="ship")])))
    B = ev.load_boxes(tmp_path / "c.json")
    assert B.images.shape == (8, 1, 384, 384) and B.boxes.x0.tolist() == [20. + 30 * i for i in range(8)]
    enc = ev.load_encoder(str(demo / "bench" / "klip_s0"))
    f = ev.extract(enc, B.images[:2])
    assert f["patches"].shape[:3] == (2, 24, 24)                      # 3 x 3 tiles of 8 x 8 patches, stitched
    tile = enc.features(B.images[:1, :, 128:256, 128:256])["patches"][0]
    assert (f["patches"][0, 8:16, 8:16] - tile).abs().max() < 1e-4    # the centre tile, encoded as a 128 px chip
    r = run_cli("eval", "--checkpoint", demo / "bench" / "klip_s0", "--tasks", "boxes", "--boxes", tmp_path / "c.json",
                "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert set(pd.read_csv(tmp_path / "o" / "results.csv").metric) == {"count_exact", "count_MAE", "AP50"}


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
