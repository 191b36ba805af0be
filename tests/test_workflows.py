"The CI workflows are valid (actionlint) and the GPU check's report checker can fail."
import shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from check_report import problems, MODELS, TASKS  # noqa: E402


def _actionlint():
    exe = shutil.which("actionlint") or (Path(sys.executable).parent / "actionlint")
    if not Path(exe).exists(): pytest.skip("actionlint is not installed (the dev extra installs it on Linux x86-64)")
    return str(exe)


def test_workflows_pass_actionlint():
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "gpu.yml"}
    r = subprocess.run([_actionlint(), "-no-color", *map(str, files)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_can_fail(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"; bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    r = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "nope" in r.stdout


def test_gpu_workflow_runs_the_script():
    text = (ROOT / ".github" / "workflows" / "gpu.yml").read_text()
    assert "[self-hosted, gpu]" in text and "workflow_dispatch" in text and "schedule" in text
    assert "nvidia-smi" in text and "tools/gpu_check.sh" in text and "upload-artifact" in text
    sh = (ROOT / "tools" / "gpu_check.sh").read_text()
    assert "-p scale gpu" in sh and "check_report.py" in sh


def test_check_report_finds_missing_and_nan():
    rows = [dict(task=t, metric="m", model=m, value=1.0) for m in MODELS for t in TASKS]
    df = pd.DataFrame(rows)
    assert problems(df) == []
    df.loc[0, "value"] = float("nan")
    df = df[~((df.model == "BLIP-style") & (df.task == "vqa"))]
    bad = problems(df)
    assert any("not a finite number" in b for b in bad) and "BLIP-style / vqa: no result" in bad, bad
