"""Measurement helpers shared by the benchmark scripts (process memory, CPU load, summaries).

Imported as ``_common`` by scripts run as ``python benchmarks/<name>.py`` (the script's folder is
on ``sys.path``), including their worker subprocesses.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import tempfile
from pathlib import Path
from typing import Any


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def system_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores), from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_worker(script: str, args: list[str], repo: str, extra_env: dict[str, str] | None = None) -> dict:
    """Run ``python script *args`` in a fresh process (repo on PYTHONPATH); return the JSON it
    prints on its last line. A failing worker stops the benchmark with its stderr."""
    import json
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          env=env, cwd=repo)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {' '.join(args)} failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_installed(bench: str, packages: dict[str, str]) -> dict[str, str]:
    """Versions of ``packages`` (import name -> distribution name) and of neuro; exit 2 with a
    one-line message naming what is missing."""
    import importlib.metadata
    import importlib.util
    import sys

    missing = [name for name in ("torch", *packages) if importlib.util.find_spec(name) is None]
    if missing:
        dists = " ".join(packages.values())
        print(f"{bench}: missing package(s) {missing}; install them (e.g. `pip install {dists}`) "
              "to run this benchmark.", file=sys.stderr)
        raise SystemExit(2)
    try:
        import neuro
    except ImportError as e:
        print(f"{bench}: cannot import neuro ({e}); run from the repository root with "
              "PYTHONPATH=. or install the package.", file=sys.stderr)
        raise SystemExit(2) from e
    versions = {dist: importlib.metadata.version(dist) for dist in packages.values()}
    versions["neuro"] = getattr(neuro, "__version__", "unknown")
    return versions


def machine_info(versions: dict[str, str], num_threads: int) -> dict:
    """The machine, thread count and library versions, for the benchmark JSON."""
    import datetime

    import torch

    import neuro.kernels

    torch.set_num_threads(num_threads)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        **versions,
        "neuro_backend": neuro.kernels.backend(),  # also builds the C++ extension once, untimed
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(path: Path, report: dict[str, Any]) -> None:
    """Write the benchmark's JSON atomically (a temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
