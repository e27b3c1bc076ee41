"""The KTAN distiller: a frozen teacher, a student, T2S layers, a patch discriminator."""
import copy
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from ..engine.logs import forget_stale_scalars
from ..engine.updates import FiniteUpdates
from ..losses import foreground_masks
from ..utils.wrappers import drop_wrapper_prefixes, unwrap
from .balance import LossBalancer
from .recording import StudentRecord, record_student, scoped_forward_hooks
from .schedule import KTANSchedule, Stage, is_zero
from .setup_checks import (
    DistillationSetupError,
    check_classes,
    check_has_neck,
    check_matching_maps,
    check_preprocessors,
    resolve_tap_levels,
    soft_label_score_type,
)
from .teacher import (
    build_frozen_teacher,
    drop_teacher_weights,
    require_teacher_ckpt,
    teacher_model_cfg,
)
from .teacher_cache import TeacherMapCache

# Each part's default; a config dict without `type` (e.g. from --cfg-options
# model.loss_adv.loss_weight=0.2) overrides fields of it.
DEFAULTS = dict(discriminator=dict(type='PatchDiscriminator'),
                loss_imitation=dict(type='FeatureImitationLoss'),
                loss_adv=dict(type='AdversarialLoss'),
                loss_soft=dict(type='SoftLabelLoss'))
# Where two-stage soft labels are compared (train_cfg.soft_rois).
SOFT_ROIS = ('student', 'teacher')
# State that older checkpoints lack; loading them leaves its initial value.
OPTIONAL_STATE = ('num_skipped_steps', 'schedule.balance', 'balancer.norm_sums')
# What train_step logs besides the student's own losses (stale history of these is dropped).
KTAN_LOG_KEYS = ('loss_imitation', 'loss_adv', 'loss_soft', 'disc_loss', 'disc_acc',
                 'skipped_steps')
KTAN_LOG_PREFIXES = ('tgn_', 'feat_dist_l', 'balance_')


class TeacherTargets(NamedTuple):
    """What the student learns from at one step, computed without gradients.

    Attributes:
        maps: T2S of the teacher's tapped neck maps: the imitation targets, and what the
            discriminator learns to call real.
        cls_scores: The teacher's class logits at the soft labels' RoIs (or anchors), as
            (n, num_classes), or ``None`` when soft labels are off this step.
        samples: Which of the student's recorded RoIs ``cls_scores`` belong to (a random
            subset, ``train_cfg.soft_rois_per_img``), ``None`` for all of them.
        rois: The (n, 5) RoIs the teacher chose (``train_cfg.soft_rois='teacher'``), which
            the student then scores too; ``None`` when the soft labels are at the student's
            own RoIs.
        objectness: The teacher's RPN objectness logits at every anchor, as (m, 1), when
            ``train_cfg.soft_objectness`` is on, else ``None``.
    """
    maps: List[Tensor]
    cls_scores: Optional[Tensor] = None
    samples: Optional[Tensor] = None
    rois: Optional[Tensor] = None
    objectness: Optional[Tensor] = None


def _with_default(cfg: Optional[dict], default: dict) -> Optional[dict]:
    if cfg is None or 'type' in cfg:
        return cfg
    return {**default, **cfg}


def _is_ktan_log(name: str) -> bool:
    return name in KTAN_LOG_KEYS or name.startswith(KTAN_LOG_PREFIXES)


def _flat_class_maps(maps: Sequence[Tensor], num_classes: int) -> Tensor:
    """Dense heads' per-level (N, A*C, H, W) class maps as (N*H*W*A, C) rows, anchor by anchor."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, num_classes) for m in maps])


@MODELS.register_module()
class KTANDistiller(BaseModel):
    """Knowledge Transfer Adversarial Network (KTAN) distillation for detectors with a neck.

    KTAN (Liu et al., https://arxiv.org/abs/1810.08126) sets a teacher's high-level feature maps,
    mapped to the student's shape by Teacher-to-Student (T2S) layers, as the student's target,
    adds a discriminator on those maps, and transfers the teacher's class distributions. ktan-det
    adapts it to detection: the maps are the FPN levels, the discriminator judges patches,
    soft labels are compared per sampled RoI (two-stage) or per anchor (dense heads).

    One training step (:meth:`train_step`) has four phases, each a method: the student runs
    once, computing its own detection losses while its neck maps and RoI scores are recorded
    (:meth:`student_forward`); the teacher runs under ``no_grad`` and gives the targets
    (:meth:`teacher_targets`); the discriminator takes ``disc_steps`` updates on T2S(teacher)
    (real) and student (fake) maps (:meth:`discriminator_steps`); the student takes one update
    on its detection losses plus the KTAN losses (:meth:`student_update`). Which losses are on,
    and with what scale, is the schedule's answer for the iteration (:attr:`schedule`).

    The teacher is a frozen submodule: no gradients, always in eval mode (:meth:`train`), never
    in an optimizer (``KTANOptimWrapperConstructor`` takes the student, T2S and the
    discriminator) and never in this model's ``state_dict`` (a state-dict hook drops it).
    Once its checkpoint is loaded it counts as initialised, so the runner's ``init_weights()``
    leaves it alone. Being a submodule, it follows ``.to()``, ``.cuda()``, ``.half()`` and
    MMEngine's device methods with no override, and MMSeparateDistributedDataParallel leaves it
    unwrapped (it has no trainable parameters): less machinery than hiding it from
    ``__setattr__`` as MMDetection's ``KnowledgeDistillationSingleStageDetector`` does, which
    then needs its own ``cuda``/``to``/``train`` overrides. Validation and testing run the
    student alone.

    When teacher and student necks differ in width, T2S is learnt first, in a TGN stage at the
    start of the run (``train_cfg.tgn_iters`` iterations): T2S and a 1x1 map back to the
    teacher's width feed the frozen teacher's own heads and learn from its detection loss, while
    the student trains on its detection loss alone. Then T2S is frozen and distillation starts.
    With a PCA-initialised T2S, ``tgn_iters=0`` skips that stage: T2S stays at the PCA map of
    the first batch and distillation starts at the first iteration.

    Args:
        student: Model config of the student detector.
        teacher: The teacher: a config file (path or ``mmdet::`` name) or a model config dict.
        teacher_ckpt: The teacher's checkpoint (path or URL). ``None`` builds a randomly
            initialised teacher, for tools that only run the student (evaluation, export) and
            tests; training then refuses to start.
        tap_levels: Indices of the neck levels distilled; ``None`` for all.
        t2s: Options of :class:`~ktan_det.models.T2SAdapters` (``init``, ``kernel_size``,
            ``norm_cfg``, ``identity_when_equal``); ``None`` for its defaults.
        discriminator: Config of the patch discriminator; ``None`` disables the adversarial
            part. ``in_channels`` and ``num_levels`` are filled in.
        loss_imitation: Config of the feature imitation loss, or ``None``.
        loss_adv: Config of the adversarial loss (GAN form and the student's weight), or
            ``None``; needs ``discriminator``.
        loss_soft: Config of the soft-label loss, or ``None``. ``score_type`` is filled in
            from the detector type.
        train_cfg: ``tgn_iters`` (length of the TGN stage, when T2S is trained; 0 keeps a
            PCA-initialised T2S fixed),
            ``adv_start_iter`` (first iteration of adversarial training, counted from the end
            of the TGN stage); both are points of training (iterations, ``dict(epoch=E)`` or
            ``dict(fraction=F)``, see :mod:`ktan_det.models.schedule`).
            ``disc_steps`` (discriminator updates per student update),
            ``soft_rois`` (two-stage students: where soft labels are compared, ktan-det's
            option: ``'student'``, the RoIs the student sampled for its own box loss, or
            ``'teacher'``, the teacher's top-scoring proposals, which the student's RoI head
            then scores too: where the teacher sees objects and the student may not),
            ``soft_rois_per_img`` (with ``'student'``: soft labels on this many times the
            batch size of the RoIs the student sampled, drawn at random from the whole batch
            (about this many per image); with ``'teacher'``: the teacher's this many best
            proposals of each image; ``None`` for all; scoring RoIs with the teacher's RoI
            head is the costliest part of a KTAN step),
            ``soft_objectness`` (two-stage students: the weight, relative to the RoI term's, of
            a second soft-label term on the RPN's objectness at every anchor, a binary KL at
            the same temperature: the teacher's sense of where objects are, at places the
            student samples no RoI; ktan-det's option, 0 for none),
            ``balance`` (ktan-det's balancing rule, :class:`~ktan_det.models.balance.
            LossBalancer`: ``dict(targets=dict(imitation=T, ...), window=W)`` sets each named
            loss's pull on the student to ``T`` times the detection loss's, measured as
            gradient norms on the student's neck outputs over the window ``W`` from the loss's
            start, then fixed; the named losses' config weights then no longer matter;
            ``None`` keeps the config weights),
            ``cache_teacher_maps`` (ktan-det's option for CPU training on small data sets,
            :class:`~ktan_det.models.teacher_cache.TeacherMapCache`: keep the frozen
            teacher's neck maps of up to this many images, keyed by the exact preprocessed
            image, so that an image seen again (next epoch, same augmentation) skips the
            teacher's backbone and neck; the maps stay on the teacher's device; 0 or ``None``
            for none).
        data_preprocessor: Defaults to the student's.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 student: dict,
                 teacher: Union[str, dict],
                 teacher_ckpt: Optional[str],
                 tap_levels: Optional[Sequence[int]] = None,
                 t2s: Optional[dict] = None,
                 discriminator: Optional[dict] = DEFAULTS['discriminator'],
                 loss_imitation: Optional[dict] = DEFAULTS['loss_imitation'],
                 loss_adv: Optional[dict] = DEFAULTS['loss_adv'],
                 loss_soft: Optional[dict] = DEFAULTS['loss_soft'],
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or student.get('data_preprocessor'),
                         init_cfg=init_cfg)
        discriminator, loss_imitation, loss_adv, loss_soft = (
            _with_default(cfg, DEFAULTS[name]) for cfg, name in (
                (discriminator, 'discriminator'), (loss_imitation, 'loss_imitation'),
                (loss_adv, 'loss_adv'), (loss_soft, 'loss_soft')))
        teacher_cfg, self.teacher_cfg_path = teacher_model_cfg(teacher)
        self._teacher_cfg = copy.deepcopy(teacher_cfg)
        check_preprocessors(teacher_cfg.get('data_preprocessor'),
                            student.get('data_preprocessor'))
        self.student = MODELS.build(ConfigDict(student))
        self.teacher = build_frozen_teacher(teacher_cfg, teacher_ckpt)
        self.teacher_ckpt = teacher_ckpt
        check_has_neck(self.student, 'student')
        check_has_neck(self.teacher, 'teacher')
        check_classes(self.teacher, self.student)
        self.tap_levels = resolve_tap_levels(tap_levels, self.teacher, self.student)

        train_cfg = dict(train_cfg or {})
        tgn = train_cfg.pop('tgn_iters', 0)
        adv_start = train_cfg.pop('adv_start_iter', 0)
        self.disc_steps = int(train_cfg.pop('disc_steps', 1))
        self.soft_rois = train_cfg.pop('soft_rois', 'student')
        self.soft_rois_per_img = train_cfg.pop('soft_rois_per_img', None)
        self.soft_objectness = float(train_cfg.pop('soft_objectness', 0.0))
        balance = train_cfg.pop('balance', None)
        cache_size = train_cfg.pop('cache_teacher_maps', None)
        self.teacher_cache = TeacherMapCache(cache_size) if cache_size else None
        if self.soft_rois not in SOFT_ROIS:
            raise DistillationSetupError(
                f'train_cfg.soft_rois={self.soft_rois!r} must be one of {SOFT_ROIS}')
        if self.soft_rois_per_img is not None and self.soft_rois_per_img < 1:
            raise DistillationSetupError(
                f'train_cfg.soft_rois_per_img={self.soft_rois_per_img} must be >= 1 or None')
        if self.disc_steps < 1:
            raise DistillationSetupError(f'train_cfg.disc_steps={self.disc_steps} must be >= 1')
        if train_cfg:
            raise DistillationSetupError(f'unknown KTAN train_cfg keys: {sorted(train_cfg)}')

        teacher_channels = self.teacher.neck.out_channels
        student_channels = self.student.neck.out_channels
        self.t2s = MODELS.build(dict(type='T2SAdapters', teacher_channels=teacher_channels,
                                     student_channels=student_channels,
                                     num_levels=len(self.tap_levels), **(t2s or {})))
        # T2S feeds the imitation and adversarial losses; soft labels use the teacher's own maps.
        if self.t2s.is_identity or (loss_imitation is None and loss_adv is None):
            tgn = 0
        elif is_zero(tgn) and not self.t2s.needs_pca_init:
            raise DistillationSetupError(
                f'teacher neck has {teacher_channels} channels and student neck '
                f"{student_channels} and T2S starts random (t2s.init='random'): it must be "
                'learnt first, so set model.train_cfg.tgn_iters > 0 (the TGN stage length), or '
                "use t2s.init='pca' to keep T2S at its PCA map")

        if loss_adv is not None and discriminator is None:
            raise DistillationSetupError('loss_adv needs a discriminator (model.discriminator)')
        self.discriminator = None if discriminator is None or loss_adv is None else MODELS.build(
            dict(discriminator, in_channels=student_channels, num_levels=len(self.tap_levels)))
        self.loss_imitation = MODELS.build(loss_imitation) if loss_imitation else None
        self.loss_adv = MODELS.build(loss_adv) if loss_adv else None
        self.loss_soft = None
        if loss_soft:
            score_type = soft_label_score_type(self.teacher, self.student)
            self.loss_soft = MODELS.build(dict(loss_soft, score_type=score_type))
        self._check_soft_label_options()
        configured = dict(imitation=self.loss_imitation, adv=self.loss_adv, soft=self.loss_soft)
        self.schedule = KTANSchedule([name for name, loss in configured.items() if loss],
                                     tgn=tgn or 0, adv_start=adv_start)
        self.balancer = None
        if balance is not None:
            self.balancer = LossBalancer(**balance)
            off = set(self.balancer.targets) - set(self.schedule.losses)
            if off:
                raise DistillationSetupError(
                    f'train_cfg.balance.targets names {sorted(off)}, which this config turns '
                    f'off; balance only configured losses {self.schedule.losses}')
        # Steps whose update was skipped for a non-finite loss; a buffer, so resuming keeps it.
        self.register_buffer('num_skipped_steps', torch.zeros((), dtype=torch.long))
        self._update = FiniteUpdates()

        self._register_state_dict_hook(drop_teacher_weights)
        self._register_state_dict_hook(drop_wrapper_prefixes)
        self.register_load_state_dict_post_hook(_forgive_missing_keys)

    # ----------------------------------------------------------------------------------------
    # Modes and state
    # ----------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> 'KTANDistiller':
        super().train(mode)
        self.teacher.eval()
        if not unwrap(self.t2s).trainable:
            self.t2s.eval()  # a fixed T2S keeps its normalisation statistics fixed too
        return self

    @property
    def teacher_cfg_text(self) -> str:
        """The teacher's model config as text, which ``TeacherRecordHook`` records in
        checkpoints. Formatted on demand: MMEngine formats it with yapf, slower than all the
        rest of a tiny distiller's set-up, and most builds never need it."""
        return Config(dict(model=self._teacher_cfg)).pretty_text

    @property
    def with_adv(self) -> bool:
        return self.discriminator is not None

    def check_teacher_loaded(self) -> None:
        """Raise if the teacher has no checkpoint: training needs a trained teacher."""
        require_teacher_ckpt(self.teacher_ckpt, self.teacher_cfg_path)

    def forward(self, inputs: Tensor, data_samples: Optional[SampleList] = None,
                mode: str = 'tensor'):
        """Student inference (``'predict'``, ``'tensor'``); training goes through
        :meth:`train_step`."""
        if mode == 'loss':
            raise RuntimeError(
                'KTANDistiller trains through its own train_step; under distributed training '
                "set model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel') so the "
                'runner calls it (the default MMDistributedDataParallel does not)')
        return unwrap(self.student)(inputs, data_samples, mode)

    # ----------------------------------------------------------------------------------------
    # Training: train_step and its four phases, in the order they run
    # ----------------------------------------------------------------------------------------
    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One KTAN iteration: student, teacher, discriminator update(s), student update.

        Args:
            data: A batch from the data loader.
            optim_wrapper: An :class:`OptimWrapperDict` with a ``'student'`` wrapper (student
                and, during the TGN stage, T2S) and a ``'discriminator'`` wrapper when the
                adversarial loss is on (see ``KTANOptimWrapperConstructor``).

        Returns:
            The student's loss terms and totals for logging, plus ``feat_dist_l<i>`` (the mean
            squared distance between the student's and T2S(teacher)'s raw maps at each tapped
            level ``i``) while distilling, ``disc_loss`` and ``disc_acc`` (the
            discriminator's balanced accuracy) on adversarial steps, and ``skipped_steps``
            (updates skipped for a non-finite loss) once there has been one.
        """
        self._check_can_train(optim_wrapper)
        stage = self.schedule.stage(MessageHub.get_current_instance().get_info('iter', 0))
        if not stage.tgn and unwrap(self.t2s).trainable:
            unwrap(self.t2s).freeze()
            self.t2s.eval()
        student_wrapper = optim_wrapper['student']
        # Each wrapper's optim_context (autocast under AMP) covers only forward passes; updates
        # run outside them, as in MMEngine's own train_step.
        with student_wrapper.optim_context(self.student):
            data = self.data_preprocessor(data, True)
            inputs, data_samples = data['inputs'], data['data_samples']
            losses, record = self.student_forward(inputs, data_samples)
            if stage.tgn:
                losses.update(self.tgn_losses(inputs, data_samples))
            targets = self.teacher_targets(stage, inputs, data_samples,
                                           record) if stage.distilling else None
        disc_logs = {}
        # Under gradient accumulation, on the window's last micro-batch only: disc_steps
        # discriminator updates per student update.
        if stage.adversarial and student_wrapper.should_sync():
            disc_logs = self.discriminator_steps(targets.maps, self.tapped(record),
                                                 optim_wrapper['discriminator'], inputs,
                                                 data_samples)
        logs = self.student_update(student_wrapper, stage, losses, inputs, data_samples,
                                   targets, record)
        logs.update(disc_logs)
        forget_stale_scalars(logs, _is_ktan_log)
        return logs

    def student_forward(self, inputs: Tensor,
                        data_samples: SampleList) -> Tuple[Dict[str, Tensor], StudentRecord]:
        """Phase 1: the student's detection losses, and what its neck and heads computed."""
        with record_student(unwrap(self.student)) as record:
            losses = self.student(inputs, data_samples, mode='loss')
        return losses, record

    def tapped(self, record: StudentRecord) -> List[Tensor]:
        """The student's maps at the tapped neck levels."""
        return [record.neck_feats[i] for i in self.tap_levels]

    def tgn_losses(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """Phase 2 in the TGN stage: the frozen teacher's detection loss, its heads seeing its
        tapped maps through T2S and back (what trains T2S)."""
        if unwrap(self.t2s).needs_pca_init:
            with torch.no_grad():
                feats = self.teacher.extract_feat(inputs)
            unwrap(self.t2s).init_from_teacher([feats[i] for i in self.tap_levels])

        def round_trip(module, args, output):
            mapped = self.t2s([output[i] for i in self.tap_levels], round_trip=True)
            output = list(output)
            for i, feat in zip(self.tap_levels, mapped):
                output[i] = feat
            return tuple(output)

        with scoped_forward_hooks([(self.teacher.neck, round_trip)]):
            losses = self.teacher.loss(inputs, data_samples)
        return {f'tgn_{name}': value for name, value in losses.items()}

    @torch.no_grad()
    def teacher_targets(self, stage: Stage, inputs: Tensor, data_samples: SampleList,
                        record: StudentRecord) -> TeacherTargets:
        """Phase 2: T2S of the teacher's tapped neck maps and, when soft labels are on, the
        teacher's class logits at the soft labels' RoIs (or anchors)."""
        if self.teacher_cache is None:
            teacher_feats = list(self.teacher.extract_feat(inputs))
        else:
            teacher_feats = self.teacher_cache(self.teacher.extract_feat, inputs)
        tapped = [teacher_feats[i] for i in self.tap_levels]
        t2s = unwrap(self.t2s)
        if t2s.needs_pca_init:  # no TGN stage: T2S stays at the PCA map of this first batch
            t2s.init_from_teacher(tapped)
        maps = t2s(tapped)
        check_matching_maps(maps, self.tapped(record), self.tap_levels)
        if 'soft' not in stage.distilling:
            return TeacherTargets(maps)
        if self.loss_soft.score_type == 'sigmoid':
            class_maps = self.teacher.bbox_head(teacher_feats)[0]
            return TeacherTargets(maps, _flat_class_maps(
                class_maps, self.teacher.bbox_head.cls_out_channels))
        objectness = rpn_boxes = None
        if self.soft_objectness or self.soft_rois == 'teacher':
            objectness, rpn_boxes = self.teacher.rpn_head(teacher_feats)
        flat_objectness = _flat_class_maps(objectness, 1) if self.soft_objectness else None
        if self.soft_rois == 'teacher':
            # In float32 under autocast too: these boxes are the soft labels' RoIs.
            proposals = self.teacher.rpn_head.predict_by_feat(
                [o.float() for o in objectness], [b.float() for b in rpn_boxes],
                batch_img_metas=[s.metainfo for s in data_samples], rescale=False)
            rois = bbox2roi([p.bboxes[:self.soft_rois_per_img] for p in proposals])
            scores = self.teacher.roi_head._bbox_forward(teacher_feats, rois)['cls_score']
            return TeacherTargets(maps, scores, rois=rois, objectness=flat_objectness)
        rois, samples = record.rois, None
        if self.soft_rois_per_img is not None:
            samples = torch.randperm(rois.shape[0], device=rois.device)[
                :self.soft_rois_per_img * inputs.shape[0]]
            rois = rois[samples]
        scores = self.teacher.roi_head._bbox_forward(teacher_feats, rois)['cls_score']
        return TeacherTargets(maps, scores, samples, objectness=flat_objectness)

    def discriminator_steps(self, targets: List[Tensor], student_feats: List[Tensor],
                            wrapper: OptimWrapper, inputs: Tensor,
                            data_samples: SampleList) -> Dict[str, Tensor]:
        """Phase 3: ``disc_steps`` discriminator updates, targets real and student maps fake
        (both detached); returns its last loss and balanced accuracy."""
        # Real and fake maps of a level go through the discriminator as one batch, in float32:
        # an autocast student's maps are half precision, and the discriminator's wrapper may
        # not autocast (under one that does, its convolutions cast them back down).
        pairs = [torch.cat([t.detach(), s.detach()]).float()
                 for t, s in zip(targets, student_feats)]
        # A conditional discriminator sees each map beside its image.
        images = torch.cat([inputs, inputs]) if unwrap(self.discriminator).conditional else None
        batch = student_feats[0].shape[0]
        weights = None
        for _ in range(self.disc_steps):
            with wrapper.optim_context(self.discriminator):
                logits = self.discriminator(pairs, images)
                real_logits = [lg[:batch] for lg in logits]
                fake_logits = [lg[batch:] for lg in logits]
                if weights is None:  # the patches' shapes are known now
                    weights = self._patch_weights(real_logits, data_samples, inputs.shape[-2:])
                disc_loss = self.loss_adv.discriminator_loss(real_logits, fake_logits, weights)
            if not self._update(wrapper, disc_loss):
                self._count_skip(['disc_loss'])
        with torch.no_grad():
            accuracy = self.loss_adv.accuracy(real_logits, fake_logits)
        return dict(disc_loss=disc_loss.detach(), disc_acc=accuracy)

    def student_update(self, wrapper: OptimWrapper, stage: Stage, losses: Dict[str, Tensor],
                       inputs: Tensor, data_samples: SampleList,
                       targets: Optional[TeacherTargets],
                       record: StudentRecord) -> Dict[str, Tensor]:
        """Phase 4: one student update on its detection losses plus the KTAN losses on at this
        stage (its contribution skipped on every rank if the total is not finite, see
        :class:`~ktan_det.engine.updates.FiniteUpdates`); returns the logged values."""
        if stage.distilling:
            with wrapper.optim_context(self.student):
                distilled = self.ktan_losses(stage, inputs, data_samples, targets, record)
            if self.balancer is not None:
                scaler = getattr(wrapper, 'loss_scaler', None)  # AmpOptimWrapper's
                self.balancer.observe(self.schedule, stage.iteration,
                                      self.parse_losses(losses)[0],
                                      {name: distilled[f'loss_{name}'] for name in
                                       stage.distilling}, stage.scales, record.neck_feats,
                                      float(scaler.get_scale()) if scaler else 1.0)
            losses.update(distilled)
        total, logs = self.parse_losses(losses)
        bad = [k for k, v in logs.items() if not torch.isfinite(torch.as_tensor(v))]
        if stage.distilling:  # how far the student's maps are from the targets, per level
            logs.update({f'feat_dist_l{lvl}': F.mse_loss(s.detach().float(), t.float())
                         for lvl, s, t in zip(self.tap_levels, self.tapped(record),
                                              targets.maps)})
        if not self._update(wrapper, total):
            self._count_skip(bad)
        if self.balancer is not None:
            logs.update({f'balance_{name}': self.schedule.balance_of(name)
                         for name in self.balancer.targets})
        if self.num_skipped_steps > 0:  # logged every step from the first skip on
            logs['skipped_steps'] = self.num_skipped_steps.float()
        return logs

    def ktan_losses(self, stage: Stage, inputs: Tensor, data_samples: SampleList,
                    targets: TeacherTargets, record: StudentRecord) -> Dict[str, Tensor]:
        """The KTAN losses on at ``stage``, weighted and scaled, of what the student computed
        (``record``) against the teacher's ``targets``."""
        student_feats = self.tapped(record)
        scales = stage.scales
        losses = {}
        if 'imitation' in stage.distilling:
            masks = None
            if self.loss_imitation.fg_weight != 1.0:
                masks = foreground_masks([s.gt_instances.bboxes for s in data_samples],
                                         [f.shape for f in student_feats], inputs.shape[-2:])
            losses['loss_imitation'] = scales['imitation'] * self.loss_imitation(
                student_feats, targets.maps, masks)
        if 'adv' in stage.distilling:
            disc = unwrap(self.discriminator)
            # Frozen here so the student's adversarial term leaves no gradient on it, and in
            # eval mode so that it leaves its state too (spectral norm's power iteration).
            disc.requires_grad_(False)
            disc.eval()
            try:
                fake_logits = disc(student_feats, inputs if disc.conditional else None)
            finally:
                disc.requires_grad_(True)
                disc.train(self.training)
            losses['loss_adv'] = scales['adv'] * self.loss_adv.generator_loss(
                fake_logits, self._patch_weights(fake_logits, data_samples, inputs.shape[-2:]))
        if 'soft' in stage.distilling:
            if self.loss_soft.score_type == 'sigmoid':
                student_scores = _flat_class_maps(record.cls_scores,
                                                  self.teacher.bbox_head.cls_out_channels)
            elif targets.rois is not None:  # the teacher's RoIs: the student scores them too
                student_scores = unwrap(self.student).roi_head._bbox_forward(
                    record.neck_feats, targets.rois)['cls_score']
            else:
                student_scores = record.cls_scores if targets.samples is None else \
                    record.cls_scores[targets.samples]
            loss_soft = self.loss_soft(student_scores, targets.cls_scores)
            if targets.objectness is not None:
                loss_soft = loss_soft + self.soft_objectness * self.loss_soft(
                    _flat_class_maps(record.objectness, 1), targets.objectness, 'sigmoid')
            losses['loss_soft'] = scales['soft'] * loss_soft
        return losses

    def _patch_weights(self, logits: List[Tensor], data_samples: SampleList,
                       input_shape: Sequence[int]) -> Optional[List[Tensor]]:
        """The adversarial losses' weight of each of the patches ``logits`` judge, by whether
        it overlaps a ground-truth box; ``None`` when every patch counts alike."""
        if self.loss_adv.fg_weight == 1.0:
            return None
        masks = foreground_masks([s.gt_instances.bboxes for s in data_samples],
                                 [lg.shape for lg in logits], input_shape)
        return self.loss_adv.patch_weights(masks)

    def _check_soft_label_options(self) -> None:
        """Raise if ``soft_rois='teacher'`` or ``soft_objectness`` would have no effect, or if
        the RPNs cannot be compared anchor by anchor."""
        two_stage = self.loss_soft is not None and self.loss_soft.score_type == 'softmax'
        if self.soft_objectness < 0:
            raise DistillationSetupError(
                f'train_cfg.soft_objectness={self.soft_objectness} must be >= 0')
        for name, on in (('soft_rois', self.soft_rois == 'teacher'),
                         ('soft_objectness', self.soft_objectness > 0)):
            if on and not two_stage:
                raise DistillationSetupError(
                    f'train_cfg.{name} applies to soft labels of two-stage (RoI head) '
                    'detectors, and here soft labels are off or the student is single-stage: '
                    'remove it')
        if not self.soft_objectness:
            return
        teacher, student = self.teacher.rpn_head, self.student.rpn_head
        same_anchors = teacher.prior_generator.strides == student.prior_generator.strides and \
            all(torch.equal(a, b) for a, b in zip(teacher.prior_generator.base_anchors,
                                                  student.prior_generator.base_anchors))
        if not (teacher.use_sigmoid_cls and student.use_sigmoid_cls and same_anchors):
            raise DistillationSetupError(
                'train_cfg.soft_objectness compares the two RPNs anchor by anchor: they need '
                'the same anchor_generator and sigmoid objectness (loss_cls use_sigmoid=True); '
                'make them match or set soft_objectness=0')

    def _check_can_train(self, optim_wrapper) -> None:
        self.check_teacher_loaded()
        if not isinstance(optim_wrapper, OptimWrapperDict) or 'student' not in optim_wrapper:
            raise DistillationSetupError(
                "KTANDistiller needs an OptimWrapperDict with a 'student' wrapper: use "
                "optim_wrapper=dict(constructor='KTANOptimWrapperConstructor', student=..., "
                'discriminator=...)')
        if self.with_adv and 'discriminator' not in optim_wrapper:
            raise DistillationSetupError(
                "adversarial training is on (model.loss_adv) but optim_wrapper has no "
                "'discriminator' wrapper; add optim_wrapper.discriminator=dict(optimizer=...) "
                'or set model.loss_adv=None')

    def _count_skip(self, bad_losses: List[str]) -> None:
        self.num_skipped_steps += 1
        warnings.warn(f'KTAN: non-finite loss ({", ".join(sorted(bad_losses))}); update '
                      f'skipped ({int(self.num_skipped_steps)} so far)', stacklevel=2)


def _forgive_missing_keys(module: nn.Module, incompatible_keys) -> None:
    """Load-state-dict hook: checkpoints hold no teacher, and older ones none of
    :data:`OPTIONAL_STATE` (which then keeps its initial value)."""
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys
        if not k.startswith('teacher.') and k not in OPTIONAL_STATE]
