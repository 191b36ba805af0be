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
