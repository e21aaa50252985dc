"""The deployable layers must never load torch (DESIGN.md): checked in a fresh interpreter."""
import pkgutil
import subprocess
import sys

import calibration
import runtime


def _modules(package) -> list[str]:
    return [package.__name__] + [m.name for m in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + ".")]


def test_runtime_calibration_and_the_generator_do_not_import_torch():
    names = _modules(runtime) + _modules(calibration) + ["training.data.synthetic.dataset", "training.data.synthetic.video"]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
    code += "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "runtime.culane_metric" in names and "runtime.preprocess" in names
