"""Chips per second the training DataLoader delivers: from a chip folder (one GeoTIFF per chip) and from packed
shards (`fusar-klip pack`), with 0 and N worker processes.

    python bench/bench_loader.py                          # a fresh micro world, batch 64, 0 and 2 workers
    python bench/bench_loader.py --data data/mini --workers 0 4 8
    python bench/bench_loader.py --step-ms 180            # also: how many GPU steps of 180 ms at this batch it can feed

What a training step consumes is batch / step time: at the `gpu` preset measure the step time with
`bench/bench_model.py --device cuda --bf16` (or the report's timings) and pass it as --step-ms. The loader should
deliver at least 5x that. Each figure is the median over --repeats passes of --batches batches, all in one run
(the machine is shared and noisy: quote ratios from one run).
"""
import argparse, statistics, tempfile, time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="world folder with chips/ and hcot/ (default: a fresh micro world)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8, help="batches per timed pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--step-ms", type=float, default=None, help="a GPU step's time in ms at this batch, to compare with")
    a = ap.parse_args()
    import torch
    from fusar_klip.data import ChipCaptionDataset, Collate, load_tokenizer, pack_chips
    data = a.data
    if data is None:
        from fusar_klip.train import micro_world
        data = micro_world(tempfile.mkdtemp(prefix="fk_bench_loader_"), split="train").root
    packed = data / "packed_bench"
    pack_chips(data / "chips", packed, progress=False)
    folder = ChipCaptionDataset(data / "chips", data / "hcot", split=None)
    shards = ChipCaptionDataset(packed, data / "hcot", split=None, stats=folder.stats)
    tok = load_tokenizer("corpus", [r.caption for r in folder.records[:2000]], 2000)
    collate = Collate(tok, 180)
    n = min(len(folder), a.batch * a.batches)
    print(f"{len(folder)} captions, batch {a.batch}, {n} items per pass, medians of {a.repeats} passes")
    rows = []
    for name, ds in (("chip folder", folder), ("packed shards", shards)):
        for w in a.workers:
            sub = torch.utils.data.Subset(ds, range(n))
            times = []
            for _ in range(a.repeats):
                dl = torch.utils.data.DataLoader(sub, batch_size=a.batch, collate_fn=collate, num_workers=w, shuffle=True)
                t0 = time.perf_counter()
                for _b in dl: pass
                times.append(time.perf_counter() - t0)
            rate = n / statistics.median(times)
            rows.append((name, w, rate))
            line = f"{name:14s} workers {w}: {rate:8.0f} chips/s"
            if a.step_ms: line += f"  = {rate / (a.batch / (a.step_ms / 1000)):.1f}x a {a.step_ms:g} ms step's consumption"
            print(line)
    base = {w: r for nm, w, r in rows if nm == "chip folder"}
    for nm, w, r in rows:
        if nm == "packed shards": print(f"packed / folder, workers {w}: {r / base[w]:.2f}x")


if __name__ == "__main__":
    main()
