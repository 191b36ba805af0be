"Packed shards (`fusar-klip pack`): training and evaluation read the same images as from the chip folder."
import json

import numpy as np
import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    d = tmp_path_factory.mktemp("micro")
    r = run_cli("demo", "--world", "micro", "--out", d, "--workers", "1", "--train-steps", "0")
    assert r.returncode == 0, r.stderr
    return d


def test_pack_cli_and_eval_images(micro):
    r = run_cli("pack", micro / "chips", "--out", micro / "packed", "--dtype", "float32", "--shard-size", "50")
    assert r.returncode == 0, r.stderr
    meta = json.loads((micro / "packed" / "pack.json").read_text())
    assert meta["max_abs_error_db"] == 0 and meta["shards"] == -(-meta["n"] // 50) and meta["landcover"]
    assert "0 dB" in r.stdout and f"{meta['n']} chips" in r.stdout
    from fusar_klip.evaluate import load_world
    a = load_world(micro, holdout=["Hamburg"])
    b = load_world(micro, holdout=["Hamburg"], chips=micro / "packed")
    assert a.chip_ids == b.chip_ids
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.landcover, b.landcover)
    r = run_cli("pack", micro / "chips", "--out", micro / "packed", "--dtype", "float16")
    assert r.returncode == 2 and "another pack" in r.stderr, r.stderr


def test_pack_refuses_bad_input(micro, tmp_path):
    r = run_cli("pack", tmp_path / "nochips", "--out", tmp_path / "p")
    assert r.returncode == 2 and "manifest.parquet: file not found" in r.stderr, r.stderr
    r = run_cli("pack", micro / "chips", "--out", micro / "chips")
    assert r.returncode == 2 and "--out must differ" in r.stderr, r.stderr
    r = run_cli("pack", micro / "chips", "--out", tmp_path / "p", "--shard-size", "0")
    assert r.returncode == 2 and "--shard-size" in r.stderr, r.stderr
