#!/usr/bin/env python3
"""Fail when a report's headline figures are missing or not finite.

usage: python tools/check_report.py REPORT_DIR_OR_RESULTS_CSV [--models A,B,C] [--tasks t1,t2]

Every model named must have a finite value for every headline task (default: retrieval, itm, captioning, vqa, counting,
landcover, segmentation, detection), and no row of results.csv may hold NaN or inf. The report's own SCIO record
(scio.jsonl of each FUSAR-KLIP run) is checked by the report notebook itself."""
import argparse, math, sys
from pathlib import Path

import pandas as pd

MODELS = ("CLIP-style", "BLIP-style", "FUSAR-KLIP")
TASKS = ("retrieval", "itm", "captioning", "vqa", "counting", "landcover", "segmentation", "detection")


def problems(df: pd.DataFrame, models=MODELS, tasks=TASKS) -> list:
    "What is wrong with a results table, one line each (empty: the headline figures are all there and finite)."
    out = []
    if not {"task", "metric", "model", "value"} <= set(df.columns):
        return [f"results table lacks columns {sorted({'task', 'metric', 'model', 'value'} - set(df.columns))}"]
    vals = pd.to_numeric(df.value, errors="coerce")
    bad = df[~vals.map(lambda v: isinstance(v, float) and math.isfinite(v))]
    for r in bad.itertuples(): out.append(f"{r.model} / {r.task} / {r.metric}: value {r.value!r} is not a finite number")
    for m in models:
        for t in tasks:
            if not ((df.model == m) & (df.task == t) & vals.notna()).any(): out.append(f"{m} / {t}: no result")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", type=Path, help="report folder (with results.csv) or the results.csv itself")
    ap.add_argument("--models", default=",".join(MODELS)); ap.add_argument("--tasks", default=",".join(TASKS))
    a = ap.parse_args(argv)
    f = a.results / "results.csv" if a.results.is_dir() else a.results
    if not f.exists(): print(f"{f}: no results table -- did the report run?", file=sys.stderr); return 1
    bad = problems(pd.read_csv(f), a.models.split(","), a.tasks.split(","))
    for b in bad: print(f"{f}: {b}", file=sys.stderr)
    print(f"{f}: {'FAILED' if bad else 'ok'}: {len(bad)} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
