"environment.yml (conda) and pyproject.toml (pip) must name the same packages."
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}     # conda-forge names that differ from PyPI's


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pip_names():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(proj["dependencies"]) + [r for extra in proj["optional-dependencies"].values() for r in extra]
    return {_name(r) for r in reqs}


def conda_names():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep.get("pip", []) if not r.startswith("-")}
        else:
            names.add(CONDA_TO_PIP.get(_name(dep), _name(dep)))
    return names - {"python", "pip"}


def test_same_packages():
    pip, conda = pip_names(), conda_names()
    assert pip == conda, f"only in pyproject.toml: {sorted(pip - conda)}; only in environment.yml: {sorted(conda - pip)}"


def test_name_parsing_can_fail():
    assert _name("torch>=2.2") == "torch" and _name("xarray_sentinel >=0.9") == "xarray-sentinel"
    assert _name("nbdev[dev]>=3") == "nbdev"
