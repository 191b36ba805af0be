"The package's front door: `from fusar_klip import X` for the entry points, and `import fusar_klip` stays light."
import subprocess, sys

import pytest

import fusar_klip


@pytest.mark.parametrize("name", sorted(fusar_klip._EXPORTS))
def test_every_entry_point_resolves(name):
    obj = getattr(fusar_klip, name)
    assert obj is getattr(__import__(f"fusar_klip.{fusar_klip._EXPORTS[name]}", fromlist=[name]), name)


def test_unknown_name_and_light_import():
    with pytest.raises(AttributeError, match="no attribute 'nope'"): fusar_klip.nope
    r = subprocess.run([sys.executable, "-c", "import sys, fusar_klip; print('torch' in sys.modules, 'rasterio' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr
