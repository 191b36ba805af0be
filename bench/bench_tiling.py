#!/usr/bin/env python
"""Benchmark: chips per second and peak memory for cutting chips out of a SAR scene on disk.

Methods, each run in a fresh process so its peak memory is its own:
  window  fusar_klip.geo.SceneChips[i]: read every chip by its own window (random access, what a loader does)
  strip   iter(fusar_klip.geo.SceneChips): read one strip of chip rows at a time and cut it (sequential access)
  tile    fusar_klip.geo.tile_scene: read by window and write every chip as a GeoTIFF (what `fusar-klip tile` does)
  whole   reference: read the whole scene into memory, then slice the chips out of the array

torchgeo's RasterDataset + GridGeoSampler would be the natural reference, but torchgeo needs torchvision, which does
not install beside the CPU torch this project pins; the read-whole-then-slice loop stands in for it.

    python bench/bench_tiling.py                         # scenes of 2048, 4096 and 8192 px, 3 repeats
    python bench/bench_tiling.py --sizes 1024 --repeats 1 # smoke
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np


def make_scene(path: Path, n: int):
    "A float32 dB scene of n x n px, written in 1024-row strips so making it needs little memory."
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    profile = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", crs="EPSG:32631", nodata=-99.0,
                   transform=from_origin(500_000, 4_600_000, 3, 3), tiled=True, blockxsize=256, blockysize=256)
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for r in range(0, n, 1024):
            h = min(1024, n - r)
            dst.write(rng.normal(-12, 3, (1, h, n)).astype("float32"), window=Window(0, r, n, h))


def _rss_kib(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key): return int(line.split()[1])


def worker(method: str, scene: str, size: int, out: str) -> dict:
    "Run one method once; return chips, seconds and peak RSS growth (MiB) over the state after imports."
    import rasterio
    from fusar_klip.geo import SceneChips, tile_scene
    Path("/proc/self/clear_refs").write_text("5")      # reset the peak (VmHWM) to the current RSS
    base = _rss_kib("VmRSS:")
    t0 = time.perf_counter()
    if method == "window":
        ds = SceneChips(scene, size)
        n = 0
        for i in range(len(ds)):
            s = ds[i]; n += 1
            s["valid"].mean()
        ds.close()
    elif method == "strip":
        ds = SceneChips(scene, size)
        n = 0
        for s in ds:
            s["valid"].mean(); n += 1
        ds.close()
    elif method == "tile":
        rows, st = tile_scene(scene, out, size, progress=False)
        n = st.chips
    elif method == "whole":
        with rasterio.open(scene) as src:
            img, nodata = src.read(out_dtype="float32"), src.nodata
        n = 0
        for r in range(0, img.shape[1] - size + 1, size):
            for c in range(0, img.shape[2] - size + 1, size):
                chip = img[:, r:r + size, c:c + size].copy()
                (np.isfinite(chip) & (chip != nodata)).all(0).mean(); n += 1
    else: raise ValueError(method)
    dt = time.perf_counter() - t0
    peak = _rss_kib("VmHWM:")
    return dict(method=method, chips=n, seconds=dt, chips_per_s=n / dt, peak_mib=(peak - base) / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192], help="scene sizes in pixels")
    ap.add_argument("--chip", type=int, default=128, help="chip size in pixels")
    ap.add_argument("--repeats", type=int, default=3, help="runs per method and size; the median is reported")
    ap.add_argument("--methods", nargs="+", default=["window", "strip", "tile", "whole"])
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--worker", nargs=4, metavar=("METHOD", "SCENE", "CHIP", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], a.worker[1], int(a.worker[2]), a.worker[3]))); return
    results = []
    with tempfile.TemporaryDirectory(prefix="fk_bench_") as tmp:
        for n in a.sizes:
            scene = Path(tmp) / f"scene_{n}.tif"
            make_scene(scene, n)
            for m in a.methods:
                runs = []
                for k in range(a.repeats):
                    out = Path(tmp) / f"chips_{n}_{m}_{k}"
                    r = subprocess.run([sys.executable, __file__, "--worker", m, str(scene), str(a.chip), str(out)],
                                       capture_output=True, text=True, check=True)
                    runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
                    subprocess.run(["rm", "-rf", str(out)])
                res = dict(scene_px=n, scene_mib=n * n * 4 / 2**20, method=m, chips=runs[0]["chips"],
                           chips_per_s=statistics.median(x["chips_per_s"] for x in runs),
                           peak_mib=statistics.median(x["peak_mib"] for x in runs), repeats=a.repeats)
                results.append(res)
                print(f"scene {n:>5} px ({res['scene_mib']:6.0f} MiB)  {m:6s}  {res['chips']:>5} chips  "
                      f"{res['chips_per_s']:8.0f} chips/s  peak +{res['peak_mib']:7.1f} MiB", flush=True)
            scene.unlink()
    print("\nratios (median chips/s), same run:")
    for n in a.sizes:
        by = {r["method"]: r for r in results if r["scene_px"] == n}
        if "whole" in by:
            line = ", ".join(f"{m}/whole = {by[m]['chips_per_s'] / by['whole']['chips_per_s']:.2f}x"
                             for m in by if m != "whole")
            print(f"  {n} px: {line}")
    print(f"target: >= {20 * 90} chips/s (20x the ~90 chips/s a tiny training step consumes)")
    if a.json: a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
