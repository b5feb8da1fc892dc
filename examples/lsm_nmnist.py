"""Liquid state machines on a static and a temporal event task; readout vs raw input, device model.

    python examples/lsm_nmnist.py                                  # offline stand-ins (default)
    python examples/lsm_nmnist.py --nmnist DIR --ntidigits FILE    # the published data
    python examples/lsm_nmnist.py --quick                          # one seed, fewer variants

Static task: N-MNIST (``DIR`` holds ``Train/`` and ``Test/``) or, offline, sklearn's digits recorded
by a simulated event camera during three saccades and written as N-MNIST files. Temporal task:
N-TIDIGITS (``n-tidigits.hdf5``) or, offline, audio-like words that differ only in the order of
their phonemes, written as an N-TIDIGITS file. Both stand-ins are read through the same readers.

The reference setup (Lin et al. 2025, models.md section 4.1): 200 LIF neurons with random Gaussian
weights, one recurrent layer; N-MNIST: one polarity, 16 x 16 centre crop (256 inputs), 50 steps,
decay 0.9, threshold 5.0; N-TIDIGITS: 64 channels, 129 steps, decay 0.97, threshold 5.3; an ANN
readout on the spike counts (N-MNIST: Adam 1e-4, 100 epochs, batch 100; N-TIDIGITS: 6e-4, batch
256). The reference's weight scale (``const`` 0.07 / 0.08 times N(0, 1)) leaves the reservoir
almost silent on binary frames here (its model file is missing from the reference repository,
so how ``const`` and ``scale`` enter is unknown); the default input/recurrent scales (1.0 / 0.3)
were chosen on the offline stand-ins and ``--const`` runs the literal reference scale instead.

Measured per task and reservoir seed: ridge readout on the raw input's spike counts (no reservoir);
the LSM with the ridge readout (Gaussian reservoir, Maass column) and with the trained ANN readout;
memory ablations (no recurrent weights, short membrane memory); the device model (readout trained
on the ideal reservoir and used on a chip with programming variability, stuck-at faults, read
noise; and retrained on that chip); the accuracy of the exported integer graph (``loihi2`` and
``int16`` formats, reference executor); offline, the audio -> image zero-shot setting of the
reference (projections trained contrastively on digits 0..6, tested on 7..9).
Results go to ``examples/results/lsm_nmnist.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from neuro.checkpoint import atomic_write
from neuro.datasets import SpikeDataset
from neuro.graph import from_module, simulate
from neuro.graph.quantize import quantize
from neuro.models.lsm import LSM, LSMConfig
from neuro.models.lsm.readout import (
    ProjectionHead,
    select_alpha,
    train_cross_modal,
    zero_shot_accuracy,
)
from neuro.models.lsm.training import raw_features, reservoir_features, train_lsm

DEVICE_LEVELS = {
    "variability 0.1": {"variability": 0.1},
    "variability 0.3": {"variability": 0.3},
    "variability 0.5": {"variability": 0.5},
    "stuck-at 2% off + 2% on": {"stuck_off": 0.02, "stuck_on": 0.02},
    "read noise 0.05": {"read_noise": 0.05},
    "read noise 0.2": {"read_noise": 0.2},
    "typical RRAM (0.2 var, 1% off, 0.5% on, 0.05 read)": {"variability": 0.2, "stuck_off": 0.01,
                                                          "stuck_on": 0.005, "read_noise": 0.05},
}


def load(args: argparse.Namespace) -> dict[str, tuple[SpikeDataset, SpikeDataset, str, dict[str, Any]]]:
    from neuro.datasets.events import audio_event_task, digits_nmnist_task
    from neuro.datasets.nmnist import load_nmnist
    from neuro.datasets.ntidigits import load_ntidigits

    tasks = {}
    if args.nmnist:
        kw = dict(n_steps=50, dt_us=6000, crop=(16, 16), polarity="on", max_samples=args.max_samples)
        tasks["static"] = (load_nmnist(args.nmnist, "train", **kw), load_nmnist(args.nmnist, "test", **kw),
                           f"N-MNIST {args.nmnist}", {"beta": 0.9, "threshold": 5.0, "const": 0.07,
                                                      "lr": 1e-4, "batch_size": 100})
    else:
        tr, te = digits_nmnist_task(seed=0)
        tasks["static"] = (tr, te, "sklearn digits as saccade events, N-MNIST files (stand-in)",
                           {"beta": 0.9, "threshold": 5.0, "const": 0.07, "lr": 1e-4, "batch_size": 100})
    if args.ntidigits:
        kw2 = dict(n_steps=129, dt=0.01)
        tasks["temporal"] = (load_ntidigits(args.ntidigits, "train", **kw2),
                             load_ntidigits(args.ntidigits, "test", **kw2), f"N-TIDIGITS {args.ntidigits}",
                             {"beta": 0.97, "threshold": 5.3, "const": 0.08, "lr": 6e-4, "batch_size": 256})
    else:
        tr, te = audio_event_task(seed=0)
        tasks["temporal"] = (tr, te, "audio-like words differing only in phoneme order, N-TIDIGITS "
                             "file (stand-in)", {"beta": 0.9, "threshold": 5.0, "const": 0.08,
                                                 "lr": 6e-4, "batch_size": 256})
    return tasks


def ridge_acc(model: LSM, train: SpikeDataset, test: SpikeDataset, *, noisy_train: bool = False,
              noisy_test: bool = False, seed: int = 0) -> tuple[float, Any]:
    g = torch.Generator().manual_seed(seed + 99)
    f_tr, _ = reservoir_features(model, train, noisy=noisy_train, generator=g)
    f_te, _ = reservoir_features(model, test, noisy=noisy_test, generator=g)
    r = select_alpha(f_tr, train.labels, train.n_classes, seed=seed)
    return r.accuracy(f_te, test.labels), r


def integer_accuracy(model: LSM, test: SpikeDataset, fmt: str, max_samples: int) -> dict[str, float]:
    """Accuracy of the exported graph in ``fmt`` on the reference executor, and its spike
    agreement with the float model."""
    g = quantize(from_module(model), fmt)
    n = min(len(test), max_samples)
    correct, agree, total = 0, 0.0, 0
    for i in range(0, n, 128):
        x = torch.from_numpy(test.spikes[i:min(i + 128, n)]).transpose(0, 1).float()
        rec = simulate(g, x, record=True)
        correct += int((rec["output"][-1].numpy().argmax(1) == test.labels[i:i + x.shape[1]]).sum())
        agree += float((rec["reservoir.neuron"].numpy() == model.reservoir_spikes(x).numpy()).sum())
        total += rec["reservoir.neuron"].numel()
    return {"accuracy": correct / n, "spike_agreement_with_float": agree / total, "samples": n}


def run_task(name: str, train: SpikeDataset, test: SpikeDataset, ref: dict[str, Any],
             args: argparse.Namespace) -> dict[str, Any]:
    base = dict(n_inputs=train.n_channels, n_outputs=train.n_classes, n_steps=train.n_steps, size=200,
                beta=ref["beta"], threshold=ref["threshold"])
    if args.const:
        base.update(input_scale=ref["const"], recurrent_scale=ref["const"])
    raw = select_alpha(raw_features(train), train.labels, train.n_classes)
    out: dict[str, Any] = {"raw_input_ridge": raw.accuracy(raw_features(test), test.labels),
                           "config": base, "runs": []}
    print(f"[{name}] raw input, ridge on spike counts: {out['raw_input_ridge']:.4f}")
    for seed in args.seeds:
        run: dict[str, Any] = {"seed": seed}
        t0 = time.perf_counter()
        model = LSM(LSMConfig(**base, seed=seed))
        _, res = train_lsm(model, train, test, raw_baseline=False, log=lambda s: None)
        run["lsm_ridge"] = res.test_accuracy
        run["reservoir"] = res.reservoir
        if not args.const:
            paper = LSM(LSMConfig(**{**base, "input_scale": ref["const"], "recurrent_scale": ref["const"]}, seed=seed))
            _, st = reservoir_features(paper, test)
            run["reference_const_rate"] = st["mean_rate"]
            run["reference_const_silent_fraction"] = st["silent_fraction"]
        _, res_ann = train_lsm(LSM(LSMConfig(**base, seed=seed)), train, test, readout="mlp", epochs=args.epochs,
                               lr=ref["lr"], batch_size=ref["batch_size"], raw_baseline=False, seed=seed,
                               log=lambda s: None)
        run["lsm_ann_readout"] = res_ann.test_accuracy
        grid = {"reservoir": "maass", "grid": [10, 5, 4]}
        run["maass_ridge"] = ridge_acc(LSM(LSMConfig(**base, **grid, seed=seed)), train, test, seed=seed)[0]
        run["no_recurrence_ridge"] = ridge_acc(LSM(LSMConfig(**{**base, "recurrent_scale": 0.0}, seed=seed)),
                                               train, test, seed=seed)[0]
        run["short_memory_beta0.5_ridge"] = ridge_acc(LSM(LSMConfig(**{**base, "beta": 0.5}, seed=seed)),
                                                      train, test, seed=seed)[0]
        # device model: the readout of the ideal reservoir moved to a chip, and retrained there
        ideal_ridge = ridge_acc(model, train, test, seed=seed)[1]
        dev: dict[str, Any] = {}
        levels = DEVICE_LEVELS if not args.quick else dict(list(DEVICE_LEVELS.items())[-1:])
        for label, d in levels.items():
            chip = LSM(LSMConfig(**base, device=d, seed=seed))
            g = torch.Generator().manual_seed(seed + 1)
            f_te, _ = reservoir_features(chip, test, noisy=True, generator=g)
            transfer = ideal_ridge.accuracy(f_te, test.labels)
            retrained = ridge_acc(chip, train, test, noisy_train=True, noisy_test=True, seed=seed)[0]
            dev[label] = {"transferred_readout": transfer, "retrained_readout": retrained}
        run["device"] = dev
        run["integer"] = {fmt: integer_accuracy(model, test, fmt, args.int_samples) for fmt in ("loihi2", "int16")}
        run["seconds"] = time.perf_counter() - t0
        print(f"[{name}] seed {seed}: LSM ridge {run['lsm_ridge']:.4f}, ANN readout {run['lsm_ann_readout']:.4f}, "
              f"Maass {run['maass_ridge']:.4f}, no recurrence {run['no_recurrence_ridge']:.4f}, "
              f"beta 0.5 {run['short_memory_beta0.5_ridge']:.4f}, rate {res.reservoir['mean_rate']:.3f}, "
              f"loihi2 integer {run['integer']['loihi2']['accuracy']:.4f} ({run['seconds']:.0f} s)")
        for label, v in dev.items():
            print(f"    device {label}: transferred {v['transferred_readout']:.4f}, retrained "
                  f"{v['retrained_readout']:.4f}")
        out["runs"].append(run)
    out["summary"] = summarise(out["runs"])
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(vals: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(vals), "std": statistics.pstdev(vals) if len(vals) > 1 else 0.0}

    keys = ["lsm_ridge", "lsm_ann_readout", "maass_ridge", "no_recurrence_ridge", "short_memory_beta0.5_ridge"]
    s = {k: stat([r[k] for r in runs]) for k in keys}
    s["device"] = {label: {kind: stat([r["device"][label][kind] for r in runs])
                           for kind in ("transferred_readout", "retrained_readout")}
                   for label in runs[0]["device"]}
    s["integer"] = {fmt: stat([r["integer"][fmt]["accuracy"] for r in runs]) for fmt in runs[0]["integer"]}
    return s


def zero_shot(static: tuple[SpikeDataset, SpikeDataset], temporal: tuple[SpikeDataset, SpikeDataset],
              seed: int, epochs: int) -> dict[str, Any]:
    """Audio -> image zero-shot (reference's CLIP setting) on the stand-ins: one LSM per modality,
    projections trained contrastively on digits 0..6, audio of digits 7..9 classified by the
    nearest image-class prototype. Audio classes: z (0), 1..9; "o" (10) is left out."""
    (img_tr, img_te), (aud_tr, aud_te) = static, temporal
    lsm_img = LSM(LSMConfig(n_inputs=img_tr.n_channels, n_outputs=10, n_steps=img_tr.n_steps, seed=seed))
    lsm_aud = LSM(LSMConfig(n_inputs=aud_tr.n_channels, n_outputs=11, n_steps=aud_tr.n_steps, seed=seed + 50))
    fi_tr, _ = reservoir_features(lsm_img, img_tr)
    fi_te, _ = reservoir_features(lsm_img, img_te)
    fa_tr, _ = reservoir_features(lsm_aud, aud_tr)
    fa_te, _ = reservoir_features(lsm_aud, aud_te)
    yi_tr, yi_te = torch.from_numpy(img_tr.labels), torch.from_numpy(img_te.labels)
    ya_tr, ya_te = torch.from_numpy(aud_tr.labels), torch.from_numpy(aud_te.labels)
    seen_a, seen_i = ya_tr < 7, yi_tr < 7
    torch.manual_seed(seed)
    ha = ProjectionHead([200, 200, 64], loss="contrastive", n_classes=11)
    hi = ProjectionHead([200, 200, 64], loss="contrastive", n_classes=10)
    train_cross_modal(ha, hi, fa_tr[seen_a], ya_tr[seen_a], fi_tr[seen_i], yi_tr[seen_i], epochs=epochs,
                      lr=1e-3, seed=seed)
    unseen = [7, 8, 9]
    acc = zero_shot_accuracy(ha, hi, fa_te, ya_te, fi_te, yi_te, unseen)
    seen_acc = zero_shot_accuracy(ha, hi, fa_te, ya_te, fi_te, yi_te, list(range(1, 7)))
    return {"unseen_classes": unseen, "zero_shot_accuracy": acc, "chance": 1 / len(unseen),
            "seen_classes_1_to_6_accuracy": seen_acc, "seed": seed,
            "note": "the two stand-ins share no structure between a digit's image and its 'word' "
                    "(an arbitrary phoneme order), so nothing carries over to unseen classes: each "
                    "unseen audio class lands on one image prototype as a whole, and the accuracy "
                    "is that of an arbitrary assignment. The mechanism is tested on data with a "
                    "shared class code (tests/neuro/models/lsm/test_lsm_readout.py); seen-class retrieval "
                    "shows the trained alignment."}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nmnist", help="N-MNIST folder (Train/, Test/)")
    p.add_argument("--ntidigits", help="n-tidigits.hdf5")
    p.add_argument("--max-samples", type=int, default=None, help="N-MNIST: evenly spaced subset per split")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=100, help="ANN readout epochs (reference: 100)")
    p.add_argument("--const", action="store_true", help="use the reference's literal weight scale")
    p.add_argument("--int-samples", type=int, default=1000, help="test samples run as integer graphs")
    p.add_argument("--quick", action="store_true", help="one seed, 20 epochs, one device setting")
    p.add_argument("--threads", type=int, default=1, help="torch threads (small batched steps: 1 is fastest)")
    p.add_argument("--out", default="examples/results/lsm_nmnist.json")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.int_samples = args.seeds[:1], 20, 256
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    tasks = load(args)
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "args": {k: v for k, v in vars(args).items()},
        "tasks": {},
    }
    for name, (train, test, what, ref) in tasks.items():
        print(f"[{name}] {what}: {len(train)} train / {len(test)} test, T={train.n_steps}, "
              f"{train.n_channels} channels, {train.n_classes} classes")
        result["tasks"][name] = {"data": what, "n_train": len(train), "n_test": len(test),
                                 "reference": ref, **run_task(name, train, test, ref, args)}
    if not (args.nmnist or args.ntidigits):
        zs = zero_shot(tasks["static"][:2], tasks["temporal"][:2], args.seeds[0], args.epochs)
        print(f"[zero-shot audio -> image] digits {zs['unseen_classes']}: {zs['zero_shot_accuracy']:.4f} "
              f"(chance {zs['chance']:.3f}; seen digits 1..6: {zs['seen_classes_1_to_6_accuracy']:.4f})")
        result["zero_shot"] = zs
    result["seconds"] = time.perf_counter() - start
    out = Path(args.out)
    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=1)))
    print(f"wrote {out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
