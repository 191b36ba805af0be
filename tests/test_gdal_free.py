"The stages that do not touch rasters import without GDAL (rasterio, geopandas), as on a training-only GPU box."
import subprocess, sys

BLOCK = "import sys\nfor m in ('rasterio', 'geopandas', 'rioxarray', 'pyogrio', 'fiona'): sys.modules[m] = None\n"


def _run(code):
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True)


def test_training_stages_import_without_gdal():
    r = _run("import fusar_klip.core, fusar_klip.model, fusar_klip.losses, fusar_klip.scio, fusar_klip.data, "
             "fusar_klip.train\nprint('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_the_block_is_real():
    "The same block makes a raster import fail, so the test above can fail."
    r = _run("import rasterio")
    assert r.returncode != 0 and ("ModuleNotFoundError" in r.stderr or "ImportError" in r.stderr), r.stderr


def test_trains_from_packed_shards_without_gdal(tmp_path):
    "A world tiled and packed where GDAL is, then trained where it is not (as on a GPU box with the training extra)."
    from conftest import run_cli
    d = tmp_path / "w"
    r = run_cli("demo", "--world", "micro", "--out", d, "--workers", "1", "--train-steps", "0")
    assert r.returncode == 0, r.stderr
    r = run_cli("pack", d / "chips", "--out", tmp_path / "packed")
    assert r.returncode == 0, r.stderr
    code = ("from fusar_klip.train import TrainConfig, train\n"
            f"s = train(TrainConfig(data='{tmp_path / 'nowhere'}', chips='{tmp_path / 'packed'}', corpus='{d / 'hcot'}', "
            f"out='{tmp_path / 'run'}', mode='blip', layers=1, steps=3, batch_size=4, queue_size=16, log_every=1, "
            "progress=False, tensorboard=False))\nprint('steps', s['steps'])")
    r = _run(code)
    assert r.returncode == 0 and "steps 3" in r.stdout, r.stderr[-3000:]
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
