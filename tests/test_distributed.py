"""Two CPU processes with the gloo backend train KTAN through MMEngine's
MMSeparateDistributedDataParallel, as the configs ask for on GPUs."""
import os.path as osp
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.model import MMDistributedDataParallel, MMSeparateDistributedDataParallel
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from conftest import KTAN_CFG, tiny_run_config

STEPS = 3


def _ktan_cfg(tiny_data, teacher_ckpt, work_dir):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, work_dir)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.train_cfg = dict(tgn_iters=1, adv_start_iter=0, disc_steps=1)
    # P2-P5 only: the tiny P6 maps give 16 positions for 32 teacher channels, too few for a
    # unique PCA of T2S (its 16th eigenvector would be arbitrary, rank vs reference).
    cfg.model.tap_levels = [0, 1, 2, 3]
    # Take every anchor and proposal instead of random samples: then the shards' gradients
    # average to the combined batch's, up to how each loss normalises over its samples.
    # (The teacher's heads train T2S in the TGN stage, so the same holds for its samplers.)
    for detector in (cfg.model.student, cfg.model.teacher):
        detector.train_cfg.rpn.sampler.num = 100000
        detector.train_cfg.rcnn.sampler.num = 100000
    # Plain SGD: Adam's per-parameter normalisation would blow the tiny normalisation
    # differences up on parameters with near-zero gradients; the sync is what is tested here.
    cfg.optim_wrapper.student.optimizer = dict(type='SGD', lr=0.02, momentum=0.9,
                                               weight_decay=1e-4)
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'RandomFlip':
            transform['prob'] = 0.0
    return cfg


def _train(model, optim, batches, wrapper=None):
    # Iteration 0 is the TGN stage (T2S trains through its own DDP wrapper); then distillation.
    for step in range(STEPS):
        MessageHub.get_current_instance().update_info('iter', step)
        (wrapper or model).train_step(batches[step], optim)


def _nan_on_rank1_step1(model, rank):
    """Make rank 1's imitation loss NaN on the second step only."""
    healthy, calls = model.loss_imitation.forward, []

    def forward(*args):
        calls.append(None)
        loss = healthy(*args)
        return loss * float('nan') if rank == 1 and len(calls) == 2 else loss
    model.loss_imitation.forward = forward


def _worker(rank, world_size, init_file, cfg_text, batches, out_dir, nan_step=False):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size)
    torch.set_num_threads(1)
    import ktan_det  # noqa: F401  (a spawned process starts afresh)
    init_default_scope('mmdet')
    cfg = Config.fromstring(cfg_text, '.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    # The test's own wrapper settings: no device_ids on a CPU (the runner would add them).
    wrapper = MMSeparateDistributedDataParallel(model, broadcast_buffers=False,
                                                find_unused_parameters=False)
    optim = build_optim_wrapper(wrapper, cfg.optim_wrapper)
    if nan_step:
        _nan_on_rank1_step1(model, rank)
    _train(model, optim, [b[rank] for b in batches], wrapper)
    torch.save(model.num_skipped_steps, osp.join(out_dir, f'skips{rank}.pth'))
    # What MMEngine's runner writes into checkpoints: the distiller's own state_dict, which
    # must not carry the DDP wrappers' `.module` (nor the teacher).
    torch.save(model.state_dict(), osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def _spawn(*args, timeout: float = 240) -> None:
    """Run ``_worker`` on two ranks; a rank stuck in a collective fails the test, not CI."""
    context = mp.spawn(_worker, args=(2, *args), nprocs=2, join=False)
    deadline = time.time() + timeout
    while not context.join(timeout=5):
        if time.time() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f'the ranks did not finish within {timeout} s: deadlock?')


def test_two_gloo_ranks_agree_and_match_the_combined_batch(tiny_data, tiny_teacher_ckpt,
                                                           tmp_path):
    cfg = _ktan_cfg(tiny_data, tiny_teacher_ckpt, str(tmp_path))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    samples = [[dataset[4 * s + i] for i in range(4)] for s in range(STEPS)]
    shards = [[pseudo_collate(s[:2]), pseudo_collate(s[2:])] for s in samples]
    _spawn(str(tmp_path / 'init'), cfg.pretty_text, shards, str(tmp_path))
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))

    torch.manual_seed(0)
    reference = MODELS.build(cfg.model)
    reference.init_weights()
    initial = {k: v.clone() for k, v in reference.state_dict().items()}
    reference.train()
    _train(reference, build_optim_wrapper(reference, cfg.optim_wrapper),
           [pseudo_collate(s) for s in samples])
    combined = reference.state_dict()

    assert rank0.keys() == combined.keys()
    for part in ('student.', 't2s.', 'discriminator.'):
        keys = [k for k in rank0 if k.startswith(part) and rank0[k].is_floating_point()]
        assert all(torch.equal(rank0[k], rank1[k]) for k in keys), f'{part} differs by rank'
        update = torch.cat([(combined[k] - initial[k]).flatten() for k in keys])
        gap = torch.cat([(rank0[k] - combined[k]).flatten() for k in keys])
        assert update.norm() > 0, f'{part} did not train'
        assert gap.norm() < 0.01 * update.norm(), (part, gap.norm(), update.norm())


def test_a_non_finite_loss_on_one_rank_is_skipped_by_all(tiny_data, tiny_teacher_ckpt,
                                                         tmp_path):
    cfg = _ktan_cfg(tiny_data, tiny_teacher_ckpt, str(tmp_path))
    # Balanced over the two distilling steps, the second of them non-finite on rank 1: both
    # ranks keep the first one's measurement, averaged over them, and set the same factors.
    cfg.model.train_cfg.balance = dict(targets=dict(imitation=0.5, soft=0.2), window=2)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    shards = [[pseudo_collate([dataset[4 * s + i] for i in (0, 1)]),
               pseudo_collate([dataset[4 * s + i] for i in (2, 3)])] for s in range(STEPS)]
    # No deadlock (join returns), both ranks skipped the same step, weights still agree.
    _spawn(str(tmp_path / 'init'), cfg.pretty_text, shards, str(tmp_path), True)
    skips = [int(torch.load(tmp_path / f'skips{r}.pth')) for r in (0, 1)]
    assert skips == [1, 1]
    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    balance = rank0['schedule.balance']  # imitation, adv, soft
    assert balance[0] != 1 and balance[1] == 1 and balance[2] != 1
    sums = rank0['balancer.norm_sums']
    assert torch.isfinite(sums).all() and (sums[0] > 0).all()  # the NaN step left out


def _default_wrapper_worker(rank, world_size, init_file, cfg_text, batch, out_dir):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=world_size)
    import ktan_det  # noqa: F401  (a spawned process starts afresh)
    init_default_scope('mmdet')
    cfg = Config.fromstring(cfg_text, '.py')
    model = MODELS.build(cfg.model)
    model.init_weights()
    # What the runner builds without model_wrapper_cfg (device_ids only on a GPU).
    wrapper = MMDistributedDataParallel(model, broadcast_buffers=False,
                                        find_unused_parameters=True)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    try:
        wrapper.train_step(batch, optim)
        message = 'no error'
    except Exception as error:  # the message is what the test checks
        message = f'{type(error).__name__}: {error}'
    with open(osp.join(out_dir, f'message{rank}.txt'), 'w') as f:
        f.write(message)
    dist.destroy_process_group()


def test_the_default_ddp_wrapper_gets_ktans_error_naming_the_fix(tiny_data, tiny_teacher_ckpt,
                                                                tmp_path):
    cfg = _ktan_cfg(tiny_data, tiny_teacher_ckpt, str(tmp_path))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    mp.spawn(_default_wrapper_worker, nprocs=2, join=True,
             args=(2, str(tmp_path / 'init'), cfg.pretty_text,
                   pseudo_collate([dataset[0], dataset[1]]), str(tmp_path)))
    for rank in (0, 1):
        message = (tmp_path / f'message{rank}.txt').read_text()
        assert message.startswith('RuntimeError') and \
            "model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel')" in message
