"""The torch-free packages (runtime, lanedata, calibration: docs/architecture.md) never load torch:
every module of each, found by walking the package, is imported in a fresh interpreter."""
import pkgutil
import subprocess
import sys

import calibration
import lanedata
import runtime

TORCH_FREE = (runtime, lanedata, calibration)


def _modules(package) -> list[str]:
    return [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".")]


def test_the_torch_free_packages_do_not_import_torch():
    names = [name for package in TORCH_FREE for name in _modules(package)]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
    code += "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # the walk reaches nested modules of every package (not a hand-kept list)
    assert {"runtime.backends.base", "lanedata.synthetic.roadside_draw", "lanedata.llamas.synthetic", "calibration.calibrate"} <= set(names)
