"Bad input to `fusar-klip eval`: subsampled worlds, messy VOC / COCO box sets, damaged checkpoints -- clear one-line errors."
import json, logging, shutil

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from fusar_klip import evaluate as ev
from fusar_klip.geo import SARInputError


def expect(fn, *words, exc=SARInputError):
    with pytest.raises(exc) as ei: fn()
    for w in words: assert w in str(ei.value), f"{w!r} not in {ei.value}"
    return ei.value


# ---- a small world with train / val / test in its manifest

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "The micro world (2 cities, 18 chips) with clean captions; its manifest gets 10 train, 4 val and 4 test chips."
    from conftest import micro_world
    from fusar_klip.geo import read_manifest, write_manifest
    d = micro_world(tmp_path_factory.mktemp("world"))
    man = read_manifest(d / "chips" / "manifest.parquet")
    man["split"] = ["train"] * 10 + ["val"] * 4 + ["test"] * 4
    write_manifest(man, d / "chips" / "manifest.parquet")
    return d


def test_max_per_split_keeps_the_split_column(world):
    W = ev.load_world(world, max_per_split=3, seed=0)
    assert sorted(W.split) == ["test"] * 3 + ["train"] * 3 + ["val"] * 3
    full = ev.load_world(world)
    assert W.chip_ids == [c for c in full.chip_ids if c in set(W.chip_ids)]      # manifest order
    assert list(W.split) == [full.split[full.chip_ids.index(c)] for c in W.chip_ids]   # each chip keeps its split
    W5 = ev.load_world(world, max_per_split=5)                                   # fewer than 5 in val and test: all kept
    assert {s: int((W5.split == s).sum()) for s in ("train", "val", "test")} == dict(train=5, val=4, test=4)
    assert ev.load_world(world, max_per_split=3, seed=1).chip_ids != W.chip_ids


def test_eval_cli_max_per_split(world, tmp_path):
    r = run_cli("eval", "--checkpoint", "pixel-stats", "--tasks", "counting", "--data", world, "--max-per-split", "3",
                "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "counting" in (tmp_path / "results.csv").read_text()


def test_holdout_errors(world):
    expect(lambda: ev.load_world(world, holdout=["Atlantis"]), "--holdout", "['Atlantis']", "cities: Hamburg, Shanghai")
    expect(lambda: ev.load_world(world, holdout=["Hamburg", "Shanghai"]), "--holdout: holds out every city")


def test_manifest_without_train_chips(world, tmp_path):
    from fusar_klip.geo import read_manifest, write_manifest
    d = tmp_path / "w"; shutil.copytree(world / "chips", d / "chips")
    man = read_manifest(d / "chips" / "manifest.parquet"); man["split"] = "test"
    write_manifest(man, d / "chips" / "manifest.parquet")
    expect(lambda: ev.load_world(d), "manifest.parquet: has no 'train' chips (splits: test)", "--holdout CITY")


def test_nothing_to_save(tmp_path):
    import pandas as pd
    expect(lambda: ev.save_results(pd.DataFrame(columns=ev.RESULT_COLUMNS), tmp_path), "--tasks: no result to save")


# ---- Pascal VOC and COCO box sets

def obj(box, name="ship"):
    return ("<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>"
            "</object>").format(name, *box)


def make_voc(root, boxes:dict, n=6, size=48):
    "A VOC folder of `n` noise images (size x size); `boxes` maps image index -> list of boxes (default one 10 px box)."
    g = np.random.default_rng(0)
    (root / "Annotations").mkdir(parents=True); (root / "JPEGImages").mkdir()
    for i in range(n):
        a = g.gamma(4, 10, (size, size)).clip(0, 100); a[5:15, 5:15] = 250
        Image.fromarray(a.astype(np.uint8)).save(root / "JPEGImages" / f"{i:03d}.png")
        objs = "".join(obj(b) for b in boxes.get(i, [(5, 5, 15, 15)]))
        (root / "Annotations" / f"{i:03d}.xml").write_text(
            f"<annotation><filename>{i:03d}.png</filename><size><width>{size}</width><height>{size}</height></size>"
            f"{objs}</annotation>")
    return root


def test_voc_boxes_past_the_border_are_clipped_and_counted(tmp_path, caplog):
    voc = make_voc(tmp_path / "voc", {1: [(40, 40, 60, 47)], 2: [(5, 5, 15, 15), (50, 0, 60, 10), (20, 20, 20, 30)]})
    imgs, boxes = ev.read_voc(voc)
    assert boxes.attrs == dict(clipped=1, dropped=2, left_out=0)        # (50, 0, 60, 10) lies beyond x = 48; (20, 20, 20, 30) is empty
    assert boxes[boxes.image == 1][["x0", "y0", "x1", "y1"]].values.tolist() == [[40, 40, 48, 47]]
    assert len(boxes) == 6
    with caplog.at_level(logging.WARNING, logger="fusar_klip.evaluate"):
        B = ev.load_boxes(voc, size=24, test_fraction=0.5)
    assert (B.clipped, B.dropped, B.left_out) == (1, 2, 0)
    assert "1 box(es) clipped" in caplog.text and "2 empty box(es) skipped" in caplog.text
    assert B.boxes.x1.max() <= 24
    e = expect(lambda: ev.read_voc(voc, strict=True), "001.xml", "object 0 (ship)", "(40.0, 40.0, 60.0, 47.0)", "48x48")
    assert "without strict=True they are clipped" in str(e)
    expect(lambda: ev.load_boxes(voc, strict=True), "001.xml: object 0 (ship)")


def test_native_scale_images_larger_than_max_side(tmp_path, caplog):
    "Box images keep their pixels on a canvas; only those larger than max_side are scaled down, and the log says so."
    voc = make_voc(tmp_path / "voc", {}, n=4)                            # 48 px images, a box (5, 5, 15, 15)
    B = ev.load_boxes(voc, test_fraction=0.5)
    assert B.images.shape == (4, 1, 128, 128) and B.boxes.x1.tolist() == [15.0] * 4 and not B.images[..., 48:].any()
    with caplog.at_level(logging.WARNING, logger="fusar_klip.evaluate"):
        B = ev.load_boxes(voc, test_fraction=0.5, tile=16, max_side=32)
    assert B.images.shape == (4, 1, 32, 32) and B.boxes.x1.tolist() == [10.0] * 4
    assert "4 image(s) larger than max_side=32 px scaled down to fit" in caplog.text


def test_old_results_table_without_chosen(tmp_path):
    "Tables written before probes were chosen on validation still read, with an empty 'chosen' column."
    import pandas as pd
    cols = [c for c in ev.RESULT_COLUMNS if c != "chosen"]
    pd.DataFrame([dict(task="mstar", dataset="MSTAR-10", split="test", protocol="probe", metric="top1", value=43.3,
                       n=2425, model="pixel-stats", seed=0, commit="1fe3557", seconds=1.0)], columns=cols).to_csv(tmp_path / "r.csv", index=False)
    df = ev.read_results(tmp_path / "r.csv")
    assert list(df.chosen) == [""] and ev.summary_table(df)["strongest floor"].tolist() == ["pixel-stats 43.3"]


def test_voc_split_files_are_used(tmp_path):
    voc = make_voc(tmp_path / "voc", {}, n=6)
    m = voc / "ImageSets" / "Main"; m.mkdir(parents=True)
    (m / "trainval.txt").write_text("000\n001\n002\n003\n")
    (m / "test.txt").write_text("004\n")                                # 005 is in neither: left out
    imgs, boxes = ev.read_voc(voc)
    assert imgs.split.tolist() == ["train"] * 4 + ["test"] and boxes.attrs["left_out"] == 1
    B = ev.load_boxes(voc, size=16, test_fraction=0.99)                  # the set's split wins over a random one
    assert list(B.split) == ["train"] * 4 + ["test"] and B.left_out == 1
    (m / "test.txt").write_text("003\n004\n")
    expect(lambda: ev.read_voc(voc), "test.txt: 1 image(s) are also listed for training, e.g. 003")


def test_voc_file_names_and_bad_files(tmp_path):
    voc = make_voc(tmp_path / "voc", {}, n=3)
    x = voc / "Annotations" / "001.xml"
    for fn, words in (("/etc/passwd", "is not a relative path inside"), ("../../x.jpg", "leaves the folder"),
                      ("C:/x.jpg", "is not a relative path inside")):
        x.write_text(f"<annotation><filename>{fn}</filename></annotation>")
        expect(lambda: ev.read_voc(voc), "001.xml", f"<filename> {fn!r}", words)
    x.write_text("<annotation><filename>001.png</filename><object><name>ship")
    expect(lambda: ev.read_voc(voc), "001.xml: not valid XML")
    x.write_text(f"<annotation><filename>001.png</filename>{obj((1, 2, 'x', 4))}</annotation>")
    expect(lambda: ev.read_voc(voc), "001.xml: object 0 <xmax> is 'x', not a number")
    (voc / "JPEGImages" / "001.png").unlink()
    x.write_text("<annotation><filename>001.png</filename></annotation>")
    expect(lambda: ev.read_voc(voc), "001.png: file not found", "the image of", exc=FileNotFoundError)
    x.write_text("<annotation><filename>001.png</filename><size><width>48</width><height>48</height></size></annotation>")
    png = voc / "JPEGImages" / "000.png"; (voc / "JPEGImages" / "001.png").write_bytes(png.read_bytes()[:200])
    expect(lambda: ev.load_boxes(voc), "001.png: cannot be read as an image")


def test_coco_file_names_and_bad_files(tmp_path):
    voc = make_voc(tmp_path / "voc", {}, n=2)
    d = dict(images=[dict(id=i, file_name=f"JPEGImages/{i:03d}.png", width=48, height=48) for i in range(2)],
             categories=[dict(id=1, name="ship")],
             annotations=[dict(id=0, image_id=0, category_id=1, bbox=[40, 40, 20, 5]),
                          dict(id=1, image_id=1, category_id=1, bbox=[60, 0, 5, 5])])
    f = voc / "c.json"

    def write(**change):
        f.write_text(json.dumps({**d, **change}))
        return f
    imgs, boxes = ev.read_coco(write())
    assert boxes.attrs == dict(clipped=1, dropped=1, left_out=0)
    assert boxes[["x0", "y0", "x1", "y1"]].values.tolist() == [[40, 40, 48, 45]]
    expect(lambda: ev.read_coco(f, strict=True), "c.json: annotation 0: box (40.0, 40.0, 60.0, 45.0) lies outside")
    for fn, words in (("/etc/passwd", "is not a relative path inside"), ("../../x.png", "leaves the folder")):
        write(images=[dict(id=0, file_name=fn, width=48, height=48)], annotations=[])
        expect(lambda: ev.read_coco(f), "c.json", f"file_name {fn!r}", words)
    write(images=[dict(id=0, file_name="JPEGImages/000.png")], annotations=[])
    expect(lambda: ev.read_coco(f), "c.json: images[0] is malformed", "width")
    write(annotations=[dict(id=0, image_id=0, category_id=1, bbox="wide")])
    expect(lambda: ev.read_coco(f), "c.json: annotations[0] is malformed", "bbox [x, y, w, h]")
    f.write_text(json.dumps(d)[:40])
    expect(lambda: ev.read_coco(f), "c.json: not valid JSON")
    f.write_text("[1, 2]")
    expect(lambda: ev.read_coco(f), "c.json: not a COCO detection file")


# ---- damaged checkpoints

@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    "A tiny fusar-klip model saved in a run folder (run/model/)."
    from fusar_klip.model import KlipModel, KlipConfig
    from fusar_klip.data import load_tokenizer
    cfg = KlipConfig.load("tiny"); cfg.vision_layers = cfg.text_layers = 1; cfg.queue_size = 32
    tok = load_tokenizer("corpus", captions=["the terrain is forest", "the water proportion is low"] * 20, vocab_size=200)
    run = tmp_path_factory.mktemp("ckpt") / "run"
    KlipModel(cfg, tok).save_pretrained(run / "model")
    return run


def damaged(saved_model, tmp_path, name, data):
    "A copy of the run folder with model/NAME replaced by `data` (None: removed)."
    run = tmp_path / "run"; shutil.copytree(saved_model, run)
    f = run / "model" / name
    if data is None: f.unlink()
    else: f.write_bytes(data(f.read_bytes()) if callable(data) else data)
    return run


@pytest.mark.parametrize("name,data,words", [
    ("model.safetensors", lambda b: b[:len(b) // 2], ["model.safetensors: truncated or not a safetensors file", "re-copy"]),
    ("model.safetensors", lambda b: b[:5], ["model.safetensors: truncated or not a safetensors file"]),
    ("model.safetensors", None, ["model.safetensors: file not found", "re-copy"]),
    ("config.json", lambda b: b[:30], ["config.json: truncated or not a JSON file", "re-copy"]),
    ("config.json", None, ["config.json: file not found", "re-copy"]),
])
def test_damaged_checkpoint(saved_model, tmp_path, name, data, words):
    run = damaged(saved_model, tmp_path, name, data)
    expect(lambda: ev.load_encoder(str(run)), *words)


def test_cli_truncated_weights(saved_model, tmp_path):
    run = damaged(saved_model, tmp_path, "model.safetensors", lambda b: b[:len(b) // 3])
    r = run_cli("eval", "--checkpoint", run, "--tasks", "boxes", "--out", tmp_path / "o")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "model.safetensors: truncated or not a safetensors file" in r.stderr


def test_intact_checkpoint_loads(saved_model):
    assert ev.load_encoder(str(saved_model)).name == "run"


@pytest.mark.parametrize("spec,words", [
    ("pixel_stats", ["--checkpoint: 'pixel_stats' is no file or folder, nor a known name", "'pixel-stats'"]),
    ("pixel", ["--checkpoint: 'pixel' is no file or folder, nor a known name", "'pixels'"]),
    ("open_clip:", ["is not open_clip:FILE,tokenizer=DIR"]),
    ("open_clip:x.pt,tokeniser=tok", ["unknown part(s): tokeniser=tok"]),
    ("hf:/nowhere/at/all", ["/nowhere/at/all: folder not found"]),
    ("random-init", ["--checkpoint: 'random-init' needs a trained fusar-klip checkpoint"]),
])
def test_unknown_checkpoint_spec(spec, words):
    expect(lambda: ev.load_encoder(spec), *words)
