"""The balancing rule: KTAN loss weights set relative to the detection loss's gradient."""
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import OPTIM_WRAPPERS
from test_distiller import _at_iter, _build
from test_mixed_precision import CPUAutocastOptimWrapper, cpu_nms_takes_half  # noqa: F401

from ktan_det.models import DistillationSetupError
from ktan_det.models.balance import LossBalancer, gradient_norm
from ktan_det.models.schedule import KTANSchedule, RunLength

from conftest import KTAN_CFG, tiny_batch, tiny_run_config

TARGETS = dict(imitation=0.5, adv=0.05, soft=0.2)


def test_known_norms_set_the_factor_from_the_windows_sums_then_it_stays():
    schedule = KTANSchedule(['imitation', 'soft'])
    schedule.set_run(RunLength(max_iters=100))
    balancer = LossBalancer(dict(imitation=0.2), window=dict(fraction=0.02))  # 2 iterations
    feats = [torch.ones(2, 3, requires_grad=True), torch.ones(1, 2, requires_grad=True)]

    def step(iteration, det_factor, term_factor, scale):
        detection = det_factor * sum(f.sum() for f in feats)  # gradient norm det_factor * sqrt(8)
        term = scale * term_factor * feats[0].sum()  # at its config weight: term_factor * sqrt(6)
        return balancer.observe(schedule, iteration, detection, dict(imitation=term),
                                dict(imitation=scale, soft=1.0), feats)

    assert step(0, 3.0, 1.0, 0.5) == pytest.approx(dict(imitation=0.2 * 3 * 8 ** .5 / 6 ** .5))
    assert schedule.balance_of('imitation') == pytest.approx(0.2 * 3 * (8 / 6) ** .5)
    assert schedule.balance_of('soft') == 1.0  # not balanced
    # The factor comes from the window's sums: (3 + 1) / (1 + 3) detection over term norms.
    assert step(1, 1.0, 3.0, 0.7)['imitation'] == pytest.approx(0.2 * (8 / 6) ** .5)
    assert step(2, 9.0, 1.0, 1.0) is None  # past the window: fixed
    assert schedule.balance_of('imitation') == pytest.approx(0.2 * (8 / 6) ** .5)


def test_gradient_norm_covers_every_map_and_keeps_the_graph():
    feats = [torch.ones(3, requires_grad=True), torch.ones(4, requires_grad=True)]
    loss = 2 * feats[0].sum() + (feats[1] ** 2).sum()
    assert gradient_norm(loss, feats) == pytest.approx((3 * 4 + 4 * 4) ** .5)
    loss.backward()  # the step's own backward pass still runs


def test_bad_balance_settings_name_the_problem(ktan_cfg_balanced):
    with pytest.raises(ValueError, match='unknown losses'):
        LossBalancer(dict(imitaton=1.0), window=10)
    with pytest.raises(ValueError, match='must be > 0'):
        LossBalancer(dict(imitation=0.0), window=10)
    ktan_cfg_balanced.model.loss_soft = None
    with pytest.raises(DistillationSetupError, match="names \\['soft'\\].*turns off"):
        _build(ktan_cfg_balanced)


@pytest.fixture
def ktan_cfg_balanced(tiny_data, tiny_teacher_ckpt, tmp_path):
    """A tiny KTAN config whose three losses are balanced over the first 2 iterations, with
    every learning rate 0: the same batch then gives the same losses after an update."""
    cfg = tiny_run_config(KTAN_CFG, tiny_data, str(tmp_path))
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    cfg.model.train_cfg = dict(tgn_iters=0, adv_start_iter=0, disc_steps=1,
                               balance=dict(targets=TARGETS, window=2))
    cfg.optim_wrapper.student.optimizer.lr = 0.0
    cfg.optim_wrapper.discriminator.optimizer.lr = 0.0
    return cfg


def _pulls(model, batch, iteration):
    """Each KTAN term's gradient norm on the student's neck outputs over the detection
    loss's, as the step at ``iteration`` weighs them."""
    torch.manual_seed(1)  # the same RoI samples each time
    data = model.data_preprocessor(batch, True)
    inputs, data_samples = data['inputs'], data['data_samples']
    losses, record = model.student_forward(inputs, data_samples)
    stage = model.schedule.stage(iteration)
    targets = model.teacher_targets(stage, inputs, data_samples, record)
    distilled = model.ktan_losses(stage, inputs, data_samples, targets, record)
    detection = gradient_norm(model.parse_losses(losses)[0], record.neck_feats)
    return {name[len('loss_'):]: float(gradient_norm(loss, record.neck_feats) / detection)
            for name, loss in distilled.items()}


def test_each_balanced_term_pulls_its_target_fraction_of_the_detection_loss(ktan_cfg_balanced):
    model, optim = _build(ktan_cfg_balanced)
    model.train()
    batch = tiny_batch(ktan_cfg_balanced)
    before = _pulls(model, batch, 0)  # config weights
    torch.manual_seed(1)
    _at_iter(0)
    logs = model.train_step(batch, optim)
    assert {k: logs[f'balance_{k}'] for k in TARGETS} == pytest.approx(
        {k: TARGETS[k] / before[k] for k in TARGETS}, rel=1e-4)
    assert _pulls(model, batch, 1) == pytest.approx(TARGETS, rel=1e-4)
    # Later steps of the window average in; after it the factors stay.
    for iteration in (1, 2, 3):
        _at_iter(iteration)
        logs = model.train_step(tiny_batch(ktan_cfg_balanced, 4), optim)
        if iteration == 1:
            in_window = dict(model.schedule._balance)
    assert model.schedule._balance == in_window
    assert logs['balance_adv'] == in_window['adv']


def test_resume_continues_the_window_exactly(ktan_cfg_balanced):
    batches = [tiny_batch(ktan_cfg_balanced, 2), tiny_batch(ktan_cfg_balanced, 4)]

    def train(model, optim, iterations):
        for iteration in iterations:
            torch.manual_seed(iteration)
            _at_iter(iteration)
            model.train_step(batches[iteration], optim)

    through, optim = _build(ktan_cfg_balanced)
    through.train()
    train(through, optim, [0, 1])
    stopped, optim = _build(ktan_cfg_balanced)
    stopped.train()
    train(stopped, optim, [0])
    resumed, optim = _build(ktan_cfg_balanced)
    resumed.load_state_dict(stopped.state_dict())
    resumed.train()
    assert 'balancer.norm_sums' in stopped.state_dict()
    assert resumed.schedule._balance == stopped.schedule._balance != through.schedule._balance
    train(resumed, optim, [1])
    assert resumed.schedule._balance == pytest.approx(through.schedule._balance, rel=1e-6)
    assert torch.allclose(resumed.balancer.norm_sums, through.balancer.norm_sums, rtol=1e-6)


@OPTIM_WRAPPERS.register_module(force=True)
class LossScalingCPUAutocastOptimWrapper(CPUAutocastOptimWrapper):
    """CPU float16 autocast with a fixed loss scale, which it reports and applies as
    AmpOptimWrapper does with its GradScaler (unscaled before the update)."""

    def __init__(self, *args, loss_scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_scaler = SimpleNamespace(get_scale=lambda: loss_scale)

    def backward(self, loss, **kwargs):
        super().backward(loss * self.loss_scaler.get_scale(), **kwargs)

    def step(self, **kwargs):
        for group in self.optimizer.param_groups:
            for param in group['params']:
                if param.grad is not None:
                    param.grad.div_(self.loss_scaler.get_scale())
        super().step(**kwargs)


@pytest.mark.usefixtures('cpu_nms_takes_half')
def test_under_float16_the_loss_scale_cancels_out_of_the_factors(ktan_cfg_balanced):
    factors, batch = [], tiny_batch(ktan_cfg_balanced)
    for loss_scale in (256.0, 4096.0):
        ktan_cfg_balanced.optim_wrapper.student.update(
            type='LossScalingCPUAutocastOptimWrapper', loss_scale=loss_scale)
        model, optim = _build(ktan_cfg_balanced)
        model.train()
        torch.manual_seed(1)
        _at_iter(0)
        model.train_step(batch, optim)
        factors.append(dict(model.schedule._balance))
    assert factors[0]['imitation'] != 1.0
    assert factors[0] == pytest.approx(factors[1], rel=1e-2)
