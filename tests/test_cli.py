"The `fusar-klip` command: help that explains, errors that name the file, the demo end to end."
import json

import pytest

from conftest import run_cli
from fusar_klip.evaluate import FLOORS
from fusar_klip.geo import read_manifest


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("synth", "tile", "demo"): assert cmd in r.stdout
    assert run_cli("--version").stdout.startswith("fusar-klip ")


@pytest.mark.parametrize("cmd,words", [("synth", ["--world", "--scale", "sar.tif", "targets.geojson"]),
                                       ("tile", ["--size", "--stride", "--min-valid", "manifest.parquet", "resumes"]),
                                       ("demo", ["preview.png", "summary.json", "--out"]),
                                       ("eval", ["--checkpoint", "--floors", "results.csv", "MSTAR-10", "hf:",
                                                 *FLOORS])])   # the help names every floor
def test_subcommand_help_explains(cmd, words):
    r = run_cli(cmd, "--help", env={"COLUMNS": "200"})   # wide: argparse may break 'pixel-stats' at its hyphen
    assert r.returncode == 0
    for w in words: assert w in r.stdout, (cmd, w)


def test_bad_input_is_one_line_with_exit_2(fx, tmp_path):
    r = run_cli("tile", fx["nocrs"], "--out", tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nocrs_db.tif: has no CRS" in r.stderr
    r = run_cli("tile", fx["good"], "--out", tmp_path / "x", "--size", "1024")
    assert r.returncode == 2 and "larger than the scene" in r.stderr
    r = run_cli("tile", fx["good"], fx["dual"], "--landcover", fx["landcover"], "--out", tmp_path / "y")
    assert r.returncode == 2 and "exactly one raster" in r.stderr
    r = run_cli("synth", "--world", "nope")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_tile_raster_with_landcover(fx, tmp_path):
    r = run_cli("tile", fx["good"], "--landcover", fx["landcover"], "--out", tmp_path, "--size", "64", "--split", "test")
    assert r.returncode == 0, r.stderr
    man = read_manifest(tmp_path / "manifest.parquet")
    assert len(man) == 18 and set(man.split) == {"test"} and man.landcover_path.notna().all()
    assert "2 skipped" in r.stdout


def test_demo_micro(tmp_path):
    r = run_cli("demo", "--world", "micro", "--out", tmp_path, "--workers", "2", "--train-steps", "2")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "summary.json").read_text())
    man = read_manifest(tmp_path / "chips" / "manifest.parquet")
    assert s["chips"] == len(man) > 0 and s["scenes"] == 2
    assert (tmp_path / "preview.png").stat().st_size > 10_000
    assert {"city", "country", "split", "lon", "lat", "native_crs", "geometry"} <= set(man.columns)
    r2 = run_cli("demo", "--world", "micro", "--out", tmp_path, "--train-steps", "2")
    assert r2.returncode == 0 and json.loads((tmp_path / "summary.json").read_text())["chips_written"] == 0


def test_import_captions_and_official_style(tmp_path):
    from pathlib import Path
    fixture = Path(__file__).parent / "fixtures" / "official_sample.json"
    r = run_cli("import-captions", fixture, "--out", tmp_path / "imp")
    assert r.returncode == 0 and "sentences 80" in r.stdout and "unmatched 1" in r.stdout, r.stdout + r.stderr
    assert (tmp_path / "imp" / "corpus.parquet").exists()
    (tmp_path / "misc.json").write_text(json.dumps([{"image_id": "a.tif", "Water": "Water presence: mainly water.",
                                                      "Misc": "A sentence of a field the kit does not know."}]))
    r = run_cli("import-captions", tmp_path / "misc.json", "--out", tmp_path / "imp3")
    assert r.returncode == 0 and "left out of the corpus: Misc (1)" in r.stderr, r.stdout + r.stderr
    r = run_cli("import-captions", tmp_path / "nope.json", "--out", tmp_path / "imp2")
    assert r.returncode == 2 and "nope.json" in r.stderr, r.stderr
    r = run_cli("demo", "--world", "micro", "--out", tmp_path / "w", "--workers", "1", "--train-steps", "0")
    assert r.returncode == 0, r.stderr
    r = run_cli("annotate", "--chips", tmp_path / "w" / "chips", "--out", tmp_path / "off", "--style", "official",
                "--variants", "1")
    assert r.returncode == 0, r.stderr
    caps = json.loads((tmp_path / "off" / "captions_official.json").read_text())
    assert any(v.startswith("Water presence: ") for c in caps for v in c.values() if isinstance(v, str)), caps[:1]
