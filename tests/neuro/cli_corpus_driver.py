"""Runs ``neuro`` command lines in this one process under an address-space limit and writes what
each did (exit status, stderr, whether its output path exists) as JSON.

Used by ``test_cli_bad_input.py``: ``python cli_corpus_driver.py CASES.json RESULTS.json LIMIT``.
One interpreter for every case keeps the corpus fast; the limit (``RLIMIT_AS``, bytes) is set
after torch and the readers are imported, so a case that allocates what a file declares fails
with ``MemoryError`` instead of exhausting the machine.
"""
import contextlib
import io
import json
import resource
import sys
import traceback
from pathlib import Path


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    limit = int(sys.argv[3])
    import h5py  # noqa: F401  (imported before the limit: shared libraries map address space)
    import onnxruntime  # noqa: F401
    import torch  # noqa: F401

    from neuro.cli import main as neuro_main
    from neuro.hardware import fpga, spinnaker  # noqa: F401

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = {}
    for name, case in cases.items():
        err, out = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                status = neuro_main(case["argv"])
        except BaseException as exc:  # noqa: BLE001 - reported, the test fails on it
            status = f"raised {type(exc).__name__}: {exc}"
            err.write(traceback.format_exc())
        results[name] = {"status": status, "stderr": err.getvalue(),
                         "out_exists": bool(case.get("out")) and Path(case["out"]).exists()}
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
