"""``python -m neuro.kernels.build``: every extension's owner builds it through the shared loader."""
import importlib
import subprocess
import sys

from neuro.kernels import build


def test_each_listed_module_exposes_build_and_build_error():
    assert set(build.EXTENSIONS) == {"neuro_ops", "neuro_dcls", "spinnaker", "neuro_wkv", "neuro_spikegpt",
                                     "neuro_egru", "neuro_blas"}
    for module in build.EXTENSIONS.values():
        mod = importlib.import_module(module)
        assert callable(mod.build) and callable(mod.build_error)


def test_neuro_kernels_imports_no_hardware_backend():
    code = ("import sys, neuro.kernels, neuro.kernels.build; "
            "print(any(m.startswith('neuro.hardware') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
