"""Why the ITC loss steps up at an epoch boundary: per-step ITC loss, its hard-target part and the mean number of
positives per row (same chip in the batch or the queue), logged while a model trains.

    python bench/itc_positives.py --data data/mini --corpus data/mini/hcot_noisy --steps 130   # after `make demo`

Trains a CLIP-style run (ITC only, tiny cut to 2+2 layers, batch 16 -- the report's budget) into a temporary folder.
A training callback wraps the run's ITC term (`state.pre.itc_loss`, the hook of `losses.KlipPretrain`) to record, at
every step, the loss as trained (momentum-distilled targets), the same loss with hard targets only, and the positives
per row. Prints means over 5-step windows.
"""
import argparse, json, tempfile
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/mini", help="world folder with chips/ (default data/mini)")
    ap.add_argument("--corpus", default="", help="corpus folder (default DATA/hcot)")
    ap.add_argument("--steps", type=int, default=130)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--queue", type=int, default=1024)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--out", default="", help="also write the per-step records to this JSON file")
    a = ap.parse_args()
    from fusar_klip.train import TrainConfig, read_metrics, train
    rows = []

    class RecordITC:
        "A training callback: once the run is set up, wrap its ITC term so that every call is recorded."
        def on_start(self, state):
            itc = state.pre.itc_loss

            def recorded(img_feat, txt_feat, img_feat_m, txt_feat_m, image_idx, temp, image_queue=None, text_queue=None,
                         idx_queue=None, alpha=0.4):
                out = itc(img_feat, txt_feat, img_feat_m, txt_feat_m, image_idx, temp, image_queue, text_queue, idx_queue,
                          alpha=alpha)
                with torch.no_grad():
                    hard = itc(img_feat, txt_feat, img_feat_m, txt_feat_m, image_idx, temp, image_queue, text_queue,
                               idx_queue, alpha=0.0)[0]
                    idx = torch.cat([image_idx, idx_queue[0]]) if idx_queue is not None else image_idx
                    pos = (image_idx[:, None] == idx[None]).sum(1).float().mean()
                rows.append(dict(itc=float(out[0].detach()), hard=float(hard), positives=float(pos)))
                return out
            state.pre.itc_loss = recorded

    with tempfile.TemporaryDirectory(prefix="fk_itc_") as tmp:
        cfg = TrainConfig(data=a.data, corpus=a.corpus, out=str(Path(tmp) / "run"), mode="clip", layers=a.layers,
                          steps=a.steps, batch_size=a.batch, queue_size=a.queue, ckpt_every=10**9, progress=False,
                          tensorboard=False)
        train(cfg, callbacks=[RecordITC()])
        per_epoch = int(read_metrics(cfg.out).steps_per_epoch.iloc[0])      # the run logs its epoch length
    print(f"batch {a.batch}: {per_epoch} steps per epoch; queue {a.queue}")
    print(f"{'steps':>11s} {'ITC':>6s} {'hard':>6s} {'positives':>9s}")
    for i in range(0, len(rows), a.window):
        w = rows[i:i + a.window]
        m = {k: sum(r[k] for r in w) / len(w) for k in w[0]}
        mark = "  <- epoch 2 starts" if i <= per_epoch <= i + len(w) - 1 else ""
        print(f"{i + 1:5d}-{i + len(w):5d} {m['itc']:6.3f} {m['hard']:6.3f} {m['positives']:9.2f}{mark}")
    if a.out: Path(a.out).write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
