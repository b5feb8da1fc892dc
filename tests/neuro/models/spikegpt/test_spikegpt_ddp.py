"""SpikeGPT under DDP (gloo, two CPU processes): replicas stay identical and differ from a
single-process run (each rank drew its own windows)."""
import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

CFG = dict(vocab_size=20, n_layer=1, n_embd=8, ctx_len=8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig
    from neuro.models.spikegpt.training import fit
    from neuro.training import distributed

    assert distributed.init_from_env() and distributed.world_size() == world
    torch.manual_seed(0)
    model = SpikeGPT(SpikeGPTConfig(**CFG))
    m = fit(model, np.arange(400) % 20, steps=3, batch_size=2, lr=1e-2, warmup=1,
            progress=False)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()},
               f"{out}/rank{rank}.pt")
    assert m["tokens"] == 3 * 2 * 8 * world
    dist.destroy_process_group()


def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    from neuro.models.spikegpt import SpikeGPT, SpikeGPTConfig

    torch.manual_seed(0)
    init = SpikeGPT(SpikeGPTConfig(**CFG)).state_dict()
    assert not torch.equal(init["blocks.0.att.output.weight"], a["blocks.0.att.output.weight"])
