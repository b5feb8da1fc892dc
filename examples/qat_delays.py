"""Float vs post-training-quantized vs quantization-aware-trained delay SNN, exported to the FPGA
integer graph and run there (issue 8, part 2).

    python examples/qat_delays.py --seeds 0 1 2 --format int8 --out examples/results/qat_delays.json
    python examples/qat_delays.py --seeds 0 1 2 --format int8-m12 \
        --out examples/results/qat_delays_int8-m12.json

Setup (as ``neuro demo`` and ``examples/delay_ablation.py``): ``DelaySNN`` with one hidden layer
of 64 LIF neurons (tau 1.005 steps), max_delay 9, dropout 0.1, learned delays, on
``neuro.datasets.delay_pattern_task`` (2000 train / 1000 held-out samples), ``--epochs`` of
``train_delay_snn``. Then, per seed:

* **float**: held-out accuracy of the trained module (integer delays, float arithmetic);
* **PTQ**: ``neuro.hardware.fpga.compile`` of the float graph (quantize calibrated on 256 training
  samples), run by onnxruntime (``step.onnx``) on the held-out set;
* **float_finetuned** / **ptq_finetuned** (the control: the same extra training without QAT): a
  copy with its delays frozen at their integer values (``neuro.training.qat.freeze_integer_delays``, as
  QAT does) trained ``--qat-epochs`` more epochs in float (``--qat-lr``), then compiled as PTQ;
* **qat_from_float**: a copy of the float model, ``neuro.training.qat.prepare_qat(model, fmt)``,
  ``--qat-epochs`` more epochs of ``train_delay_snn`` (``--qat-lr``), ``convert()``, compiled;
* **qat**: the same QAT fine-tuning started from ``float_finetuned`` (the recipe: float training,
  integer-delay fine-tuning, QAT), compiled and run on the FPGA target.

``qat_loss_points`` compares ``qat`` with the better of the two float models.

The integer graph runs on the input followed by ``R`` zero steps (``R`` = the layers' summed
right padding: the graph is the streaming form of the module). Its readout is the LI layer's
integer membrane; the prediction is ``argmax_c sum_t softmax(v_t / S)`` with ``S`` the readout's
scale (the same rule as the float model). Every run is also checked bit for bit against the
reference executor (``neuro.graph.intsim``).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neuro.datasets import delay_pattern_task
from neuro.graph import from_module
from neuro.hardware import get_backend
from neuro.hardware.base import as_int_spikes, compare, load_artifact_graph, reference
from neuro.models import DelaySNN, DelaySNNConfig
from neuro.models.delay_snn import evaluate_delay_snn, train_delay_snn
from neuro.training.qat import freeze_integer_delays, prepare_qat

COLUMNS = ("float", "ptq", "float_finetuned", "ptq_finetuned", "qat_from_float", "qat")


def as_graph_input(data, pad: int, limit: int | None = None) -> np.ndarray:
    """``[N, T, C]`` uint8 samples -> ``[T + pad, N, C]`` float32 with ``pad`` zero steps."""
    x = data.spikes[:limit].transpose(1, 0, 2).astype(np.float32)
    return np.concatenate([x, np.zeros((pad, *x.shape[1:]), np.float32)])


def fpga_accuracy(model, fmt: str, train, test, pad: int, workdir: Path) -> dict:
    """Compile ``model`` for the FPGA target, run the held-out set with onnxruntime."""
    fpga = get_backend("fpga")
    art = fpga.compile(from_module(model), workdir / f"art-{fmt}", fmt=fmt,
                       calibration_inputs=as_graph_input(train, pad, 256))
    x = as_graph_input(test, pad)
    t0 = time.perf_counter()
    res = fpga.run(art, x)
    seconds = time.perf_counter() - t0
    q = load_artifact_graph(art)
    identical = compare("fpga", q, res, reference(q, as_int_spikes(q, x))).identical
    readout = [n for n, node in q.nodes.items() if node.kind == "LI"][-1]
    v = res.outputs["output"].astype(np.float64) / q.nodes[readout].q["scale"]
    pred = torch.softmax(torch.from_numpy(v), -1).sum(0).argmax(-1).numpy()
    return {"accuracy": float((pred == test.labels).mean()), "identical_to_reference": identical,
            "onnxruntime_seconds": round(seconds, 3), "graph": q}


def qat_finetune(start, args, seed: int, train, test, pad: int, workdir: Path) -> dict:
    """QAT fine-tuning of a copy of ``start``, then export and the FPGA run."""
    qmodel = copy.deepcopy(start)
    qat = prepare_qat(qmodel, args.format)
    t0 = time.perf_counter()
    r = train_delay_snn(qmodel, train, test, epochs=args.qat_epochs, lr=args.qat_lr, seed=seed,
                        progress=False, log=lambda s: None)
    seconds = round(time.perf_counter() - t0, 1)
    qat.convert()
    res = fpga_accuracy(qmodel, args.format, train, test, pad, workdir)
    return {"accuracy": res["accuracy"], "module": r.test_accuracy[-1], "seconds": seconds,
            "identical": res["identical_to_reference"], "export_check": qat.check_export(res["graph"]),
            "onnxruntime_seconds": res["onnxruntime_seconds"]}


def run(seed: int, args) -> dict:
    train, test = delay_pattern_task(args.train, 1000, seed=seed + 1)
    torch.manual_seed(seed)
    model = DelaySNN(DelaySNNConfig(n_inputs=train.n_channels, n_hidden=64, n_layers=1,
                                    n_outputs=train.n_classes, max_delay=9, dropout=0.1))
    t0 = time.perf_counter()
    train_delay_snn(model, train, test, epochs=args.epochs, seed=seed, progress=False,
                    log=lambda s: None)
    pad = sum(m.right_padding for m in model.delayed_layers())
    row = {"seed": seed, "format": args.format, "float": evaluate_delay_snn(model, test),
           "float_seconds": round(time.perf_counter() - t0, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ptq = fpga_accuracy(model, args.format, train, test, pad, work)
        row["ptq"], row["ptq_identical"] = ptq["accuracy"], ptq["identical_to_reference"]
        # control: the same extra epochs in float, delays frozen at their integer values
        fmodel = copy.deepcopy(model)
        hooks = freeze_integer_delays(fmodel)
        train_delay_snn(fmodel, train, test, epochs=args.qat_epochs, lr=args.qat_lr, seed=seed,
                        progress=False, log=lambda s: None)
        for h in hooks:
            h.remove()
        row["float_finetuned"] = evaluate_delay_snn(fmodel, test)
        ptq2 = fpga_accuracy(fmodel, args.format, train, test, pad, work)
        row["ptq_finetuned"], row["ptq_finetuned_identical"] = ptq2["accuracy"], ptq2["identical_to_reference"]
        q1 = qat_finetune(model, args, seed, train, test, pad, work)
        row.update({"qat_from_float": q1["accuracy"], "qat_from_float_module": q1["module"],
                    "qat_from_float_identical": q1["identical"],
                    "qat_from_float_export_check": q1["export_check"]})
        q2 = qat_finetune(fmodel, args, seed, train, test, pad, work)
        row.update({"qat": q2["accuracy"], "qat_module": q2["module"], "qat_identical": q2["identical"],
                    "qat_export_check": q2["export_check"], "qat_seconds": q2["seconds"],
                    "onnxruntime_seconds": q2["onnxruntime_seconds"]})
    best = max(row["float"], row["float_finetuned"])
    row["qat_loss_points"] = round(100 * (best - row["qat"]), 2)
    row["ptq_loss_points"] = round(100 * (best - max(row["ptq"], row["ptq_finetuned"])), 2)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15, help="float training epochs")
    p.add_argument("--qat-epochs", type=int, default=10)
    p.add_argument("--qat-lr", type=float, default=2e-4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train", type=int, default=2000, help="training samples")
    p.add_argument("--format", default="int8", help="int8 | int16 | int8-m12 | int16-m12")
    p.add_argument("--quick", action="store_true", help="1 seed, 3 + 1 epochs, 500 samples "
                                                        "(a smoke run; numbers are not meaningful)")
    p.add_argument("--out", type=Path, default=Path("examples/results/qat_delays.json"))
    p.add_argument("--resume", action="store_true",
                   help="keep the runs already in --out that used the same settings")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.qat_epochs, args.train = [0], 3, 1, 500
    torch.set_num_threads(int(os.environ.get("NEURO_THREADS", "2")))
    settings = {"format": args.format, "epochs": args.epochs, "qat_epochs": args.qat_epochs,
                "qat_lr": args.qat_lr, "n_train": args.train}
    done = {}
    if args.resume and args.out.is_file():
        old = json.loads(args.out.read_text())
        if all(old.get(k) == v for k, v in settings.items()):
            done = {r["seed"]: r for r in old["runs"]}
    rows = []
    for seed in args.seeds:
        rows.append(done[seed] if seed in done else run(seed, args))
        r = rows[-1]
        exact = all(r[k] for k in ("ptq_identical", "ptq_finetuned_identical", "qat_identical",
                                   "qat_from_float_identical"))
        print(f"seed {seed} {args.format}: " + "  ".join(f"{k} {r[k]:.3f}" for k in COLUMNS)
              + f"  (bit-exact {exact}; float {r['float_seconds']} s, QAT {r['qat_seconds']} s)",
              flush=True)
    summary = {k: {"mean": statistics.mean(r[k] for r in rows), "min": min(r[k] for r in rows),
                   "per_seed": [r[k] for r in rows]}
               for k in (*COLUMNS, "qat_loss_points", "ptq_loss_points")}
    print(f"\nheld-out accuracy, {args.format}, {len(rows)} seed(s)")
    print(f"{'':6s} " + " ".join(f"{k:>16s}" for k in COLUMNS))
    print(f"{'mean':6s} " + " ".join(f"{summary[k]['mean']:16.3f}" for k in COLUMNS))
    print(f"QAT loss vs the best float model: max {max(r['qat_loss_points'] for r in rows):.1f} "
          "points (negative: QAT is better)")
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            **settings, "seeds": args.seeds, "runs": rows,
            "summary": summary,
            "machine": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()}}, indent=1))
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
