"""The KTAN distiller: a frozen teacher, a student, T2S layers, a patch discriminator."""
import copy
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from ..losses import foreground_masks
from .setup_checks import (DistillationSetupError, check_classes, check_has_neck,
                           check_matching_maps, check_preprocessors, resolve_tap_levels,
                           soft_label_score_type)
from .taps import StudentTaps
from .teacher import build_frozen_teacher, teacher_model_cfg

KTAN_LOSS_NAMES = ('imitation', 'adv', 'soft')
# Each part's default; a config dict without `type` (e.g. from --cfg-options
# model.loss_adv.loss_weight=0.2) overrides fields of it.
DEFAULTS = dict(discriminator=dict(type='PatchDiscriminator'),
                loss_imitation=dict(type='FeatureImitationLoss'),
                loss_adv=dict(type='AdversarialLoss'),
                loss_soft=dict(type='SoftLabelLoss'))


def unwrap(module: nn.Module) -> nn.Module:
    """``module`` without its (DDP) model wrapper, if it has one."""
    return module.module if is_model_wrapper(module) else module


@MODELS.register_module()
class KTANDistiller(BaseModel):
    """Knowledge Transfer Adversarial Network (KTAN) distillation for detectors with a neck.

    KTAN (Liu et al., https://arxiv.org/abs/1810.08126) sets a teacher's high-level feature maps,
    mapped to the student's shape by Teacher-to-Student (T2S) layers, as the student's target,
    adds a discriminator on those maps, and transfers the teacher's class distributions. ktan-det
    adapts it to detection: the maps are the FPN levels, the discriminator judges patches,
    soft labels are compared per sampled RoI (two-stage) or per anchor (dense heads).

    One training step (:meth:`train_step`): the teacher runs under ``no_grad`` (its backbone and
    neck, plus its RoI/dense classifier when soft labels are on); the student runs once, its
    neck maps and RoI scores recorded by hooks while it computes its own detection losses; the
    discriminator takes ``disc_steps`` updates on T2S(teacher) (real) and student (fake) maps;
    then the student takes one update on its detection losses plus the KTAN losses.

    The teacher is frozen (no gradients, always in eval mode), never in an optimizer and never in
    this model's ``state_dict`` (checkpoints hold the student, T2S and discriminator only). Once
    its checkpoint is loaded it counts as initialised, so the runner's ``init_weights()`` leaves
    it alone. Validation and testing run the student alone.

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
            ``norm_cfg``, ``identity_when_equal``).
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
            of the TGN stage), ``disc_steps`` (discriminator updates per student update),
            ``soft_rois_per_img`` (two-stage students: soft labels on this many times the
            batch size of the RoIs the student sampled, drawn at random from the whole batch
            (about this many per image), ``None`` for all; scoring RoIs with the teacher's RoI
            head is the costliest part of a KTAN step).
        data_preprocessor: Defaults to the student's.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 student: dict,
                 teacher: Union[str, dict],
                 teacher_ckpt: Optional[str],
                 tap_levels: Optional[Sequence[int]] = None,
                 t2s: dict = dict(kernel_size=1),
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
        self.tgn_iters = int(train_cfg.pop('tgn_iters', 0))
        self.adv_start_iter = int(train_cfg.pop('adv_start_iter', 0))
        self.disc_steps = int(train_cfg.pop('disc_steps', 1))
        self.soft_rois_per_img = train_cfg.pop('soft_rois_per_img', None)
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
                                     num_levels=len(self.tap_levels), **t2s))
        # T2S feeds the imitation and adversarial losses; soft labels use the teacher's own maps.
        if self.t2s.is_identity or (loss_imitation is None and loss_adv is None):
            self.tgn_iters = 0
        elif self.tgn_iters <= 0 and not self.t2s.needs_pca_init:
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
        # Multipliers of the KTAN loss weights, set by KTANLossWeightHook (1 = config weight).
        self.loss_scales = {name: 1.0 for name in KTAN_LOSS_NAMES}
        # Steps whose update was skipped for a non-finite loss; a buffer, so resuming keeps it.
        self.register_buffer('num_skipped_steps', torch.zeros((), dtype=torch.long))
        self._logged_keys = set()
        # Set by DistillationMonitorHook: also log the per-level feature distances.
        self.log_level_distances = False

        self.taps = StudentTaps(self.student)
        self._round_trip_teacher_neck = False
        self.teacher.neck.register_forward_hook(self._teacher_neck_round_trip)
        # Keep the teacher out of checkpoints, and do not expect it when loading them.
        self._register_state_dict_hook(_clean_state_dict)
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
        """The teacher's model config as text, which ``TeacherGuardHook`` records in
        checkpoints. Formatted on demand: MMEngine formats it with yapf, slower than all the
        rest of a tiny distiller's set-up, and most builds never need it."""
        return Config(dict(model=self._teacher_cfg)).pretty_text

    @property
    def with_adv(self) -> bool:
        return self.discriminator is not None

    @property
    def distilling_losses(self) -> List[str]:
        """The KTAN losses configured and not switched off by the weight schedule."""
        modules = dict(imitation=self.loss_imitation, adv=self.loss_adv, soft=self.loss_soft)
        return [n for n, m in modules.items() if m is not None and self.loss_scales[n] > 0]

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
    # Training
    # ----------------------------------------------------------------------------------------
    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One KTAN iteration: teacher, student, discriminator update(s), student update.

        Args:
            data: A batch from the data loader.
            optim_wrapper: An :class:`OptimWrapperDict` with a ``'student'`` wrapper (student
                and, during the TGN stage, T2S) and a ``'discriminator'`` wrapper when the
                adversarial loss is on (see ``KTANOptimWrapperConstructor``).

        Returns:
            The student's loss terms and totals for logging, plus ``disc_loss`` and
            ``disc_acc`` (the discriminator's balanced accuracy) on adversarial steps, and
            ``skipped_steps`` (updates skipped for a non-finite loss) once there has been one.
        """
        self._check_can_train(optim_wrapper)
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        in_tgn_stage = iteration < self.tgn_iters
        if not in_tgn_stage and unwrap(self.t2s).trainable:
            unwrap(self.t2s).freeze()
            self.t2s.eval()
        distilling = [] if in_tgn_stage else self.distilling_losses
        adversarial = 'adv' in distilling and \
            iteration >= self.tgn_iters + self.adv_start_iter
        if not adversarial and 'adv' in distilling:
            distilling.remove('adv')

        student_wrapper = optim_wrapper['student']
        log_vars = {}
        # Each wrapper's optim_context (autocast under AMP) covers only forward passes; updates
        # run outside them, as in MMEngine's own train_step.
        with student_wrapper.optim_context(self.student):
            data = self.data_preprocessor(data, True)
            inputs, data_samples = data['inputs'], data['data_samples']
            with self.taps.recording():
                losses = self.student(inputs, data_samples, mode='loss')
                student_feats = [self.taps.neck_feats[i] for i in self.tap_levels]
            if in_tgn_stage:
                if unwrap(self.t2s).needs_pca_init:
                    with torch.no_grad():
                        feats = self.teacher.extract_feat(inputs)
                    unwrap(self.t2s).init_from_teacher([feats[i] for i in self.tap_levels])
                losses.update(self._tgn_losses(inputs, data_samples))
            elif distilling:
                teacher_feats, targets = self.teacher_targets(inputs)
                check_matching_maps(targets, student_feats, self.tap_levels)
        if adversarial:
            log_vars.update(self._discriminator_steps(targets, student_feats,
                                                      optim_wrapper['discriminator']))
        if distilling:
            with student_wrapper.optim_context(self.student):
                losses.update(self.ktan_losses(distilling, inputs, data_samples,
                                                teacher_feats, targets, student_feats))
            if self.log_level_distances:
                log_vars.update({f'feat_dist_l{lvl}': F.mse_loss(s.detach().float(), t.float())
                                 for lvl, s, t in zip(self.tap_levels, student_feats, targets)})
        total, parsed = self.parse_losses(losses)
        if not self._update(student_wrapper, total):
            bad = [k for k, v in parsed.items() if not torch.isfinite(torch.as_tensor(v))]
            self._count_skip(bad)
        parsed.update(log_vars)
        if self.num_skipped_steps > 0:  # logged every step from the first skip on
            parsed['skipped_steps'] = self.num_skipped_steps.float()
        self._forget_stale_logs(parsed)
        return parsed

    def _forget_stale_logs(self, logged: dict) -> None:
        """Drop the message-hub history of values this step no longer logs (the TGN losses after
        its stage, the KTAN losses after distillation stops): MMEngine would go on logging their
        last window average as if they were still computed."""
        log_scalars = MessageHub.get_current_instance().log_scalars
        for key in self._logged_keys - logged.keys():
            log_scalars.pop(f'train/{key}', None)
        self._logged_keys = set(logged)

    def check_teacher_loaded(self) -> None:
        """Raise if the teacher has no checkpoint: training needs a trained teacher."""
        require_teacher_ckpt(self.teacher_ckpt, self.teacher_cfg_path)

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

    @torch.no_grad()
    def teacher_targets(self, inputs: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """The teacher's neck maps (all levels) and T2S of the tapped ones (the targets)."""
        teacher_feats = list(self.teacher.extract_feat(inputs))
        tapped = [teacher_feats[i] for i in self.tap_levels]
        t2s = unwrap(self.t2s)
        if t2s.needs_pca_init:  # no TGN stage: T2S stays at the PCA map of this first batch
            t2s.init_from_teacher(tapped)
        return teacher_feats, t2s(tapped)

    def _teacher_neck_round_trip(self, module, args, output):
        """During the TGN stage, the teacher's heads see its tapped maps through T2S and back."""
        if not self._round_trip_teacher_neck:
            return None
        mapped = self.t2s([output[i] for i in self.tap_levels], round_trip=True)
        output = list(output)
        for i, feat in zip(self.tap_levels, mapped):
            output[i] = feat
        return tuple(output)

    def _tgn_losses(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        """The TGN stage's loss: the frozen teacher's detection loss through T2S and back."""
        self._round_trip_teacher_neck = True
        try:
            losses = self.teacher.loss(inputs, data_samples)
        finally:
            self._round_trip_teacher_neck = False
        return {f'tgn_{name}': value for name, value in losses.items()}

    def _discriminator_steps(self, targets: List[Tensor], student_feats: List[Tensor],
                             wrapper: OptimWrapper) -> Dict[str, Tensor]:
        # Real and fake maps of a level go through the discriminator as one batch.
        pairs = [torch.cat([t.detach(), s.detach()]) for t, s in zip(targets, student_feats)]
        batch = student_feats[0].shape[0]
        for _ in range(self.disc_steps):
            with wrapper.optim_context(self.discriminator):
                logits = self.discriminator(pairs)
                real_logits = [lg[:batch] for lg in logits]
                fake_logits = [lg[batch:] for lg in logits]
                disc_loss = self.loss_adv.discriminator_loss(real_logits, fake_logits)
            if not self._update(wrapper, disc_loss):
                self._count_skip(['disc_loss'])
        with torch.no_grad():
            accuracy = self.loss_adv.accuracy(real_logits, fake_logits)
        return dict(disc_loss=disc_loss.detach(), disc_acc=accuracy)

    def ktan_losses(self, distilling: List[str], inputs: Tensor, data_samples: SampleList,
                     teacher_feats: List[Tensor], targets: List[Tensor],
                     student_feats: List[Tensor]) -> Dict[str, Tensor]:
        """The ``distilling`` KTAN losses of the student's maps (weighted, scheduled), from the
        teacher's neck maps and their T2S targets (:meth:`teacher_targets`)."""
        losses = {}
        if 'imitation' in distilling:
            masks = None
            if self.loss_imitation.fg_weight != 1.0:
                masks = foreground_masks([s.gt_instances.bboxes for s in data_samples],
                                         [f.shape for f in student_feats], inputs.shape[-2:])
            losses['loss_imitation'] = self.loss_scales['imitation'] * self.loss_imitation(
                student_feats, targets, masks)
        if 'adv' in distilling:
            disc = unwrap(self.discriminator)
            # Frozen here so the student's adversarial term leaves no gradient on it.
            disc.requires_grad_(False)
            try:
                fake_logits = disc(student_feats)
            finally:
                disc.requires_grad_(True)
            losses['loss_adv'] = self.loss_scales['adv'] * self.loss_adv.generator_loss(
                fake_logits)
        if 'soft' in distilling:
            student_scores, teacher_scores = self._class_scores(teacher_feats)
            losses['loss_soft'] = self.loss_scales['soft'] * self.loss_soft(
                student_scores, teacher_scores)
        return losses

    @torch.no_grad()
    def _teacher_roi_scores(self, teacher_feats: List[Tensor], rois: Tensor) -> Tensor:
        return self.teacher.roi_head._bbox_forward(teacher_feats, rois)['cls_score']

    def _class_scores(self, teacher_feats: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """Student and teacher class logits for the same samples, as (n, num_classes)."""
        if self.loss_soft.score_type == 'softmax':
            rois, scores = self.taps.rois, self.taps.cls_scores
            if self.soft_rois_per_img is not None:
                num_images = teacher_feats[0].shape[0]
                keep = torch.randperm(rois.shape[0], device=rois.device)[
                    :self.soft_rois_per_img * num_images]
                rois, scores = rois[keep], scores[keep]
            return scores, self._teacher_roi_scores(teacher_feats, rois)
        with torch.no_grad():
            teacher_maps = self.teacher.bbox_head(teacher_feats)[0]
        num_classes = self.teacher.bbox_head.cls_out_channels

        def flat(maps):
            return torch.cat([m.permute(0, 2, 3, 1).reshape(-1, num_classes) for m in maps])

        return flat(self.taps.cls_scores), flat(teacher_maps)

    def _update(self, wrapper: OptimWrapper, loss: Tensor) -> bool:
        """Update with ``loss`` if it is finite on every rank; otherwise skip the step on all
        ranks together. A skipped step still runs the backward (of zeros), so that DDP's
        gradient reduction completes everywhere, and then drops the gradients."""
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item():
            wrapper.update_params(loss)
            return True
        wrapper.backward(torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0) * 0)
        wrapper.zero_grad()
        return False

    def _count_skip(self, bad_losses: List[str]) -> None:
        self.num_skipped_steps += 1
        warnings.warn(f'KTAN: non-finite loss ({", ".join(sorted(bad_losses))}); update '
                      f'skipped ({int(self.num_skipped_steps)} so far)')


def require_teacher_ckpt(teacher_ckpt: Optional[str],
                         teacher_cfg_path: Optional[str] = None) -> None:
    """Raise if there is no teacher checkpoint (``model.teacher_ckpt=None``): KTAN training
    needs a trained teacher."""
    if teacher_ckpt is None:
        raise DistillationSetupError(
            'the teacher has no checkpoint (model.teacher_ckpt=None) and KTAN training needs '
            'a trained one: train it (python tools/train.py '
            f'{teacher_cfg_path or "TEACHER_CONFIG"}) or bring one, then pass '
            '--cfg-options model.teacher_ckpt=PATH')


def _with_default(cfg: Optional[dict], default: dict) -> Optional[dict]:
    if cfg is None or 'type' in cfg:
        return cfg
    return {**default, **cfg}


def _clean_state_dict(module, state_dict, prefix, local_metadata) -> None:
    """State-dict hook: no teacher, and no ``.module`` of the DDP wrappers that
    MMSeparateDistributedDataParallel puts around trainable children (MMEngine's runner saves
    ``model.state_dict()``), so checkpoints load the same with or without distribution."""
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]
    for name, child in module._modules.items():
        wrapped = f'{prefix}{name}.module.'
        if is_model_wrapper(child):
            for key in [k for k in state_dict if k.startswith(wrapped)]:
                state_dict[f'{prefix}{name}.{key[len(wrapped):]}'] = state_dict.pop(key)


def _forgive_missing_keys(module, incompatible_keys) -> None:
    """Load-state-dict hook: checkpoints hold no teacher, and those saved before the skip
    counter was kept in them have none (it then stays 0)."""
    incompatible_keys.missing_keys[:] = [
        k for k in incompatible_keys.missing_keys
        if not k.startswith('teacher.') and k != 'num_skipped_steps']
