#!/usr/bin/env python
"""What an image-only term costs: a pre-training step (ITC + ITM + keyword reconstruction) with and without masked
image modelling (`--term mim`, `TrainConfig.mim`) or SimCLR (`--term simclr`, `TrainConfig.simclr`), on the same model,
batch and device.

    python bench/bench_mim.py                                  # tiny preset cut to 2+2 layers, batch 16, text 160, CPU
    python bench/bench_mim.py --term simclr                    # the same for SimCLR
    python bench/bench_mim.py --layers 0 --device cuda --bf16  # the full tiny preset on a GPU

The two variants take turns step by step (forward + backward + AdamW), so that a drift in machine load hits both
alike; it prints the median ms per step of each over --steps after --warmup, and their ratio (the figure to quote:
the machine is shared and noisy). MIM runs the vision encoder once more, on the masked chips, plus a linear head;
SimCLR runs it on two augmented views of every chip, plus a small head.
"""
import argparse, statistics, time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny", help="model preset or JSON")
    ap.add_argument("--layers", type=int, default=2, help="vision and text depth (0: the preset's)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--text-len", type=int, default=160)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--term", choices=("mim", "simclr"), default="mim", help="the image-only term to time")
    a = ap.parse_args()
    if min(a.batch, a.text_len, a.steps) < 1 or a.warmup < 0 or a.layers < 0: ap.error("sizes must be positive")
    from fusar_klip.losses import KlipPretrain
    from fusar_klip.model import KlipConfig, KlipModel
    from bench_model import synthetic_batch, synthetic_tokenizer     # the same made-up batch as bench_model.py
    dev = torch.device(a.device)
    tok = synthetic_tokenizer(740)
    cfg = KlipConfig.load(a.config)
    if a.layers: cfg.vision_layers = cfg.text_layers = a.layers
    cfg.max_text_len = max(cfg.max_text_len, a.text_len)
    T = a.term
    cfg.weights = dict(cfg.weights, **{T: 1.0})
    torch.manual_seed(0)
    model = KlipModel(cfg, tok).to(dev)                                  # one model; the variants differ in the weights
    B, L = a.batch, a.text_len
    img, ids, att, kw, idx = synthetic_batch(cfg, tok, B, L, dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    base = {k: v for k, v in cfg.weights.items() if k != T}
    variants = {f"without {T}": KlipPretrain(model, base).train(), f"with {T}": KlipPretrain(model, cfg.weights).train()}

    def step(pre):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16): out = pre(img, ids, att, kw, idx)
        opt.zero_grad(set_to_none=True); out.total.backward(); opt.step()
        if dev.type == "cuda": torch.cuda.synchronize()

    for pre in variants.values():
        for _ in range(a.warmup): step(pre)
    ts = {k: [] for k in variants}
    for _ in range(a.steps):
        for k, pre in variants.items():
            t = time.perf_counter(); step(pre); ts[k].append(time.perf_counter() - t)
    ms = {k: statistics.median(v) * 1e3 for k, v in ts.items()}
    print(f"{cfg.name} ({cfg.vision_layers}+{cfg.text_layers} layers), batch {B}, text {L}, {dev}{' bf16' if a.bf16 else ''}, "
          f"median of {a.steps} steps after {a.warmup}:")
    for k, v in ms.items(): print(f"  {k:12s} {v:8.1f} ms per step")
    print(f"  with / without {T}: {ms[f'with {T}'] / ms[f'without {T}']:.2f}x")


if __name__ == "__main__":
    main()
