import os
import pickle

import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint

from ktan_det.models.teacher import TeacherCheckpointError, read_teacher_checkpoint


class _Payload:
    """Runs a side effect when unpickled: what a malicious checkpoint would do."""

    def __reduce__(self):
        return (os.mkdir, ('/tmp/ktan-det-pwned',))


def test_message_hub_and_numpy_state_load_under_safe_loading(tmp_path):
    hub = MessageHub.get_instance('safe-load-test')
    for value in (0.5, 0.25):
        hub.update_scalar('train/loss', value)
    hub.update_info('iter', 3)
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), state_dict=dict(w=torch.ones(2))), path)
    loaded = torch.load(path)  # torch's default: weights_only=True
    restored = MessageHub.get_instance('safe-load-restored')
    restored.load_state_dict(loaded['message_hub'])
    assert restored.get_scalar('train/loss').mean() == pytest.approx(0.375)
    assert restored.get_info('iter') == 3


def test_arbitrary_object_is_refused_and_never_runs(tmp_path):
    marker = '/tmp/ktan-det-pwned'
    if os.path.isdir(marker):
        os.rmdir(marker)
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        torch.save(dict(state_dict=dict(w=torch.ones(1)), meta=_Payload()), f)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
    with pytest.raises(TeacherCheckpointError, match=f'{path} could not be read.*'
                       'UnpicklingError'):
        read_teacher_checkpoint(str(path))
    assert not os.path.exists(marker)


def test_getattr_is_only_allowed_for_history_buffer_statistics(tmp_path):
    class Lookup:
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return (getattr, (HistoryBuffer, self.name))

    path = tmp_path / 'getattr.pth'
    torch.save(dict(x=Lookup('mean')), path)
    assert torch.load(path)['x'] is HistoryBuffer.mean
    torch.save(dict(x=Lookup('__init__')), path)
    with pytest.raises(pickle.UnpicklingError, match='only allows HistoryBuffer statistics'):
        torch.load(path)
