"""Train the DCLS-delays SNN on SHD exactly as the reference (Hammouamri et al., ICLR 2024).

    python examples/train_delays_shd.py --data /path/to/shd     # holds shd_train.h5(.gz), shd_test.h5(.gz)
    torchrun --nproc_per_node 2 examples/train_delays_shd.py --data /path/to/shd   # DDP

Setup (models.md section 1): 700 channels summed in groups of 5 -> 140 inputs, 10 ms frames, 1 s;
2 hidden layers of 256 LIF (tau 1.005 steps, hard reset, detach_reset, ATan 5), BatchNorm,
dropout 0.4 shared over time, max_delay 25 steps (250 ms), 150 epochs, batch 256, weights Adam
1e-3 (OneCycle to 5e-3), positions Adam 0.1 (cosine), sigma 12 -> 0.23 by epoch 37, integer delays
at evaluation. Published: about 95 % test accuracy on SHD (95.07 +- 0.24 %, not re-measured here:
the data need a download). ``--delay-limit 62`` keeps every delay within Loihi 2's DelayDense.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from neuro.checkpoint import save_checkpoint
from neuro.datasets import load_shd
from neuro.models import DelaySNN, DelaySNNConfig
from neuro.models.delay_snn import train_delay_snn
from neuro.training import distributed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="directory with the SHD files (or use the cache)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--delay-limit", type=int, default=None, help="max delay in steps (Loihi 2: 62)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/delays_shd")
    args = p.parse_args()
    distributed.init_from_env()
    train, test = load_shd("train", data=args.data), load_shd("test", data=args.data)
    torch.manual_seed(args.seed)
    model = DelaySNN(DelaySNNConfig(delay_limit=args.delay_limit))  # the SHD defaults
    result = train_delay_snn(model, train, test, epochs=args.epochs, batch_size=args.batch_size,
                             seed=args.seed)
    if distributed.is_main():
        path = save_checkpoint(Path(args.out) / "model.safetensors", model, name=model.name,
                               config=model.config_dict(), info=result.as_dict())
        print(f"best test accuracy {max(result.test_accuracy):.4f}, last "
              f"{result.test_accuracy[-1]:.4f}; checkpoint {path}")


if __name__ == "__main__":
    main()
