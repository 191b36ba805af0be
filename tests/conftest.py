import importlib.util, os, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fx(tmp_path_factory):
    "The raster fixtures, made by the committed generator tests/fixtures/make_fixtures.py."
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "tests" / "fixtures" / "make_fixtures.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod.make(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture(scope="session")
def shared_data():
    "The real SAR data folder (../shared/data); tests using it skip when it is absent, as in a user's clone."
    from fusar_klip.geo import shared_data_dir
    d = shared_data_dir(ROOT)
    if d is None: pytest.skip("real SAR data folder (../shared/data or $FUSAR_KLIP_SHARED_DATA) not found")
    return d


def run_cli(*args, env=None, **kw):
    "Run the installed `fusar-klip` command in a subprocess."
    import subprocess
    exe = Path(sys.executable).parent / "fusar-klip"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})}, **kw)


def micro_world(d, corpus="hcot", size=128, split=None, **annotate):
    """The simulator's micro world in `d`, built by the library's `fusar_klip.train.micro_world`: scenes/, chips/
    (`size` px; every chip in `split` if given) and a caption corpus `d/corpus` (`annotate` goes to annotate_corpus;
    one caption per chip unless `variants` says otherwise). Returns `d`."""
    from fusar_klip.train import micro_world as build
    return build(d, corpus, size, split, **annotate).root
