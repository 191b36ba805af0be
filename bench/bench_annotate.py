#!/usr/bin/env python
"""Benchmark: HCoT annotation throughput on one core.

  end-to-end   facts (land-cover chip read, zonal statistics, targets) + template captions (3 variants) + L5,
               as `fusar-klip annotate` does it, per chip
  rendering    template captions + L5 alone, on facts already in memory

Targets (issue 3): >= 500 chips/s/core end to end and >= 5,000 chips/s rendering.

    python bench/bench_annotate.py --chips data/mini/chips --world data/mini/scenes   # after `make demo`
"""
import argparse, json, os, statistics, time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chips", type=Path, default=Path("data/mini/chips"))
    ap.add_argument("--world", type=Path, default=Path("data/mini/scenes"))
    ap.add_argument("--n", type=int, default=1000, help="chips per measurement")
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from fusar_klip.facts import manifest_facts, scene_layers
    from fusar_klip.geo import read_manifest
    from fusar_klip.hcot import annotate_chip
    man = read_manifest(a.chips / "manifest.parquet").sort_values("chip_id").head(a.n)
    layers = scene_layers(a.chips, a.world)
    e2e, render = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        facts = manifest_facts(man, a.chips, layers, progress=False)
        t1 = time.perf_counter()
        for f in facts: annotate_chip(f, variants=a.variants)
        t2 = time.perf_counter()
        e2e.append(len(man) / (t2 - t0)); render.append(len(man) / (t2 - t1))
        facts_rate = len(man) / (t1 - t0)
    print(f"{len(man)} chips, {a.variants} variants, median of {a.repeats}:")
    print(f"  end to end (facts + captions + L5): {statistics.median(e2e):8.0f} chips/s/core   (target >= 500)")
    print(f"  facts alone (last run):             {facts_rate:8.0f} chips/s/core")
    print(f"  rendering (captions + L5):          {statistics.median(render):8.0f} chips/s/core   (target >= 5,000)")
    print(f"  1M chips on 16 cores, end to end:   {1e6 / (16 * statistics.median(e2e)) / 60:8.1f} min")


if __name__ == "__main__":
    main()
