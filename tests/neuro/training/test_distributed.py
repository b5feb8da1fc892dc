"""DDP on the CPU (gloo): two processes train the delay SNN and their replicas stay identical."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from neuro.datasets import delay_pattern_task
    from neuro.models import DelaySNN, DelaySNNConfig
    from neuro.models.delay_snn import train_delay_snn
    from neuro.training import distributed

    assert distributed.init_from_env() and distributed.world_size() == world
    train, test = delay_pattern_task(256, 64, seed=3)
    torch.manual_seed(0)  # same initial replica on every rank
    model = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=16, n_layers=1, n_outputs=4, max_delay=5))
    train_delay_snn(model, train, test, epochs=2, batch_size=32, progress=False, log=lambda s: None)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    world = 2
    mp.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # they trained: the weights moved away from the common initial state
    torch.manual_seed(0)
    from neuro.models import DelaySNN, DelaySNNConfig

    init = DelaySNN(DelaySNNConfig(n_inputs=16, n_hidden=16, n_layers=1, n_outputs=4, max_delay=5))
    assert not torch.equal(init.state_dict()["0.weight"], a["0.weight"])
