"""EGRU gesture recognition: the DVS128 Gesture network trained on a DVS128 Gesture folder
(``--data``: AEDAT 3.1 files, ``_labels.csv``, ``trials_to_train.txt`` / ``trials_to_test.txt``;
the paper's network sizes) or, without ``--data``, on the offline stand-in (synthetic moving-blob
gestures written in AEDAT 3.1 and read back through the same reader; a small network on 32 x 32
frames). Reports held-out accuracy and activity sparsity per epoch.

    python examples/egru_gesture.py --out examples/results/egru_gesture.json

Stand-in defaults: 16 users of 22 gestures each (2 per class; 12 users train, 4 unseen users
test: each user draws his own trajectory variant of every class, so the test asks for the class,
not the user), 40 epochs, Adam lr 3e-3, 1 thread.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from neuro.models.base import TrainRequest
from neuro.models.egru import FAMILY


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="DVS128 Gesture folder (default: the stand-in)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--standin-users", type=int, default=16,
                   help="stand-in size: users (a quarter held out for the test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "neuro_egru_gesture",
                   help="where the stand-in and the checkpoint go")
    p.add_argument("--out", type=Path, default=Path("examples/results/egru_gesture.json"))
    args = p.parse_args()
    parser = argparse.ArgumentParser()
    FAMILY.add_arguments(parser)
    targs = parser.parse_args(["--task", "gesture"])
    torch.set_num_threads(1)
    config: dict = {"lr": args.lr}
    if args.data is None:
        config["standin_users"] = args.standin_users
    t0 = time.perf_counter()
    res = FAMILY.train(TrainRequest(data=args.data, config=config, epochs=args.epochs, seed=args.seed,
                                    out=args.work, args=targs))
    out = {"data": res.info["data"], "epochs": args.epochs, "seed": args.seed, "lr": args.lr,
           "standin_users": args.standin_users if args.data is None else None,
           "test_accuracy": res.info["test"]["accuracy"],
           "test_activity_sparsity": res.info["test"]["activity_sparsity"],
           "history": res.info["history"], "seconds": time.perf_counter() - t0,
           "machine": {"cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "threads": torch.get_num_threads()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(res.summary)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
