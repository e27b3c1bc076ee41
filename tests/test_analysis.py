"""tools/loss_gradients.py: the gradient each KTAN loss term puts on the student."""
import copy

import pytest
import torch
from mmengine.config import Config

from ktan_det.analysis import FEATURE_MODULES, loss_gradients
from ktan_det.visualization import load_distiller

from conftest import load_tool, tiny_batch

gradients_tool = load_tool('loss_gradients')


def test_each_term_is_weighted_as_training_weighs_it(tiny_ktan_run):
    config, _, checkpoint = tiny_ktan_run
    cfg = Config.fromfile(config)
    distiller = load_distiller(cfg, checkpoint).train()
    batch = tiny_batch(cfg)

    def gradients():
        torch.manual_seed(0)  # the same proposals sampled each time
        return loss_gradients(distiller, copy.deepcopy(batch))

    grads = gradients()
    assert set(grads) == {'detection', 'imitation', 'adv', 'soft'}
    size = sum(p.numel() for name, p in distiller.student.named_parameters()
               if name.split('.')[0] in FEATURE_MODULES)
    assert all(grad.numel() == size and grad.abs().sum() > 0 for grad in grads.values())
    distiller.loss_imitation.loss_weight *= 2
    doubled = gradients()
    torch.testing.assert_close(doubled['imitation'], 2 * grads['imitation'])
    torch.testing.assert_close(doubled['detection'], grads['detection'])


def test_tool_prints_one_row_per_term(tiny_ktan_run, capsys):
    config, _, checkpoint = tiny_ktan_run
    text = gradients_tool.main([config, checkpoint, '--batches', '1',
                                '--cfg-options', 'model.loss_soft=None'])
    rows = [line.split('|')[1].strip() for line in text.splitlines()[2:]]
    assert rows == ['detection', 'imitation', 'adv']
    assert text in capsys.readouterr().out
    # A term's cosine with itself is left out.
    assert text.splitlines()[2].split('|')[4].strip() == ''


def test_tool_refuses_zero_batches(tiny_ktan_run):
    config, _, checkpoint = tiny_ktan_run
    with pytest.raises(SystemExit):
        gradients_tool.main([config, checkpoint, '--batches', '0'])
