"""When each KTAN loss is on, and how strongly: the one schedule every part of a run reads.

A point of training is given in iterations (an ``int``), in epochs (``dict(epoch=E)``: the first
iteration of epoch ``E``, 0-based, for epoch-based loops) or as a share of the run
(``dict(fraction=F)``: the iteration ``F * max_iters``, rounded down). Epochs and fractions are
resolved to iterations once the run's length is known (:meth:`KTANSchedule.set_run`, called by
``KTANLossWeightHook`` before training), so every question the schedule answers is a function
of the iteration alone and a resumed run of the same length continues it exactly.
"""
import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

KTAN_LOSS_NAMES = ('imitation', 'adv', 'soft')
Point = Union[int, Mapping[str, float]]


@dataclass(frozen=True)
class RunLength:
    """How long the run is: ``max_iters`` and, for epoch-based loops, ``iters_per_epoch``."""
    max_iters: int
    iters_per_epoch: Optional[int] = None


def check_loss_names(names, who: str) -> None:
    """Raise, naming ``who``, if any of ``names`` is not a KTAN loss."""
    unknown = set(names) - set(KTAN_LOSS_NAMES)
    if unknown:
        raise ValueError(f'{who}: unknown losses {sorted(unknown)}; expected some of '
                         f'{KTAN_LOSS_NAMES}')


def check_point(point: Point, what: str) -> Point:
    """``point`` if it is a point of training (an integral float counts as an int), else a
    clear error."""
    if isinstance(point, float) and point.is_integer():
        point = int(point)
    if isinstance(point, bool) or not isinstance(point, (int, Mapping)):
        raise TypeError(f'KTAN schedule: {what}={point!r} must be an iteration (int), '
                        'dict(epoch=E) or dict(fraction=F)')
    if isinstance(point, Mapping) and (len(point) != 1
                                       or next(iter(point)) not in ('epoch', 'fraction')):
        raise ValueError(f'KTAN schedule: {what}={dict(point)} must be dict(epoch=E) or '
                         'dict(fraction=F)')
    return point


def is_zero(point: Optional[Point]) -> bool:
    """Whether ``point`` is the start of training however it is given."""
    return point is None or point == 0 or (isinstance(point, Mapping)
                                           and next(iter(point.values())) == 0)


def resolve_point(point: Point, run: Optional[RunLength], what: str) -> int:
    """The iteration a point of training names (see the module docstring)."""
    point = check_point(point, what)
    if isinstance(point, int):
        iteration = point
    else:
        (unit, value), = point.items()
        if run is None:
            raise ValueError(
                f'KTAN schedule: {what}={dict(point)} needs the run\'s length, which '
                'KTANLossWeightHook gives it before training: add '
                "dict(type='KTANLossWeightHook') to custom_hooks, or give iterations")
        if unit == 'epoch' and run.iters_per_epoch is None:
            raise ValueError(f'KTAN schedule: {what}={dict(point)}: epochs need an epoch-based '
                             'train loop (EpochBasedTrainLoop); give iterations or '
                             'dict(fraction=F)')
        if unit == 'fraction' and not 0 <= value <= 1:
            raise ValueError(f'KTAN schedule: {what}={dict(point)}: a fraction is in [0, 1]')
        size = run.iters_per_epoch if unit == 'epoch' else run.max_iters
        # Rounded down, but not below a product that floating point puts a hair under it.
        iteration = math.floor(value * size + 1e-9)
    if iteration < 0:
        raise ValueError(f'KTAN schedule: {what}={point!r} must be >= 0')
    return iteration


@dataclass(frozen=True)
class Stage:
    """What a KTAN step does at one iteration.

    Attributes:
        tgn: T2S learns through the teacher's heads; the student gets no distillation.
        scales: Every configured KTAN loss's multiplier of its config weight (0 = off).
        iteration: The iteration, or ``None`` for a stage that stands for no iteration
            (:meth:`KTANSchedule.steady_stage`).
    """
    tgn: bool
    scales: Dict[str, float]
    iteration: Optional[int] = None

    @property
    def distilling(self) -> Tuple[str, ...]:
        """The KTAN losses on at this stage."""
        return tuple(name for name, scale in self.scales.items() if scale > 0)

    @property
    def adversarial(self) -> bool:
        """The discriminator trains and the student gets its adversarial term."""
        return 'adv' in self.distilling


class KTANSchedule(nn.Module):
    """Which KTAN losses are on at an iteration, and with what scale.

    Each configured loss starts after the TGN stage (the adversarial one ``adv_start`` later),
    ramps linearly from 0 to its full weight over ``warmup[name]`` iterations, and is off from
    ``stop`` on, where the teacher stops running (the TGN stage too). Its scale is that ramp
    times a per-loss balance factor (1 unless a balancing rule sets it with
    :meth:`set_balance`), kept in the buffer ``balance``: checkpoints keep it and ``--resume``
    restores it.

    Args:
        losses: The configured KTAN losses (some of :data:`KTAN_LOSS_NAMES`).
        tgn: Length of the TGN stage (a point of training; 0 for none).
        adv_start: Start of adversarial training, counted from the end of the TGN stage.
        warmup: Ramp length per loss (points of training, as lengths).
        stop: First point without distillation; ``None`` distils to the end.
    """

    def __init__(self, losses: Sequence[str], tgn: Point = 0, adv_start: Point = 0,
                 warmup: Optional[Mapping[str, Point]] = None,
                 stop: Optional[Point] = None) -> None:
        super().__init__()
        check_loss_names(losses, 'KTAN schedule')
        self.losses = tuple(name for name in KTAN_LOSS_NAMES if name in losses)
        self.register_buffer('balance', torch.ones(len(KTAN_LOSS_NAMES), dtype=torch.float64))
        # The buffer's values as floats: read every step, they must not cost a device sync.
        self._balance = {name: 1.0 for name in KTAN_LOSS_NAMES}
        self._run: Optional[RunLength] = None
        self._points = dict(tgn=check_point(tgn, 'tgn'),
                            adv_start=check_point(adv_start, 'adv_start'))
        self.configure(warmup, stop)

    def configure(self, warmup: Optional[Mapping[str, Point]] = None,
                  stop: Optional[Point] = None) -> None:
        """Set the ramps and the stop (``KTANLossWeightHook``'s arguments)."""
        warmup = dict(warmup or {})
        check_loss_names(warmup, 'KTAN schedule warm-up')
        points = {f'warmup_{name}': warmup.get(name, 0) for name in KTAN_LOSS_NAMES}
        points['stop'] = stop
        self._points.update({key: None if point is None else check_point(point, key)
                             for key, point in points.items()})
        self._resolve()

    def set_run(self, run: RunLength) -> None:
        """Give the schedule the run's length, which epochs and fractions need."""
        self._run = run
        self._resolve()

    def _resolve(self) -> None:
        """Points in iterations, where they can be resolved yet (epochs and fractions wait for
        :meth:`set_run`; asking the schedule before then is an error)."""
        self._iters = {}
        for key, point in self._points.items():
            if point is None:
                self._iters[key] = None
            elif isinstance(point, int) or self._run is not None:
                self._iters[key] = resolve_point(point, self._run, key)

    def _at(self, key: str) -> Optional[int]:
        if key not in self._iters:
            resolve_point(self._points[key], self._run, key)  # raises, naming the fix
        return self._iters[key]

    @property
    def tgn_iters(self) -> int:
        """Length of the TGN stage in iterations."""
        return self._at('tgn')

    def resolve(self, point: Point, what: str) -> int:
        """The iteration ``point`` names in this run (epochs and fractions need
        :meth:`set_run`); ``what`` names it in errors."""
        return resolve_point(point, self._run, what)

    def start(self, name: str) -> int:
        """First iteration of loss ``name``."""
        return self.tgn_iters + (self._at('adv_start') if name == 'adv' else 0)

    def set_balance(self, name: str, value: float) -> None:
        """Set loss ``name``'s balance factor (what a balancing rule adjusts)."""
        if name not in self.losses:
            raise KeyError(f'KTAN schedule: {name!r} is not a configured loss {self.losses}')
        self.balance[KTAN_LOSS_NAMES.index(name)] = value
        self._balance[name] = float(value)

    def balance_of(self, name: str) -> float:
        """Loss ``name``'s balance factor."""
        return self._balance[name]

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._balance = dict(zip(KTAN_LOSS_NAMES, self.balance.tolist()))

    def _ramp(self, name: str, iteration: int) -> float:
        start, length = self.start(name), self._at(f'warmup_{name}')
        if iteration < start:
            return 0.0
        return 1.0 if length == 0 else min((iteration - start + 1) / length, 1.0)

    def stage(self, iteration: int) -> Stage:
        """The stage at ``iteration`` (0-based)."""
        stop = self._at('stop')
        stopped = stop is not None and iteration >= stop
        scales = {name: 0.0 if stopped else self._ramp(name, iteration) * self._balance[name]
                  for name in self.losses}
        return Stage(tgn=iteration < self.tgn_iters and not stopped, scales=scales,
                     iteration=iteration)

    def steady_stage(self) -> Stage:
        """Every configured loss on at its full (balanced) scale: the stage after every start
        and ramp (for analysing and timing a full KTAN step)."""
        return Stage(tgn=False, scales={name: self._balance[name] for name in self.losses})
