"High-resolution captions: the xhr-micro world through the CLI, target aspect / size / shadow clauses checked by L5 and corrupted by noise."
import json

import pandas as pd
import pytest

from conftest import run_cli
from fusar_klip import hcot
from fusar_klip.facts import ChipFacts, HR_KEYS

HR_FIELDS = ("Orientation", "Dimensions", "Shadow")


@pytest.fixture(scope="module")
def xhr(tmp_path_factory):
    "xhr-micro (2 scenes of 512 px at 0.5 m) in 128 px chips, annotated in both styles with 30% noise."
    d = tmp_path_factory.mktemp("xhr")
    r = run_cli("synth", "--world", "xhr-micro", "--out", d / "scenes", "--workers", "1")
    assert r.returncode == 0, r.stderr
    r = run_cli("tile", d / "scenes", "--out", d / "chips", "--size", "128")
    assert r.returncode == 0, r.stderr
    for style in ("template", "official"):
        r = run_cli("annotate", "--chips", d / "chips", "--out", d / style, "--style", style, "--noise", "0.3",
                    "--variants", "2")
        assert r.returncode == 0, r.stderr
    facts = {r["chip_id"]: ChipFacts.from_row(r) for r in pd.read_parquet(d / "chips" / "facts.parquet").to_dict("records")}
    return d, facts


def test_facts_resolve_targets_at_half_a_metre(xhr):
    _, facts = xhr
    ts = [t for f in facts.values() for t in f.targets]
    assert ts and all(f.res_m == 0.5 for f in facts.values())
    for t in ts:                          # 8 px or more: every target of 4 m or longer has the high-resolution keys
        assert (set(HR_KEYS) <= set(t)) == (t["length_m"] >= 4), t
    hr = [t for t in ts if "aspect" in t]
    assert {t["aspect"] for t in hr} <= {"end-on", "oblique", "broadside"} and all(t["shadow_m"] > 0 for t in hr)


def test_hr_clauses_follow_the_facts_and_survive_noise(xhr):
    d, facts = xhr
    for style in ("template", "official"):
        recs = {(r.chip_id, r.variant): r for r in hcot.read_corpus(d / style)}
        cors = pd.read_parquet(d / style / "corruptions.parquet")
        hit = cors[cors.field.isin(HR_FIELDS + ("Region", "Environment"))]
        assert set(hit.field) >= set(HR_FIELDS), (style, set(hit.field))     # the new fields are corrupted too
        for _, x in hit.iterrows():
            f, r = facts[x.chip_id], recs[(x.chip_id, x.variant)]
            assert r.clauses[x["clause"]].keyword == x.noisy_keyword
            fixed = hcot.calibrate_l5(r, f)           # L5 rewrites (or drops) every corrupted high-resolution claim
            for c in fixed.clauses:
                if c.field == x.field:
                    if hcot.is_official(c): assert hcot.phrase_problems(c.field, c.keyword, f) == [], c
                    else: assert c.keyword in hcot.FIELD[c.field].accepts(f), c
        for (cid, _), r in recs.items():
            f = facts[cid]
            assert ("Orientation" in {c.field for c in r.clauses}) == (hcot.orientation(f) is not None)
            vehicles = [t for t in f.targets if t["cls"] == "vehicle"]
            if vehicles and f.main_target_class() == "vehicle" and all(t["context"] == "in a field" for t in vehicles):
                assert hcot.region(f) == "fields" and hcot.environment(f) == "off-road"


def test_default_resolution_has_no_hr_clauses(tmp_path):
    "The 3 m micro world: no target facts beyond the old ones, no high-resolution clause in either style."
    from conftest import micro_world
    d = micro_world(tmp_path / "m")
    facts = pd.read_parquet(d / "chips" / "facts.parquet")
    assert not any(set(HR_KEYS) & set(t) for ts in facts.targets for t in json.loads(ts))
    off = hcot.annotate_corpus(d / "chips", d / "official", d / "scenes", progress=False, style="official")
    assert off["merged"]
    for name in ("hcot", "official"):
        assert not any(c.field in HR_FIELDS for r in hcot.read_corpus(d / name) for c in r.clauses)
