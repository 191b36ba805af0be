"SCIO with open-vocabulary keywords (issue 11, part 2): proofreading candidates from the corpus and the decoder, on an official-style corpus."
import random

import pandas as pd
import pytest
import torch

from fusar_klip import scio
from fusar_klip.hcot import HCoT, read_corpus, is_official, official_clause
from fusar_klip.testing import OracleDecoder
from fusar_klip.scio import (ScioConfig, PhraseBank, ScreenResult, candidate_scores, clause_candidates,
                             clause_keyword_scores, field_candidates, proofread, proofread_corpus, write_version)

OPEN = ScioConfig(candidates="closed,corpus,generated", corpus_top_k=6)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A micro world in 64 px chips, its official-style corpus with 30% noise, and a tiny model trained a few steps on it."
    from conftest import micro_world
    from fusar_klip.data import ChipCaptionDataset, Collate, load_tokenizer
    from fusar_klip.model import KlipConfig, KlipModel
    from fusar_klip.losses import KlipPretrain
    d = micro_world(tmp_path_factory.mktemp("scio_open"), "official", size=64, noise=0.3, style="official")
    recs = read_corpus(d / "official")
    assert all(is_official(c) for r in recs for c in r.clauses)
    tok = load_tokenizer("corpus", [r.caption for r in recs])
    mc = KlipConfig.load("tiny")
    mc.vision_layers = mc.text_layers = 1; mc.queue_size = 16; mc.image_size = 64; mc.max_text_len = 300
    torch.manual_seed(0)
    model = KlipModel(mc, tok)
    ds = ChipCaptionDataset(d / "chips", recs, split=None)
    pre = KlipPretrain(model, seed=0).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, collate_fn=Collate(tok, 300), drop_last=True,
                                     generator=torch.Generator().manual_seed(0))
    for step, b in zip(range(12), dl):
        opt.zero_grad(set_to_none=True)
        pre(b["image"], b["input_ids"], b["attention_mask"], b["keyword_mask"], b["image_idx"]).total.backward()
        opt.step()
    model.eval()
    return dict(dir=d, recs=recs, tok=tok, model=model, ds=ds, cor=pd.read_parquet(d / "official" / "corruptions.parquet"))


def _batch(world, n=6):
    recs = world["recs"][:n]
    with torch.no_grad(): emb = world["model"].image_embeds(torch.stack([world["ds"].image(r.chip_id) for r in recs]))
    return recs, emb


def test_candidates_come_from_the_corpus_and_the_decoder(world):
    recs, emb = _batch(world)
    tok, bank = world["tok"], PhraseBank.from_records(world["recs"])
    lists = [[0, 1, 2] for _ in recs]                       # Terrain, Water, Boundary: phrases, and fields with closed lists
    cands = clause_candidates(world["model"], emb, recs, lists, tok, OPEN, bank)
    n_gen = 0
    for r, cl, cb in zip(recs, lists, cands):
        for ci, d in zip(cl, cb):
            c = r.clauses[ci]
            assert field_candidates(c.field), c.field             # the field has a closed list ...
            assert "closed" not in d.values()                      # ... which does not fit a phrase clause
            assert list(d)[0] == c.keyword and d[c.keyword] == "original"
            corpus = [k for k, s in d.items() if s == "corpus"]
            assert 1 <= len(corpus) <= OPEN.corpus_top_k and set(corpus) <= set(bank.phrases(c.field))
            gen = [k for k, s in d.items() if s == "generated"]
            assert len(gen) <= 1
            for g in gen:
                ids = tok(g, add_special_tokens=False)["input_ids"]
                assert 1 <= len(ids) <= OPEN.generate_max_tokens and "$" not in g and not g.endswith(".")
            n_gen += len(gen)
    assert n_gen >= len(recs)                               # the decoder writes its own span in most clauses
    # the bank is bigger than top_k: the pre-rank picks which phrases go on; a larger k keeps more
    more = clause_candidates(world["model"], emb, recs, lists, tok, ScioConfig(candidates="corpus", corpus_top_k=12), bank)
    n6, n12 = ([sum(s == "corpus" for s in d.values()) for cb in cc for d in cb] for cc in (cands, more))
    assert max(n12) <= 12 and sum(n12) > sum(n6) and sum(n12) >= 10 * len(n12)     # the own keyword is one of them, at most
    # the closed default offers a phrase clause nothing at all
    closed = clause_candidates(world["model"], emb, recs, lists, tok, ScioConfig(), bank)
    assert all(d == {} for cb in closed for d in cb)


def test_a_phrase_never_collapses_to_a_template_keyword(world):
    recs, emb = _batch(world)
    model, tok = world["model"], world["tok"]
    flag = ScreenResult([1] * len(recs), [0.1] * len(recs), [0.0] * len(recs), [0.5] * len(recs))    # every Water clause
    assert field_candidates("Water")                        # the template list that used to be offered
    same, log = proofread(model, emb, recs, flag, tok, ScioConfig())
    assert same == recs and log == []                        # closed only: nothing fits, nothing changes
    new, log = proofread(model, emb, recs, flag, tok, OPEN, PhraseBank.from_records(world["recs"]))
    assert len(log) == len(recs)
    vocab = set(field_candidates("Water"))
    for a, r in zip(log, new):
        assert a.source in ("corpus", "generated", "original") and a.new not in vocab
        if a.action == "corrected": assert is_official(next(c for c in r.clauses if c.field == "Water"))


def test_audit_records_the_source(world, tmp_path):
    cfg = ScioConfig(screen="decoder", decoder_margin=0.0, min_agreement=0.0, corpus_variants=2,
                     candidates="corpus,generated", corpus_top_k=4, generate_max_tokens=16)
    ds = world["ds"]
    keep = ds.records
    ds.records = keep[:16]
    try: new, audit, flagged = proofread_corpus(world["model"], ds, world["tok"], cfg, 8, progress=False)
    finally: ds.records = keep
    assert audit and sum(f >= 0 for f in flagged) == len(audit)
    paths = write_version(tmp_path, 1, new, audit)
    a = pd.read_parquet(paths["audit"])
    assert "source" in a.columns and set(a.source) <= {"corpus", "generated"} and (a.source != "").all()
    for row in a.itertuples():                                # the source is where the new phrase really is from
        if row.source == "corpus": assert row.new in PhraseBank.from_records(keep[:16]).phrases(row.field)


def direct(model, tok, emb, r, ci, cands):
    "Each candidate spelled out in full, with the caption after it: one sequence per candidate."
    c = r.clauses[ci]; off = sum(len(x.text) + 1 for x in r.clauses[:ci])
    pre = tok(r.caption[:off + c.start], add_special_tokens=False)["input_ids"]
    suf = tok(r.caption[off + c.end:], add_special_tokens=False)["input_ids"]
    out = {}
    for k in cands:
        kid = tok(k, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([[tok.cls_token_id] + pre + [tok.mask_token_id] * len(kid) + suf + [tok.sep_token_id]])
        with torch.no_grad(): lp = model.decoder_logits(emb, ids, torch.ones_like(ids)).log_softmax(-1)[0]
        out[k] = (float(sum(lp[len(pre) + j, t] for j, t in enumerate(kid))), len(kid))
    return out


def test_multi_token_scores_match_the_direct_computation(world):
    recs, emb = _batch(world, 3)
    model, tok = world["model"], world["tok"]
    lists = [[0, 1, 4], [2, 3], [1]]
    cfg = ScioConfig(candidates="closed,corpus,generated", corpus_top_k=6, generate_max_tokens=4)
    got = candidate_scores(model, emb, recs, lists, tok, cfg, PhraseBank.from_records(world["recs"]))
    n_short = n_long = 0          # read off the probe pass (<= 4 tokens), or scored in a second pass
    for b, (r, cl) in enumerate(zip(recs, lists)):
        for (sc, src), ci in zip(got[b], cl):
            ref = direct(model, tok, emb[b:b + 1], r, ci, list(sc))
            assert set(src) == set(sc) and len(sc) >= 3
            for k, (lp, n) in ref.items():
                assert abs(sc[k] - lp / n) < 1e-3, (k, sc[k], lp / n)      # phrase clauses compare per token
                n_short += n <= 4; n_long += n >= 5
    assert n_short >= 10 and n_long >= 10
    raw = clause_keyword_scores(model, emb, recs, lists, tok, [[list(s) for s, _ in g] for g in got])
    k = max(raw[0][0], key=lambda k: len(tok(k)["input_ids"]))
    assert abs(raw[0][0][k] - direct(model, tok, emb[:1], recs[0], 0, [k])[k][0]) < 1e-3


def test_length_normalisation_keeps_long_phrases_in_the_running(world):
    "A sum of log-likelihoods prefers the shortest phrase; per token, the winners are as long as the phrases are."
    recs, emb = _batch(world, 8)
    model, tok = world["model"], world["tok"]
    bank, lists = PhraseBank.from_records(world["recs"]), [[0, 2, 8] for _ in recs]
    def winners(norm):
        cfg = ScioConfig(candidates="corpus", corpus_top_k=16, length_norm=norm)
        got = candidate_scores(model, emb, recs, lists, tok, cfg, bank)
        return [len(tok(max(s, key=s.get), add_special_tokens=False)["input_ids"]) for g in got for s, _ in g]
    by_sum, by_mean = winners("sum"), winners("mean")
    assert sum(by_sum) < sum(by_mean), (by_sum, by_mean)


def _swap(recs, field):
    "A record whose `field` phrase is swapped with another chip's phrase of the same field (free-text noise)."
    for r in recs:
        i = next(i for i, c in enumerate(r.clauses) if c.field == field)
        differs = lambda c: c.field == field and scio.claim_set(field, c.keyword) != scio.claim_set(field, r.clauses[i].keyword)
        other = next((o for o in recs if o.chip_id != r.chip_id and any(differs(c) for c in o.clauses)), None)
        if other is None: continue
        kw = next(c.keyword for c in other.clauses if differs(c))       # another chip's phrase that claims something else
        return r, i, HCoT(r.chip_id, r.variant, r.clauses[:i] + [r.clauses[i].with_keyword(kw)] + r.clauses[i + 1:], r.backend)


@pytest.mark.parametrize("field", ["Water", "Terrain", "Count"])
def test_oracle_restores_a_swapped_phrase_from_the_corpus(world, field):
    tok = world["tok"]
    clean = scio.clean_records(world["recs"], world["cor"])
    truth, ci, noisy = _swap(clean, field)
    true_kw = truth.clauses[ci].keyword
    dec = OracleDecoder(tok, [set()], {0: tok(true_kw, add_special_tokens=False)["input_ids"]})
    emb, flag = torch.zeros(1, 1, 8), ScreenResult([ci], [0.1], [0.0], [0.5])
    bank = PhraseBank.from_records(clean)                   # the truth is somewhere in the corpus
    assert len(bank.phrases(field)) > 4
    new, log = proofread(dec, emb, [noisy], flag, tok, ScioConfig(candidates="corpus", corpus_top_k=4), bank)
    assert new[0].clauses[ci].keyword == true_kw and new[0].caption == truth.caption
    assert [(a.action, a.source, a.old, a.new) for a in log] == [("corrected", "corpus", noisy.clauses[ci].keyword, true_kw)]
    # without the corpus nothing can restore it; the decoder's own span can
    assert proofread(dec, emb, [noisy], flag, tok, ScioConfig(), bank) == ([noisy], [])
    gen, glog = proofread(dec, emb, [noisy], flag, tok, ScioConfig(candidates="generated"))
    assert glog[0].source == "generated"
    assert tok(glog[0].new)["input_ids"] == tok(true_kw)["input_ids"]


def test_oracle_screening_flags_the_swapped_phrase(world):
    "Decoder screening on phrases: the oracle favours the true Water phrase; only the swapped Water clause is flagged."
    tok = world["tok"]
    clean = scio.clean_records(world["recs"], world["cor"])
    truth, ci, noisy = _swap(clean, "Water")
    dec = OracleDecoder(tok, [set()], {0: tok(truth.clauses[ci].keyword, add_special_tokens=False)["input_ids"]})
    cfg = ScioConfig(screen="decoder", candidates="corpus", corpus_top_k=4, decoder_margin=1.0)
    sr = scio.screen_decoder(dec, torch.zeros(1, 1, 8), [noisy], tok, cfg, fields={"Water"}, bank=PhraseBank.from_records(clean))
    assert sr.flagged == [ci] and sr.best == [truth.clauses[ci].keyword]
    assert sr.clauses[0][0].source == "corpus"
    same = scio.screen_decoder(dec, torch.zeros(1, 1, 8), [truth], tok, cfg, fields={"Water"}, bank=PhraseBank.from_records(clean))
    assert same.flagged == [-1] and same.clauses[0][0].source == "original"


def test_train_with_the_official_recipe(world, tmp_path):
    "train() wires the round's phrase bank: phase B/C steps and the end-of-round pass use corpus + generated candidates."
    from fusar_klip.train import TrainConfig, train
    d = world["dir"]
    s = train(TrainConfig(data=str(d), corpus=str(d / "official"), out=str(tmp_path / "run"), mode="klip", layers=1,
                          steps=6, batch_size=4, max_len=320, queue_size=16, log_every=1, ckpt_every=6,
                          scio=dict(rounds=1, phases=[0.34, 0.33, 0.33], candidates="corpus,generated", max_variants=2),
                          progress=False, tensorboard=False))
    assert s["steps"] == 6
    audit = pd.read_parquet(tmp_path / "run" / "audit_r1.parquet")
    assert "source" in audit.columns and not (audit.source == "closed").any(), audit.head()
