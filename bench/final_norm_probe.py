#!/usr/bin/env python
"""Diagnostic: does the vision encoder's final LayerNorm cost the MSTAR-style probe accuracy?

For each model, the class-folder set's patch tokens are probed twice with one fixed probe (every patch token in place,
whitened PCA, logistic C; no choice on validation, so the two differ only in the features): as the kit's evaluation
reads them (after the ViT's final LayerNorm, `post_layernorm`) and just before it. A LayerNorm rescales every token to
unit spread, so a patch's overall brightness -- where the bright returns of a target are -- survives only in the
token's direction.

    python bench/final_norm_probe.py --data ../shared/data/MSTAR-10 --checkpoint data/mini/bench/blip_s0 --random-init
"""
import argparse, json
from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def tokens(model, images, batch:int=64):
    "(before, after) the final LayerNorm: patch tokens flattened in place, (N, patches x width) each."
    vm, pre, post = model.vision_model, [], []
    for i in range(0, len(images), batch):
        h = vm.encoder(inputs_embeds=vm.embeddings(images[i:i + batch])).last_hidden_state
        pre.append(h[:, 1:].flatten(1).float()); post.append(vm.post_layernorm(h)[:, 1:].flatten(1).float())
    return torch.cat(pre).numpy(), torch.cat(post).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="class folders with train/ and test/ (MSTAR-10 layout)")
    ap.add_argument("--checkpoint", type=Path, action="append", default=[], help="a fusar-klip run or model folder; repeatable")
    ap.add_argument("--random-init", action="store_true", help="also the first checkpoint's architecture, untrained (seed 0)")
    ap.add_argument("--pca", type=int, default=1024); ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-per-class", type=int, default=0, help="images per class and split (0: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the accuracies here")
    a = ap.parse_args()
    if not a.checkpoint: ap.error("give at least one --checkpoint")
    import fusar_klip.evaluate as ev
    from fusar_klip.eval_metrics import _prep, accuracy, linear_probe
    from fusar_klip.core import SARInputError
    try:                                                       # bad input: one line and exit 2, as the kit's commands do
        D = ev.load_class_folders(a.data, a.data.name, max_per_class=a.max_per_class)
        encs = {(c.name if c.name != "model" else c.parent.name):
                ev.KlipEncoder.load(c / "model" if (c / "model").is_dir() else c).model for c in a.checkpoint}
    except SARInputError as err: ap.error(str(err))
    if a.random_init: encs["random-init"] = ev.KlipEncoder.random_init(next(iter(encs.values())), 0).model
    res = {}
    print(f"{D.name}: {len(D.labels['train'])} train / {len(D.labels['test'])} test images; probe: tokens, "
          f"whitened PCA {a.pca}, C={a.C:g}")
    print(f"  {'model':24s} {'after final norm':>17s} {'before':>8s}")
    for name, m in encs.items():
        m.eval()
        (pa, qa), (pb, qb) = tokens(m, D.images["train"]), tokens(m, D.images["test"])
        acc = {}
        for kind, x, y in (("after", qa, qb), ("before", pa, pb)):
            A, B = _prep(x, y, a.pca, 0)
            acc[kind] = float(accuracy(D.labels["test"], linear_probe(A, D.labels["train"], B, C=a.C, seed=0, max_iter=1000)))
        res[name] = acc
        print(f"  {name:24s} {acc['after']:17.1f} {acc['before']:8.1f}", flush=True)
    if a.json: a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
