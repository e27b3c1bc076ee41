"""Export the student as a plain MMDetection model at the end of training."""
import os.path as osp

from mmdet.registry import HOOKS
from mmengine.dist import master_only
from mmengine.hooks import Hook

from ..utils.export import export_student
from .runner_state import ktan_model


@HOOKS.register_module()
class StudentExportHook(Hook):
    """After training, write ``student.pth`` and ``student_config.py`` to
    ``work_dir/<out_dir>``: a checkpoint with the student's weights and plain metadata only and
    its plain MMDetection config, which stock MMDetection loads without ktan_det under torch's
    safe loading (``tools/test.py``, ``DetInferencer``).

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
        checkpoint, config = export_student(model.state_dict(), runner.cfg,
                                            osp.join(runner.work_dir, self.out_dir), meta)
        runner.logger.info(f'student exported: {checkpoint} with config {config}')
