#!/usr/bin/env python
"""Benchmark: one KLIP pre-training step (ITC + ITM with hard negatives + keyword reconstruction) for a config.

Measured in one run, on whatever device is given (CPU threads as torch sets them):
  - dense-matmul peak FLOP/s (square fp32 matmuls; bf16 on CUDA with --bf16)
  - ms per training step (forward + backward + AdamW), median over --steps after --warmup
  - FLOPs per step counted by torch.utils.flop_counter, achieved FLOP/s and its fraction of the matmul peak
  - the analytic FLOP count of the configured losses, and how far the counted FLOPs are from it
  - the cost split (counted forward FLOPs) between vision, text, fusion (ITM), decoder and the momentum model
  - the anchor: transformers' BlipForImageTextRetrieval of the same widths doing ITC + ITM alone (two forward calls,
    the image encoded twice), samples/s and fraction of peak

    python bench/bench_model.py                      # tiny, batch 32, text length 96, CPU
    python bench/bench_model.py --device cuda --bf16 # on a GPU
"""
import argparse, json, statistics, time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def matmul_peak(dev, dtype, n=2048, reps=10):
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
    ap.add_argument("--no-anchor", action="store_true"); ap.add_argument("--json", default=None)
    a = ap.parse_args()
    from fusar_klip.data import load_tokenizer
    from fusar_klip.losses import KlipPretrain
    from fusar_klip.model import KlipConfig, KlipModel
    torch.manual_seed(0)
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.bf16 else torch.float32
    words = [f"w{i}" for i in range(a.vocab)]
    tok = load_tokenizer("corpus", [" ".join(words[i:i + 50]) for i in range(0, len(words), 5)] * 2, a.vocab + 10)
    cfg = KlipConfig.load(a.config); cfg.max_text_len = max(cfg.max_text_len, a.text_len)
    model = KlipModel(cfg, tok).to(dev)
    pre = KlipPretrain(model).train()
    V = len(tok)
    B, L = a.batch, a.text_len
    img = torch.randn(B, cfg.in_channels, cfg.image_size, cfg.image_size, device=dev)
    ids = torch.randint(10, V, (B, L), device=dev); ids[:, 0] = tok.cls_token_id; ids[:, -1] = tok.sep_token_id
    att = torch.ones_like(ids)
    kw = torch.rand(B, L, device=dev) < 0.15
    idx = torch.arange(B, device=dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.queue_filled.fill_(cfg.queue_size)                     # full queues, as in steady state

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            out = pre(img, ids, att, kw, idx)
        opt.zero_grad(set_to_none=True); out.total.backward(); opt.step()

    peak = matmul_peak(dev, dtype)
    ms = median_ms(step, dev, a.warmup, a.steps)
    flops = count_flops(step)
    ana, fwd, mom = analytic(cfg, B, L, V, model.cfg.weights)
    # counted forward FLOPs per component
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
        emb = model.image_embeds(img)
        parts = dict(vision=count_flops(lambda: model.image_features(model.image_embeds(img))),
                     text=count_flops(lambda: model.text_features(model.text_hidden(ids, att))),
                     fusion=count_flops(lambda: model.itm_logits(emb.repeat(3, 1, 1), ids.repeat(3, 1), att.repeat(3, 1))),
                     decoder=count_flops(lambda: model.decoder_logits(emb, ids, att)),
                     momentum=count_flops(lambda: (model.image_embeds(img, True), model.text_hidden(ids, att, True))))
    tot_parts = sum(parts.values())
    res = dict(config=a.config, device=str(dev), dtype=str(dtype), batch=B, text_len=L, vocab=V,
               matmul_peak_gflops=peak / 1e9, ms_per_step=ms, samples_per_s=B / (ms / 1e3),
               counted_gflop_per_step=flops / 1e9, analytic_gflop_per_step=ana / 1e9,
               counted_vs_analytic=flops / ana, achieved_gflops=flops / (ms / 1e3) / 1e9,
               fraction_of_peak=flops / (ms / 1e3) / peak,
               forward_split={k: round(v / tot_parts, 3) for k, v in parts.items()})
    print(f"matmul peak ({dtype}): {peak / 1e9:.1f} GFLOP/s on {dev}")
    print(f"KLIP {a.config} step (ITC+ITM+rec), batch {B}, text {L}: {ms:.0f} ms/step median of {a.steps}, "
          f"{res['samples_per_s']:.1f} samples/s")
    print(f"  counted {flops / 1e9:.1f} GFLOP/step vs analytic {ana / 1e9:.1f} ({res['counted_vs_analytic']:.3f}x); "
          f"achieved {res['achieved_gflops']:.1f} GFLOP/s = {res['fraction_of_peak']:.2f} of matmul peak")
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
        ams = median_ms(astep, dev, a.warmup, a.steps)
        af = count_flops(astep)
        res.update(anchor_ms_per_step=ams, anchor_samples_per_s=B / (ams / 1e3),
                   anchor_fraction_of_peak=af / (ams / 1e3) / peak, anchor_gflop_per_step=af / 1e9)
        print(f"anchor BlipForImageTextRetrieval ITC+ITM (two forward calls): {ams:.0f} ms/step, "
              f"{res['anchor_samples_per_s']:.1f} samples/s, {res['anchor_fraction_of_peak']:.2f} of matmul peak, "
              f"{af / 1e9:.1f} GFLOP/step")
        print(f"ratio KLIP / anchor samples/s: {res['samples_per_s'] / res['anchor_samples_per_s']:.2f} "
              f"(KLIP also runs the decoder, hard-negative ITM on 3B pairs and the momentum model)")
    if a.json: open(a.json, "w").write(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
