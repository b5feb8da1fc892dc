"""The EGRU language model under DDP (gloo, two CPU processes): the replicas stay identical and
equal one process trained on both ranks' streams at once (dropout off, the regulariser's
mean terms only, so the global loss is the mean of the ranks' losses)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

CFG = dict(vocab_size=30, emb_dim=8, hidden_sizes=[12, 8], dropout_emb=0.0, dropout_words=0.0,
           dropout_forward=0.0, dropout_output=0.0, dropconnect=0.0, zoneout=0.0,
           alpha=1e-3, beta=0.0, gamma=1e-3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(batch_size: int) -> dict:
    from neuro.models.egru import EGRULanguageModel, EGRULMConfig
    from neuro.models.egru.training import fit

    torch.manual_seed(0)
    model = EGRULanguageModel(EGRULMConfig.from_dict(CFG))
    words = torch.arange(2000) * 7 % 30
    fit(model, words, epochs=2, batch_size=batch_size, bptt=10, max_batches=5, progress=False,
        log=lambda s: None)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from neuro.training import distributed

    assert distributed.init_from_env() and distributed.world_size() == world
    torch.save(_train(batch_size=2), f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_process_ddp_equals_one_process_with_the_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    torch.set_num_threads(1)
    single = _train(batch_size=4)  # the two ranks' 2 + 2 streams in one batch
    for k in a:
        torch.testing.assert_close(a[k], single[k], rtol=1e-4, atol=1e-5, msg=k)
    torch.manual_seed(0)
    from neuro.models.egru import EGRULanguageModel, EGRULMConfig

    init = EGRULanguageModel(EGRULMConfig.from_dict(CFG)).state_dict()
    assert not torch.equal(init["layers.0.recurrent_kernel"], a["layers.0.recurrent_kernel"])
