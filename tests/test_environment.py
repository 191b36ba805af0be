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


# ---- settings.ini (nbdev's classic format) carries the same settings as pyproject.toml, which nbdev 3 reads ----
import configparser


def settings_ini() -> dict:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(ROOT / "settings.ini")
    return dict(cp["DEFAULT"])


def _flag(v) -> str: return str(v).strip().lower()


def ini_disagreements(ini: dict, pyproject: dict, version: str) -> list:
    "The settings on which settings.ini and pyproject.toml (plus the package version) disagree."
    proj, nbd = pyproject["project"], pyproject["tool"]["nbdev"]
    want = {"lib_name": proj["name"], "version": version, "description": proj["description"],
            "min_python": proj["requires-python"].lstrip(">="), "keywords": " ".join(proj["keywords"]),
            "requirements": " ".join(proj["dependencies"]), "dev_requirements": " ".join(r.split(";")[0].strip() for r in proj["optional-dependencies"]["dev"]),
            "console_scripts": " ".join(f"{k}={v}" for k, v in proj["scripts"].items()),
            "git_url": proj["urls"]["Repository"], "lib_path": proj["name"].replace("-", "_"),
            "allowed_cell_metadata_keys": " ".join(nbd["allowed_cell_metadata_keys"]), "tst_flags": nbd["tst_flags"],
            "clean_ids": _flag(nbd["clean_ids"]), "jupyter_hooks": _flag(nbd["jupyter_hooks"]),
            "recursive": _flag(nbd["recursive"]), "author": proj["authors"][0]["name"],
            "author_email": proj["authors"][0]["email"]}
    got = {k: ini.get(k) for k in want}
    for k in ("clean_ids", "jupyter_hooks", "recursive"): got[k] = _flag(got[k])
    return [f"{k}: settings.ini has {got[k]!r}, pyproject.toml {v!r}" for k, v in want.items() if got[k] != v]


def _version() -> str:
    return re.search(r'__version__ = "([^"]+)"', (ROOT / "fusar_klip" / "__init__.py").read_text()).group(1)


def test_settings_ini_agrees_with_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert ini_disagreements(settings_ini(), pyproject, _version()) == []


def test_settings_ini_check_can_fail():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ini = settings_ini(); ini["tst_flags"] = "slow"; ini["requirements"] += " extra-pkg"
    bad = ini_disagreements(ini, pyproject, _version())
    assert sorted(b.split(":")[0] for b in bad) == ["requirements", "tst_flags"], bad


def test_nbdev3_reads_pyproject():
    "nbdev 3 takes its configuration from pyproject.toml even with settings.ini beside it."
    from nbdev.config import get_config
    assert get_config(path=ROOT).config_file.name == "pyproject.toml"
