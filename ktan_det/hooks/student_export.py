"""Export the student as a plain MMDetection model at the end of training."""
import os.path as osp
from typing import Dict

from mmdet.registry import HOOKS
from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook

from ..utils.export import export_student, export_student_checkpoint
from .runner_state import ktan_model


@HOOKS.register_module()
class StudentExportHook(Hook):
    """After training, write ``student.pth`` and ``student_config.py`` to
    ``work_dir/<out_dir>``: a checkpoint with the student's weights and plain metadata only and
    its plain MMDetection config, which stock MMDetection loads without ktan_det under torch's
    safe loading (``tools/test.py``, ``DetInferencer``). ``student.pth`` holds the last
    weights; when the ``CheckpointHook`` keeps the best checkpoint (``save_best``, as every KTAN
    config does), its student is exported too, as ``student_best.pth`` (one metric) or
    ``student_best_<metric>.pth`` (several).

    Args:
        out_dir: Directory under the work directory.
    """

    priority = 'LOW'

    def __init__(self, out_dir: str = 'student_export') -> None:
        self.out_dir = out_dir

    @master_only
    def after_train(self, runner) -> None:
        model = ktan_model(runner)
        dataset = getattr(runner.train_dataloader, 'dataset', None)
        meta = dict(dataset_meta=getattr(dataset, 'metainfo', {}), iter=runner.iter,
                    epoch=runner.epoch)
        out_dir = osp.join(runner.work_dir, self.out_dir)
        checkpoint, config = export_student(model.state_dict(), runner.cfg, out_dir, meta)
        runner.logger.info(f'student exported: {checkpoint} (last) with config {config}')
        for name, best in _best_checkpoints(runner).items():
            checkpoint, _ = export_student_checkpoint(best, out_dir, runner.cfg, name)
            runner.logger.info(f'student exported: {checkpoint} (from {best})')


def _best_checkpoints(runner) -> Dict[str, str]:
    """``export file name -> best checkpoint`` of the runner's CheckpointHook."""
    hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
    paths = {}
    if getattr(hook, 'best_ckpt_path', None):
        paths['student_best.pth'] = hook.best_ckpt_path
    for key, path in (getattr(hook, 'best_ckpt_path_dict', None) or {}).items():
        if path:
            paths[f'student_best_{key.replace("/", "_")}.pth'] = path
    return {name: path for name, path in paths.items() if osp.isfile(path)}
