"""Cost of a SCIO training step by phase: A (learn), B (screen), C (proofread), for both screening criteria.

    python bench/bench_scio.py                      # tiny preset cut to 2+2 layers, batch 16, on a micro world
    python bench/bench_scio.py --layers 0 --steps 8 # the full tiny preset
    python bench/bench_scio.py --device cuda

Each step is what `fusar_klip.train.train` does: (phases B, C) screen / proofread the batch's captions with the
current model, re-tokenise, then forward + backward + AdamW. Medians over `--steps` steps after `--warmup`, all in one
process; the ratios B/A and C/A are the figures to quote (the machine is shared and noisy).
"""
import argparse, random, statistics, tempfile, time
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="world folder with chips/ and hcot/ (default: a fresh micro world)")
    ap.add_argument("--layers", type=int, default=2, help="vision and text depth (0: the tiny preset's)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--corpus", type=int, default=512, help="captions in the timed end-of-round corpus pass")
    ap.add_argument("--candidates", default="closed",
                    help="proofreading candidate sources for the decoder runs, e.g. 'closed' (default) or "
                         "'closed,corpus,generated' (open-vocabulary SCIO)")
    a = ap.parse_args()
    from fusar_klip.data import ChipCaptionDataset, Collate, encode_captions, load_tokenizer
    from fusar_klip.hcot import read_corpus, annotate_corpus
    from fusar_klip.model import KlipConfig, KlipModel
    from fusar_klip.losses import KlipPretrain
    from fusar_klip.scio import ScioConfig
    from fusar_klip.train import micro_world, phase_records
    data = a.data
    if data is None:
        data = micro_world(tempfile.mkdtemp(prefix="fk_bench_scio_"), "hcot_noisy", variants=3, noise=0.3).root
    elif not (data / "hcot_noisy" / "corpus.parquet").exists():
        annotate_corpus(data / "chips", data / "hcot_noisy", data / "scenes", variants=3, noise=0.3, progress=False)
    recs = read_corpus(data / "hcot_noisy")
    tok = load_tokenizer("corpus", [r.caption for r in recs])
    cfg = KlipConfig.load("tiny")
    if a.layers: cfg.vision_layers = cfg.text_layers = a.layers
    cfg.queue_size = 1024
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = KlipModel(cfg, tok).to(dev)
    pre = KlipPretrain(model).to(dev)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ds = ChipCaptionDataset(data / "chips", recs, split=None)
    collate = Collate(tok, 180)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, collate_fn=collate, drop_last=True)
    batches = []
    while len(batches) < a.warmup + a.steps:
        batches += list(dl)
    configs = {"itm": ScioConfig(max_variants=3, itm_margin=0.0, top_fraction=0.3),
               "decoder": ScioConfig(max_variants=3, screen="decoder", decoder_margin=1.0, candidates=a.candidates)}
    rng = random.Random(0)

    def step(b, phase, scfg):
        b = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in b.items()}
        t = time.perf_counter()
        if phase != "A":
            out, _ = phase_records(model, b, phase, tok, scfg, 180, rng)
            enc = encode_captions(out, tok, 180)
            b.update({k: enc[k].to(dev) for k in ("input_ids", "attention_mask", "keyword_mask")})
        opt.zero_grad(set_to_none=True)
        pre(b["image"], b["input_ids"], b["attention_mask"], b["keyword_mask"], b["image_idx"]).total.backward()
        opt.step()
        if dev.type == "cuda": torch.cuda.synchronize()
        return time.perf_counter() - t

    res = {}
    for name, phase, scfg in (("A", "A", None), ("B itm", "B", configs["itm"]), ("C itm", "C", configs["itm"]),
                              ("B decoder", "B", configs["decoder"]), ("C decoder", "C", configs["decoder"])):
        ts = [step(b, phase, scfg) for b in batches[:a.warmup + a.steps]][a.warmup:]
        res[name] = statistics.median(ts)
    print(f"tiny, {cfg.vision_layers}+{cfg.text_layers} layers, batch {a.batch}, {a.device}, {a.steps} steps (median):")
    for k, v in res.items():
        print(f"  phase {k:10s} {v:6.2f} s/step   {v / res['A']:.2f}x phase A")
    # the end-of-round pass: screen and proofread every caption of the corpus (what `train` does between rounds)
    from fusar_klip.scio import proofread_corpus
    n = min(a.corpus, len(ds.records))
    ds.records = ds.records[:n]
    full = ScioConfig(screen="decoder", decoder_margin=1.0, corpus_variants=0, candidates=a.candidates)
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        proofread_corpus(model, ds, tok, full, a.batch * 2, 180, 0, dev, progress=False)
        ts.append(time.perf_counter() - t)
    print(f"  corpus pass (decoder, every clause, candidates {a.candidates}, {n} captions): "
          f"{statistics.median(ts) / n * 1e3:.1f} ms/caption "
          f"(median of 3)")


if __name__ == "__main__":
    main()
