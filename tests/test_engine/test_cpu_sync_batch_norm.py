"""CPUSyncBatchNorm over 2 gloo processes equals one BatchNorm over the whole batch; the
parameter-consistency hook sees identical and diverged replicas."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from nlseg.engine import CPUSyncBatchNorm, convert_to_cpu_sync_batch_norm, parameter_digests
from tests.helpers import free_port

CHANNELS = 3


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, CHANNELS, 5, 6, generator=g, dtype=torch.float64) * 3 + 1
    w = torch.randn(4, CHANNELS, 5, 6, generator=g, dtype=torch.float64)
    return x, w


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        x, w = _data()
        half = x.shape[0] // world_size
        x_local = x[rank * half:(rank + 1) * half].clone().requires_grad_(True)
        bn = convert_to_cpu_sync_batch_norm(nn.SyncBatchNorm(CHANNELS, momentum=0.3)).double()
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
            bn.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
        out = bn(x_local)
        (out * w[rank * half:(rank + 1) * half]).sum().backward()
        grads = torch.cat([bn.weight.grad, bn.bias.grad])
        dist.all_reduce(grads)  # what DDP does with parameter gradients
        # the consistency hook's digests: equal replicas, then one perturbed replica
        digests = [parameter_digests(bn)]
        if rank == 1:
            with torch.no_grad():
                bn.weight[0] += 1e-7
        digests.append(parameter_digests(bn))
        torch.save(dict(out=out.detach(), grad_x=x_local.grad, grads=grads,
                        running_mean=bn.running_mean, running_var=bn.running_var,
                        digests=digests), os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def two_process_results(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('syncbn'))
    mp.spawn(_worker, args=(2, free_port(), out_dir), nprocs=2, join=True)
    return [torch.load(os.path.join(out_dir, f'rank{r}.pt')) for r in range(2)]


def test_matches_batch_norm_over_the_global_batch(two_process_results):
    x, w = _data()
    x = x.clone().requires_grad_(True)
    ref = nn.BatchNorm2d(CHANNELS, momentum=0.3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
        ref.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    out = ref(x)
    (out * w).sum().backward()
    got_out = torch.cat([r['out'] for r in two_process_results])
    got_grad_x = torch.cat([r['grad_x'] for r in two_process_results])
    torch.testing.assert_close(got_out, out.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got_grad_x, x.grad, rtol=1e-9, atol=1e-10)
    for r in two_process_results:
        torch.testing.assert_close(r['grads'], torch.cat([ref.weight.grad, ref.bias.grad]))
        torch.testing.assert_close(r['running_mean'], ref.running_mean)
        torch.testing.assert_close(r['running_var'], ref.running_var)


def test_parameter_digests_detect_a_diverged_replica(two_process_results):
    (equal0, perturbed0), (equal1, perturbed1) = [r['digests'] for r in two_process_results]
    assert equal0 == equal1
    assert equal0 == perturbed0  # rank 0 untouched
    assert perturbed0['weight'] != perturbed1['weight']
    assert perturbed0['bias'] == perturbed1['bias']


def test_single_process_is_plain_batch_norm():
    torch.manual_seed(0)
    x = torch.randn(2, CHANNELS, 4, 4)
    sync = convert_to_cpu_sync_batch_norm(nn.SyncBatchNorm(CHANNELS))
    ref = nn.BatchNorm2d(CHANNELS)
    torch.testing.assert_close(sync(x), ref(x))
    torch.testing.assert_close(sync.running_var, ref.running_var)
    assert int(sync.num_batches_tracked) == 1
    sync.eval(), ref.eval()
    torch.testing.assert_close(sync(x), ref(x))


def test_conversion_keeps_parameters_and_state_dict_keys():
    model = nn.Sequential(nn.Conv2d(3, CHANNELS, 1), nn.SyncBatchNorm(CHANNELS))
    weight = model[1].weight
    keys = list(model.state_dict())
    converted = convert_to_cpu_sync_batch_norm(model)
    assert isinstance(converted[1], CPUSyncBatchNorm)
    assert converted[1].weight is weight
    assert list(converted.state_dict()) == keys
