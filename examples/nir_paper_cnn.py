"""The NIR paper's sinabs N-MNIST CNN (``cnn_sinabs.nir``) on the integer formats and targets.

    PYTHONPATH=. python examples/nir_paper_cnn.py --samples 20 --steps 300 \
        --out examples/results/nir_paper_cnn.json

The paper's recorded input (``cnn_numbers.npy``: the first test sample of each digit as 1 ms
frames) and N-MNIST itself are not available offline, so the input is neuro's N-MNIST stand-in
(``neuro.datasets.events.digits_nmnist_task``: sklearn's digits moved in three saccades in front
of a simulated 34 x 34 ATIS sensor, written in the N-MNIST file format), binned like the paper's
``tonic.transforms.ToFrame(time_window=1e3)`` (1 ms frames ``[T, 2, 34, 34]``, polarity first),
clipped to one event per pixel and step (``binary``; the FPGA artifact takes 1-bit inputs).

Reported per number format (the integer reference executor, ``neuro.graph.intsim``): spike
agreement with the float model per IF layer, the share of float output decisions kept
(``argmax`` of the output layer's spike counts over the run; ties count as disagreements only
when the argmax differs), and the stand-in accuracy of each (the network never saw these
digits; chance is 0.1). Then each target that runs the CNN (``fpga``, ``spinnaker``) is checked
bit for bit against the integer reference on ``--target-samples`` samples
(``neuro.hardware.base.check_target``).
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neuro.graph import quantize, read_nir, simulate
from neuro.graph.nir_io import SNNTORCH_DT  # the file records no step: the NIR paper used 1e-4 s

NIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nir_paper" / "nir" / "cnn_sinabs.nir"
LAYERS = ("1", "3", "6", "10", "12")  # the IF populations, input side first; "12" is the output


def frames(samples: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x [T, B, 2, 34, 34] float32, labels [B])`` from the stand-in's test split."""
    from neuro.datasets.events import digits_nmnist_task

    _, test = digits_nmnist_task(n_steps=steps, dt_us=1000, crop=None, polarity="both", binary=True)
    idx = np.linspace(0, len(test.labels) - 1, samples).round().astype(np.int64)
    x = np.asarray(test.spikes)[idx].astype(np.float32)  # [B, T, 2 * 34 * 34]
    return np.ascontiguousarray(x.transpose(1, 0, 2).reshape(steps, samples, 2, 34, 34)), \
        np.asarray(test.labels)[idx]


def decisions(out: np.ndarray) -> np.ndarray:
    return out.reshape(out.shape[0], out.shape[1], -1).sum(0).argmax(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--target-samples", type=int, default=2)
    ap.add_argument("--formats", default="spinnaker,int16,int8,int16-m12,loihi2")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = read_nir(NIR, SNNTORCH_DT)
    x, labels = frames(args.samples, args.steps)
    xt = torch.from_numpy(x)
    ref = {k: v.numpy() for k, v in simulate(g, xt, record=True).items() if k in LAYERS}
    dec = decisions(ref["12"])
    res: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__},
                 "input": {"samples": args.samples, "steps": args.steps,
                           "events_per_sample_step": float(x.sum() / args.samples / args.steps)},
                 "float": {"accuracy": float((dec == labels).mean()),
                           "spikes": {n: int(ref[n].sum()) for n in LAYERS}},
                 "formats": {}, "targets": {}}
    print(f"float: accuracy {res['float']['accuracy']:.3f} spikes {res['float']['spikes']}")
    for fmt in args.formats.split(","):
        q = quantize(g, fmt, calibration_inputs=xt)
        out = {k: v.numpy() for k, v in simulate(q, xt, record=True).items() if k in LAYERS}
        d = decisions(out["12"])
        row = {"agreement": {n: float((out[n] == ref[n]).mean()) for n in LAYERS},
               "spikes": {n: int(out[n].sum()) for n in LAYERS},
               "decisions_kept": float((d == dec).mean()), "accuracy": float((d == labels).mean())}
        res["formats"][fmt] = row
        print(f"{fmt:10s} agreement {[round(v, 4) for v in row['agreement'].values()]} "
              f"decisions kept {row['decisions_kept']:.3f} accuracy {row['accuracy']:.3f}")
    from neuro.hardware import get_backend
    from neuro.hardware.base import check_target

    xs = x[:, :args.target_samples]
    for target in ("fpga", "spinnaker", "loihi"):
        backend = get_backend(target)
        problems = backend.supports(g)
        if problems:
            res["targets"][target] = {"supported": False, "problems": problems}
            print(f"{target}: refused ({len(problems)} problems; first: {problems[0]})")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            check = check_target(backend, g, xs, Path(tmp) / "art")
            seconds = time.perf_counter() - t0
        res["targets"][target] = {"supported": True, "format": backend.formats[0],
                                  "identical": check.comparison.identical,
                                  "spikes": check.comparison.spike_count(),
                                  "samples": int(xs.shape[1]), "seconds": round(seconds, 1)}
        print(f"{target}: identical={check.comparison.identical} spikes={check.comparison.spike_count()} "
              f"({seconds:.1f} s)")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
