"""Guard the teacher: its weights are its checkpoint's, checkpoints name it, it stays frozen.

One hook per job; :class:`TeacherGuardHook`, the name the configs use, installs them all.
"""
import hashlib
import warnings

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..models.teacher import (
    MAX_LISTED_KEYS,
    TeacherCheckpointError,
    is_remote_path,
    read_teacher_checkpoint,
)
from .hook_group import HookGroup
from .runner_state import ktan_model

META_KEY = 'ktan_teacher'


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (``hashlib.file_digest`` needs Python 3.11; we
    support 3.9)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


@HOOKS.register_module()
class TeacherCheckHook(Hook):
    """Before training (after the runner's ``init_weights`` and any resume), the teacher's
    weights must equal its checkpoint's, tensor for tensor, and its classes (names and order,
    from the checkpoint's ``dataset_meta``, or ``CLASSES`` in MMDetection 2.x model-zoo files)
    the training set's; otherwise a clear error names what differs."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = ktan_model(runner)
        model.check_teacher_loaded()
        expected, meta = read_teacher_checkpoint(model.teacher_ckpt)
        actual = model.teacher.state_dict()
        differing = [k for k, v in expected.items()
                     if k not in actual or not torch.equal(actual[k].cpu(), v.cpu())]
        if differing:
            raise TeacherCheckpointError(
                f'the teacher no longer holds the weights of {model.teacher_ckpt}: '
                f'{len(differing)} tensors differ ({", ".join(differing[:MAX_LISTED_KEYS])}). '
                'Something re-initialised or loaded over it (init_cfg, load_from)?')
        teacher_classes = (meta.get('dataset_meta') or {}).get('classes') or meta.get('CLASSES')
        dataset = getattr(runner.train_dataloader, 'dataset', None)
        student_classes = getattr(dataset, 'metainfo', {}).get('classes')
        if teacher_classes is None or student_classes is None:
            return
        if list(teacher_classes) != list(student_classes):
            mismatch = next((i for i, (a, b) in enumerate(zip(teacher_classes, student_classes))
                             if a != b), min(len(teacher_classes), len(student_classes)))
            raise TeacherCheckpointError(
                f'teacher {model.teacher_ckpt} was trained on {len(teacher_classes)} classes, '
                f'the student trains on {len(student_classes)}, and they first differ at index '
                f'{mismatch}: the classes must be the same, in the same order')


@HOOKS.register_module()
class TeacherRecordHook(Hook):
    """Every checkpoint names its teacher: path, SHA-256 and config under
    ``meta['ktan_teacher']``; resuming from a checkpoint recorded with another teacher file is
    refused (a teacher given by URL, with no local file to hash, is identified by its
    address)."""

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.record = None

    def before_run(self, runner) -> None:
        model = ktan_model(runner)
        path = model.teacher_ckpt
        self.record = dict(
            path=path,
            sha256=file_sha256(path) if path and not is_remote_path(path) else None,
            config=model.teacher_cfg_text)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:
            return
        saved = checkpoint.get('meta', {}).get(META_KEY)
        if saved is None or self.record is None:
            return
        identity = 'sha256' if saved.get('sha256') and self.record['sha256'] else 'path'
        if saved.get(identity) != self.record[identity]:
            raise TeacherCheckpointError(
                f'refusing to resume: the checkpoint was trained with teacher {saved["path"]} '
                f'({identity} {saved.get(identity)}), but model.teacher_ckpt is now '
                f'{self.record["path"]} ({identity} {self.record[identity]}). Resume with the '
                'same teacher, or start a new run')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = dict(self.record or {})


@HOOKS.register_module()
class TeacherFreezeHook(Hook):
    """Throughout training the teacher stays in eval mode with no gradients: a change (by a
    user hook, say) is undone before the next iteration, with a warning."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        teacher = ktan_model(runner).teacher
        if teacher.training:
            teacher.eval()
            warnings.warn('TeacherFreezeHook: the teacher was in train mode; set back to eval',
                          stacklevel=2)
        if any(p.requires_grad for p in teacher.parameters()):
            teacher.requires_grad_(False)
            warnings.warn('TeacherFreezeHook: teacher parameters required gradients; frozen '
                          'again', stacklevel=2)


@HOOKS.register_module()
class TeacherEvalHook(Hook):
    """Evaluate the teacher on the val set once before training and log its metrics as
    ``teacher/...`` (what the student is aiming at)."""

    priority = 'VERY_HIGH'

    @torch.no_grad()
    def before_train(self, runner) -> None:
        model = ktan_model(runner)
        loop = runner.val_loop
        for data_batch in loop.dataloader:
            data = model.data_preprocessor(data_batch, False)
            outputs = model.teacher(data['inputs'], data['data_samples'], mode='predict')
            loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
        metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        runner.visualizer.add_scalars({f'teacher/{k}': v for k, v in metrics.items()},
                                      step=runner.iter)
        runner.logger.info('teacher on the val set: ' + '  '.join(
            f'{k}: {v:.4f}' for k, v in metrics.items() if isinstance(v, float)))


@HOOKS.register_module()
class TeacherGuardHook(HookGroup):
    """Make sure the teacher a run distils from is the one it claims to be: installs
    :class:`TeacherCheckHook`, :class:`TeacherRecordHook`, :class:`TeacherFreezeHook` and,
    with ``evaluate=True``, :class:`TeacherEvalHook`.

    Args:
        evaluate: Evaluate the teacher once before training.
    """

    priority = 'VERY_HIGH'

    def __init__(self, evaluate: bool = False) -> None:
        parts = [TeacherCheckHook(), TeacherRecordHook(), TeacherFreezeHook()]
        super().__init__(parts + [TeacherEvalHook()] if evaluate else parts)
