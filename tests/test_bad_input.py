"Bad input: every case gets an error that names the file and the problem (issue 2, section 6)."
import numpy as np
import pytest

from fusar_klip.geo import (SARFileNotFoundError, SARInputError, SceneChips, calibrate_radiometry, gf3_calibration, inspect_raster,
                            open_sar, read_display_chip, read_manifest, tile_scene, tile_scenes)


def expect(fn, *words, exc=SARInputError):
    with pytest.raises(exc) as ei: fn()
    for w in words: assert w in str(ei.value), f"{w!r} not in {ei.value}"
    return ei.value


def test_missing_file(fx, tmp_path):
    e = expect(lambda: open_sar(tmp_path / "S1_missing.tif"), "S1_missing.tif", "file not found", exc=FileNotFoundError)
    assert isinstance(e, SARFileNotFoundError)
    expect(lambda: tile_scene(tmp_path / "gone.tif", tmp_path / "c"), "gone.tif", "file not found")
    expect(lambda: read_manifest(tmp_path / "manifest.parquet"), "manifest.parquet", "file not found")


def test_not_a_raster(fx, tmp_path):
    expect(lambda: open_sar(fx["text"]), "notes_db.tif", "not a raster")
    expect(lambda: tile_scene(fx["text"], tmp_path), "notes_db.tif", "not a raster")
    expect(lambda: read_display_chip(fx["text"]), "notes_db.tif", "not an image")


def test_no_crs(fx, tmp_path):
    expect(lambda: open_sar(fx["nocrs"]), "nocrs_db.tif", "no CRS")
    expect(lambda: tile_scene(fx["nocrs"], tmp_path), "nocrs_db.tif", "no CRS")
    assert inspect_raster(fx["nocrs"], require_crs=False).crs is None


@pytest.mark.parametrize("name,where", [("nan", "row 192, col 192"), ("inf", "row 0, col 256")])
def test_nan_inf(fx, tmp_path, name, where):
    expect(lambda: tile_scene(fx[name], tmp_path / name, 64, progress=False), f"{name}_db.tif", "NaN/inf", where)
    rows, st = tile_scene(fx[name], tmp_path / f"{name}_ok", 64, nonfinite="nodata", progress=False)
    assert st.chips == len(rows) > 0


def test_inf_is_never_nodata_even_with_nan_nodata(tmp_path):
    from rasterio.transform import from_origin
    from fusar_klip.geo import write_raster
    a = np.zeros((1, 64, 64), "float32"); a[0, 0, 0] = np.nan; a[0, 5, 5] = np.inf
    f = write_raster(tmp_path / "nan_nodata.tif", a, "EPSG:32631", from_origin(0, 0, 1, 1), nodata=np.nan)
    expect(lambda: SceneChips(f, 64)[0], "nan_nodata.tif", "NaN/inf")
    b = a.copy(); b[0, 5, 5] = 0
    f2 = write_raster(tmp_path / "nan_nodata_ok.tif", b, "EPSG:32631", from_origin(0, 0, 1, 1), nodata=np.nan)
    assert int((~SceneChips(f2, 64)[0]["valid"]).sum()) == 1      # NaN is the declared nodata: masked, no error


def test_wrong_band_count(fx):
    expect(lambda: open_sar(fx["dual"], bands=1), "dual_db.tif", "2 band(s) but 1 were expected", "VV, VH")
    expect(lambda: SceneChips(fx["good"], 64, bands=2), "good_db.tif", "1 band(s) but 2 were expected")
    expect(lambda: open_sar(fx["dual"], band_names=["HH", "HV", "VV"]), "dual_db.tif", "3 band names given")


def test_chip_larger_than_scene(fx, tmp_path):
    expect(lambda: tile_scene(fx["small"], tmp_path, 64), "small_db.tif", "larger than the scene", "50 x 60")


def test_unknown_calibration(fx):
    expect(lambda: calibrate_radiometry(np.ones(3), "beta_nought_v7", source="scene.tif"), "scene.tif",
           "unknown calibration 'beta_nought_v7'", "db, linear, gf3, display")
    expect(lambda: gf3_calibration(fx["gf3_bad"]), "GF3_bad.meta.xml", "unknown calibration")
    expect(lambda: calibrate_radiometry(np.ones(3), "gf3", source="GF3_x.tiff"), "GF3_x.tiff", "qualify_value")
    cal = gf3_calibration(fx["gf3_xml"])
    assert list(cal) == ["HH"]       # HV is NULL in the product: absent, not zero
    np.testing.assert_allclose(calibrate_radiometry(np.array([32767.0]), "gf3", **cal["HH"]), [20 * np.log10(3.5) - 30.1], rtol=1e-5)


def test_all_nodata_chips_are_skipped_and_counted(fx, tmp_path):
    rows, st = tile_scene(fx["good"], tmp_path / "g", 64, progress=False)
    assert st.skipped_nodata == 2 and st.chips == 4 * 5 - 2 == len(rows)
    assert not (tmp_path / "g" / "good_db" / "good_db_r00000_c00000.tif").exists()
    rows, st = tile_scene(fx["allnodata"], tmp_path / "a", 64, progress=False)
    assert (st.chips, st.skipped_nodata, rows) == (0, 4, [])
    man, st = tile_scenes([dict(sar=fx["allnodata"]), dict(sar=fx["good"])], tmp_path / "m", 64, progress=False)
    assert st.skipped_nodata == 6 and len(man) == 18
    man, st = tile_scenes([dict(sar=fx["allnodata"]), dict(sar=fx["good"])], tmp_path / "m", 64, progress=False)
    assert (st.skipped_nodata, st.existing, st.written) == (6, 18, 0)     # counts survive a resumed run


def test_landcover_not_aligned(fx, tmp_path):
    expect(lambda: tile_scene(fx["good"], tmp_path, 64, landcover=fx["dual"]), "dual_db.tif", "1 were expected")
    expect(lambda: tile_scene(fx["dual"], tmp_path, 64, landcover=fx["landcover"]), "good_lc.tif", "not aligned")


# ---- issue 13: security, errors, wrong output with exit 0 (through the `fusar-klip` command) ----
import json, shutil

from conftest import run_cli


def _micro_world(tmp_path):
    "A two-scene micro world, made once per test that needs one (a few seconds)."
    w = tmp_path / "w"
    r = run_cli("synth", "--world", "micro", "--out", w, "--workers", "1")
    assert r.returncode == 0, r.stderr
    return w


def test_index_cannot_write_or_read_outside(tmp_path):
    w = _micro_world(tmp_path)
    index = json.loads((w / "index.json").read_text())
    for key, val, words in [("scene_id", "../../X", ["scene_id", "cannot be used as a file name"]),
                            ("sar", "/etc/passwd", ["'sar'", "not a relative path"]),
                            ("targets", "../../../x.geojson", ["'targets'", "leaves the folder"])]:
        evil = json.loads(json.dumps(index)); evil["scenes"][0][key] = val
        (w / "index.json").write_text(json.dumps(evil))
        out = tmp_path / "deep" / "er" / "chips"
        r = run_cli("tile", w, "--out", out, "--size", "64")
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert "index.json" in r.stderr and all(x in r.stderr for x in words), r.stderr
        assert not list(tmp_path.glob("deep/X*")) and not list(tmp_path.glob("X*")), "wrote outside --out"


def test_manifest_paths_stay_inside(fx, tmp_path):
    r = run_cli("tile", fx["good"], "--out", tmp_path / "c", "--size", "64")
    assert r.returncode == 0, r.stderr
    man = read_manifest(tmp_path / "c" / "manifest.parquet")
    for col, val in [("path", "/etc/passwd"), ("path", "../../x.tif"), ("landcover_path", "/etc/shadow")]:
        evil = man.copy(); evil[col] = evil[col].astype(object); evil.loc[0, col] = val
        evil.to_parquet(tmp_path / "c" / "manifest.parquet")
        r = run_cli("annotate", "--chips", tmp_path / "c", "--out", tmp_path / "h")
        assert r.returncode == 2 and f"manifest column '{col}'" in r.stderr and repr(val) in r.stderr, r.stderr


def test_same_file_name_two_folders_and_truncated_chip(fx, tmp_path):
    for d in "ab": (tmp_path / d).mkdir(); shutil.copy(fx["good"], tmp_path / d / "scene.tif")
    r = run_cli("tile", tmp_path / "a" / "scene.tif", tmp_path / "b" / "scene.tif", "--out", tmp_path / "c", "--size", "64")
    assert r.returncode == 0, r.stderr
    man = read_manifest(tmp_path / "c" / "manifest.parquet")
    assert man.scene_id.nunique() == 2 and man.chip_id.is_unique and len(man) == 2 * 18
    chip = tmp_path / "c" / man.path.iloc[3]
    chip.write_bytes(chip.read_bytes()[:700])                       # a chip cut short (disk full, bad copy)
    r = run_cli("tile", tmp_path / "a" / "scene.tif", tmp_path / "b" / "scene.tif", "--out", tmp_path / "c", "--size", "64")
    assert r.returncode == 0 and "1 damaged and rewritten" in r.stdout, r.stdout + r.stderr
    from fusar_klip.geo import chip_ok
    assert chip_ok(chip, 64)


def test_all_nodata_input_says_zero_chips(fx, tmp_path):
    r = run_cli("tile", fx["allnodata"], "--out", tmp_path / "c", "--size", "64")
    assert r.returncode == 0 and "0 chips" in r.stdout and "no chips" in r.stderr, r.stdout + r.stderr
    man = read_manifest(tmp_path / "c" / "manifest.parquet", nonempty=False)
    assert len(man) == 0 and {"chip_id", "path", "split", "lon", "lat"} <= set(man.columns)
    r = run_cli("annotate", "--chips", tmp_path / "c", "--out", tmp_path / "h")
    assert r.returncode == 2 and "has 0 chips" in r.stderr and "No objects" not in r.stderr, r.stderr


@pytest.mark.parametrize("name,arr,words", [("rgb", np.ones((3, 64, 64), "uint8"), ["uint8", "RGB picture"]),
                                            ("slc", np.ones((1, 64, 64), "complex64"), ["complex", "SLC"])])
def test_not_backscatter_is_refused(tmp_path, name, arr, words):
    from rasterio.transform import from_origin
    from fusar_klip.geo import write_raster
    f = write_raster(tmp_path / f"{name}.tif", arr, "EPSG:32631", from_origin(500_000, 4_600_000, 10, 10))
    r = run_cli("tile", f, "--out", tmp_path / "c", "--size", "32")
    assert r.returncode == 2 and f"{name}.tif" in r.stderr and all(w in r.stderr for w in words), r.stderr


@pytest.mark.parametrize("argv,words", [(["annotate", "--batch", "0"], ["--batch", ">= 1"]),
                                        (["synth", "--scale", "inf"], ["--scale", "finite"]),
                                        (["tile", "x.tif", "--min-valid", "2"], ["--min-valid", "[0, 1]"]),
                                        (["annotate", "--noise", "-0.5"], ["--noise", "[0, 1]"]),
                                        (["annotate", "--variants", "0"], ["--variants"])])
def test_bad_option_values_are_refused(argv, words):
    r = run_cli(*argv)
    assert r.returncode == 2 and "Traceback" not in r.stderr and all(w in r.stderr for w in words), r.stderr


def test_unwritable_output_fails_before_work(fx, tmp_path):
    (tmp_path / "file").write_text("x")
    r = run_cli("tile", fx["good"], "--out", tmp_path / "file", "--size", "64")
    assert r.returncode == 2 and "--out is a file" in r.stderr, r.stderr
    r = run_cli("synth", "--world", "micro", "--out", tmp_path / "file" / "sub")
    assert r.returncode == 2 and "--out cannot be written" in r.stderr, r.stderr
