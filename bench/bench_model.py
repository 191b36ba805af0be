#!/usr/bin/env python
"""Benchmark: one KLIP pre-training step (ITC + ITM with hard negatives + keyword reconstruction) for a config.

Measured in one run, on whatever device is given (CPU threads as torch sets them):
  - dense-matmul peak FLOP/s: square matmuls of --peak-n (default 8192 on CUDA, where 2048 understates an H100/H200,
    and 1024 on CPU), fp32, or bf16 with --bf16
  - per attention kernel in --attn (sdpa: torch's fused scaled_dot_product_attention; eager: transformers' matmul +
    softmax), optionally under torch.compile: ms per training step (forward + backward + AdamW), median over --steps
    after --warmup (the variants take turns step by step), achieved TFLOP/s and % of the matmul peak, and each
    kernel's speed-up over the last one listed
  - FLOPs per step counted by torch.utils.flop_counter (with eager attention, whose matmuls it sees on every device:
    the work is the same whichever kernel does it), the analytic FLOP count of the configured losses, and how far the
    counted FLOPs are from it
  - the cost split (counted forward FLOPs) between vision, text, fusion (ITM), decoder and the momentum model
  - the anchor: transformers' BlipForImageTextRetrieval of the same widths (attention as the first --attn) doing ITC +
    ITM alone (two forward calls, the image encoded twice), samples/s and fraction of peak

    python bench/bench_model.py --attn sdpa,eager                 # tiny, batch 32, text length 96, CPU
    python bench/bench_model.py --config base --batch 64 --device cuda --bf16 --attn sdpa,eager   # on a GPU
"""
import argparse, json, statistics, time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def synthetic_tokenizer(vocab:int):
    "A corpus tokenizer of `vocab` made-up words (w0, w1, ...): the benchmarks time shapes, not language."
    from fusar_klip.data import load_tokenizer
    words = [f"w{i}" for i in range(vocab)]
    return load_tokenizer("corpus", [" ".join(words[i:i + 50]) for i in range(0, len(words), 5)] * 2, vocab + 10)


def synthetic_batch(cfg, tok, B:int, L:int, dev):
    "One random pre-training batch for `cfg`: (images, input ids, attention mask, keyword mask, chip index)."
    img = torch.randn(B, cfg.in_channels, cfg.image_size, cfg.image_size, device=dev)
    ids = torch.randint(10, len(tok), (B, L), device=dev); ids[:, 0] = tok.cls_token_id; ids[:, -1] = tok.sep_token_id
    return img, ids, torch.ones_like(ids), torch.rand(B, L, device=dev) < 0.15, torch.arange(B, device=dev)


def matmul_peak(dev, dtype, n=None, reps=10):
    "Dense-matmul FLOP/s: the median of `reps` (n, n) @ (n, n) products (n: 8192 on CUDA, 1024 elsewhere)."
    n = n or (8192 if dev.type == "cuda" else 1024)
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3): a @ b
    sync(dev); ts = []
    for _ in range(reps):
        t = time.perf_counter(); a @ b; sync(dev); ts.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(ts)


def median_ms(fn, dev, warmup, steps):
    "Median wall time of `fn` in ms over `steps` calls after `warmup` calls."
    for _ in range(warmup): fn()
    ts = []
    for _ in range(steps):
        sync(dev); t = time.perf_counter(); fn(); sync(dev); ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def median_ms_interleaved(variants, dev, warmup, steps):
    """Median wall time in ms of each (setup, fn) variant: after `warmup` calls each, `steps` rounds that call every
    variant once (after its untimed `setup`), so that a drift in machine load hits all variants alike."""
    for setup, fn in variants:
        setup()
        for _ in range(warmup): fn()
    ts = [[] for _ in variants]
    for _ in range(steps):
        for t, (setup, fn) in zip(ts, variants):
            setup(); sync(dev); t0 = time.perf_counter(); fn(); sync(dev); t.append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in ts]


def count_flops(fn):
    with FlopCounterMode(display=False) as fc: fn()
    return fc.get_total_flops()


def transformer_flops(n, d, m, layers, cross_n=0, cross_d=0):
    "Forward FLOPs of `layers` transformer layers on n tokens of width d (MLP m), with optional cross-attention."
    per = 8 * n * d * d + 4 * n * n * d + 4 * n * d * m
    if cross_n: per += 4 * n * d * d + 4 * cross_n * cross_d * d + 4 * n * cross_n * d
    return layers * per


def analytic(cfg, B, L, V, weights):
    "Analytic FLOPs of one step: forward + backward (2x forward) for trained parts, forward only for the momentum model."
    n_img = (cfg.image_size // cfg.patch_size) ** 2 + 1
    patch = 2 * B * (n_img - 1) * cfg.in_channels * cfg.patch_size ** 2 * cfg.vision_width
    vis = B * transformer_flops(n_img, cfg.vision_width, cfg.vision_mlp, cfg.vision_layers) + patch
    txt = B * transformer_flops(L, cfg.text_width, cfg.text_mlp, cfg.text_layers)
    proj = 2 * B * (cfg.vision_width + cfg.text_width) * cfg.embed_dim
    fus = 3 * B * transformer_flops(L, cfg.text_width, cfg.text_mlp, cfg.text_layers, n_img, cfg.vision_width) \
        + 3 * B * 2 * cfg.text_width * 2
    dec = B * transformer_flops(L, cfg.text_width, cfg.text_mlp, cfg.text_layers, n_img, cfg.vision_width) \
        + B * L * 2 * cfg.text_width * (cfg.text_width + V)      # LM head: transform + vocabulary projection
    G, Q = B, cfg.queue_size
    itc = 2 * 2 * B * (G + Q) * cfg.embed_dim * 2                 # online and momentum similarities, both directions
    fwd = dict(vision=vis, text=txt + proj, fusion=fus if weights.get("itm") else 0, decoder=dec if weights.get("rec") else 0)
    mom = vis + txt + proj
    total = 3 * sum(fwd.values()) + mom + itc
    return total, fwd, mom


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny"); ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--text-len", type=int, default=96); ap.add_argument("--vocab", type=int, default=740)
    ap.add_argument("--steps", type=int, default=8); ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu"); ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--attn", default="sdpa", help="attention kernels to time, comma-separated: sdpa, eager")
    ap.add_argument("--compile", action="store_true", help="also time each kernel with the loss forward under torch.compile")
    ap.add_argument("--peak-n", type=int, default=None, help="matmul size for the peak (default 8192 on CUDA, 1024 else)")
    ap.add_argument("--no-anchor", action="store_true"); ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from fusar_klip.losses import KlipPretrain
    from fusar_klip.model import ATTN_IMPLS, KlipConfig, KlipModel, set_attention
    attns = [x.strip() for x in a.attn.split(",") if x.strip()]
    bad = [x for x in attns if x not in ATTN_IMPLS]
    if bad or not attns: ap.error(f"--attn: {', '.join(bad) or 'empty'} -- use {', '.join(ATTN_IMPLS)}")
    torch.manual_seed(0)
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.bf16 else torch.float32
    tok = synthetic_tokenizer(a.vocab)
    cfg = KlipConfig.load(a.config); cfg.max_text_len = max(cfg.max_text_len, a.text_len)
    model = KlipModel(cfg, tok).to(dev)
    pre = KlipPretrain(model).train()
    V = len(tok)
    B, L = a.batch, a.text_len
    img, ids, att, kw, idx = synthetic_batch(cfg, tok, B, L, dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.queue_filled.fill_(cfg.queue_size)                     # full queues, as in steady state

    def make_step(fwd):
        def step():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
                out = fwd(img, ids, att, kw, idx)
            opt.zero_grad(set_to_none=True); out.total.backward(); opt.step()
        return step

    peak = matmul_peak(dev, dtype, a.peak_n)
    model.set_attn("eager")                                      # FlopCounterMode sees eager's matmuls on every device
    flops = count_flops(make_step(pre))
    ana, fwd, mom = analytic(cfg, B, L, V, model.cfg.weights)
    step, cstep = make_step(pre), (make_step(torch.compile(pre)) if a.compile else None)
    variants = [(attn, comp) for attn in attns for comp in ([False, True] if a.compile else [False])]
    mss = median_ms_interleaved([(lambda attn=attn: model.set_attn(attn), cstep if comp else step)
                                 for attn, comp in variants], dev, a.warmup + 2 * a.compile, a.steps)
    runs = [dict(attn=attn, compile=comp, ms_per_step=ms, samples_per_s=B / (ms / 1e3),
                 achieved_tflops=flops / (ms / 1e3) / 1e12, fraction_of_peak=flops / (ms / 1e3) / peak)
            for (attn, comp), ms in zip(variants, mss)]
    # counted forward FLOPs per component (eager attention, as above)
    model.set_attn("eager")
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
        emb = model.image_embeds(img)
        parts = dict(vision=count_flops(lambda: model.image_features(model.image_embeds(img))),
                     text=count_flops(lambda: model.text_features(model.text_hidden(ids, att))),
                     fusion=count_flops(lambda: model.itm_logits(emb.repeat(3, 1, 1), ids.repeat(3, 1), att.repeat(3, 1))),
                     decoder=count_flops(lambda: model.decoder_logits(emb, ids, att)),
                     momentum=count_flops(lambda: (model.image_embeds(img, True), model.text_hidden(ids, att, True))))
    model.set_attn(attns[0])
    tot_parts = sum(parts.values())
    first = runs[0]
    res = dict(config=a.config, device=str(dev), dtype=str(dtype), batch=B, text_len=L, vocab=V,
               matmul_peak_gflops=peak / 1e9, matmul_peak_n=a.peak_n or (8192 if dev.type == "cuda" else 1024),
               attn=first["attn"], ms_per_step=first["ms_per_step"], samples_per_s=first["samples_per_s"],
               counted_gflop_per_step=flops / 1e9, analytic_gflop_per_step=ana / 1e9,
               counted_vs_analytic=flops / ana, achieved_gflops=flops / (first["ms_per_step"] / 1e3) / 1e9,
               fraction_of_peak=first["fraction_of_peak"], runs=runs,
               forward_split={k: round(v / tot_parts, 3) for k, v in parts.items()})
    print(f"matmul peak ({dtype}, {res['matmul_peak_n']}^3): {peak / 1e12:.3g} TFLOP/s on {dev}")
    print(f"KLIP {a.config} step (ITC+ITM+rec), batch {B}, text {L}: counted {flops / 1e9:.1f} GFLOP/step "
          f"vs analytic {ana / 1e9:.1f} ({res['counted_vs_analytic']:.3f}x); median of {a.steps} steps")
    print(f"  {'attn':6} {'compile':7} {'ms/step':>9} {'samples/s':>10} {'TFLOP/s':>9} {'% of peak':>9}")
    for r in runs:
        print(f"  {r['attn']:6} {'yes' if r['compile'] else 'no':7} {r['ms_per_step']:9.1f} {r['samples_per_s']:10.1f} "
              f"{r['achieved_tflops']:9.3g} {100 * r['fraction_of_peak']:8.1f}%")
    base = {r["compile"]: r for r in runs if r["attn"] == runs[-1]["attn"]}
    for r in runs:
        if r["attn"] != runs[-1]["attn"]:
            r["speedup"] = base[r["compile"]]["ms_per_step"] / r["ms_per_step"]
            print(f"  speed-up {r['attn']} / {runs[-1]['attn']}{' (compiled)' if r['compile'] else ''}: "
                  f"{r['speedup']:.2f}x (ms/step ratio)")
    print(f"  forward FLOP split: {res['forward_split']}")
    if not a.no_anchor:
        from transformers import BlipConfig, BlipForImageTextRetrieval
        bc = BlipConfig(vision_config=dict(hidden_size=cfg.vision_width, num_hidden_layers=cfg.vision_layers,
                                           num_attention_heads=cfg.vision_heads, intermediate_size=cfg.vision_mlp,
                                           image_size=cfg.image_size, patch_size=cfg.patch_size),
                        text_config=dict(vocab_size=V, hidden_size=cfg.text_width, num_hidden_layers=cfg.text_layers,
                                         num_attention_heads=cfg.text_heads, intermediate_size=cfg.text_mlp,
                                         encoder_hidden_size=cfg.vision_width, max_position_embeddings=max(L, 32)),
                        projection_dim=cfg.embed_dim, image_text_hidden_size=cfg.embed_dim)
        hf = BlipForImageTextRetrieval(bc).to(dev).train()
        hopt = torch.optim.AdamW(hf.parameters(), lr=1e-4)
        px = img.repeat(1, 3, 1, 1) if cfg.in_channels == 1 else img[:, :1].repeat(1, 3, 1, 1)
        labels = torch.ones(B, dtype=torch.long, device=dev)

        def astep():
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
                sim = hf(input_ids=ids, attention_mask=att, pixel_values=px, use_itm_head=False).itm_score / 0.07
                itc = F.cross_entropy(sim, torch.arange(B, device=dev))
                itm = F.cross_entropy(hf(input_ids=ids, attention_mask=att, pixel_values=px, use_itm_head=True).itm_score, labels)
            hopt.zero_grad(set_to_none=True); (itc + itm).backward(); hopt.step()
        af = count_flops(astep)                                  # eager attention (transformers' own), as for KLIP
        set_attention(hf, attns[0])
        ams = median_ms(astep, dev, a.warmup, a.steps)
        res.update(anchor_attn=attns[0], anchor_ms_per_step=ams, anchor_samples_per_s=B / (ams / 1e3),
                   anchor_fraction_of_peak=af / (ams / 1e3) / peak, anchor_gflop_per_step=af / 1e9)
        print(f"anchor BlipForImageTextRetrieval ITC+ITM (two forward calls, {attns[0]}): {ams:.0f} ms/step, "
              f"{res['anchor_samples_per_s']:.1f} samples/s, {100 * res['anchor_fraction_of_peak']:.1f}% of matmul peak, "
              f"{af / 1e9:.1f} GFLOP/step")
        print(f"ratio KLIP / anchor samples/s ({attns[0]}): {res['samples_per_s'] / res['anchor_samples_per_s']:.2f} "
              f"(KLIP also runs the decoder, hard-negative ITM on 3B pairs and the momentum model)")
    if a.json: open(a.json, "w").write(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
