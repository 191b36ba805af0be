"Real SAR data from ../shared/data: skipped with a message when the folder is absent (as in a user's clone)."
import numpy as np
import pytest

from fusar_klip.geo import inspect_raster, open_sar, read_display_chip, tile_scene, rows_to_manifest

S1 = "sentinel1/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"


def test_sentinel1_tile(shared_data, tmp_path):
    f = shared_data / S1
    if not f.exists(): pytest.skip(f"{f} not found")
    info = inspect_raster(f, bands=1)
    assert (info.crs.to_epsg(), info.nodata, info.width, info.height, info.res) == (32631, -99.0, 268, 217, (20.0, 20.0))
    da = open_sar(f)
    p = np.percentile(da.values[da.values != -99], [1, 50, 99])
    np.testing.assert_allclose(p, [-22.9, -11.0, -4.0], atol=0.15)     # the README's published percentiles
    rows, st = tile_scene(f, tmp_path, size=64, stride=32, progress=False)
    m = rows_to_manifest(rows)
    assert st.chips == len(m) > 0
    assert 4.4 < m.lon.mean() < 4.7 and 43.5 < m.lat.mean() < 43.7      # the Camargue, southern France


def test_mstar_display_chips(shared_data):
    d = shared_data / "MSTAR-10" / "train"
    if not d.exists(): pytest.skip(f"{d} not found")
    classes = sorted(p.name for p in d.iterdir() if p.is_dir())
    assert len(classes) == 10
    for c in classes:
        f = next(iter(sorted((d / c).iterdir())))
        img = read_display_chip(f, 128)
        assert img.shape == (128, 128) and 0 <= img.min() and img.max() <= 1 and img.std() > 0


def test_mstar_class_folders(shared_data):
    from fusar_klip.evaluate import read_class_folders, load_class_folders, PixelStatsEncoder, PixelsEncoder, evaluate
    d = shared_data / "MSTAR-10"
    if not d.exists(): pytest.skip(f"{d} not found")
    info = read_class_folders(d)
    assert len(info["classes"]) == 10
    assert (len(info["splits"]["train"][0]), len(info["splits"]["test"][0])) == (2746, 2425)   # the README's counts
    D = load_class_folders(d, max_per_class=20)
    assert D.images["train"].shape == (200, 1, 128, 128) and D.images["test"].shape == (200, 1, 128, 128)
    df = evaluate(PixelStatsEncoder(), "mstar", mstar=D, progress=False)
    top1 = df[df.metric == "top1"].value.item()
    assert 10 < top1 <= 100          # 10 classes: above chance with pixel statistics
    # the raw-pixels floor sees the targets' outlines: far above the statistics (58% vs 26% at 20 chips a class)
    dp = evaluate(PixelsEncoder(), "mstar", mstar=D, progress=False)
    probe = dp[dp.metric == "top1"].iloc[0]
    assert probe.value > max(40, top1 + 15), (probe.value, top1)
    assert probe.chosen.startswith(("cls pca=", "mean pca=", "both pca=", "tokens pca=")) and "(3-fold val " in probe.chosen
