"""When each KTAN loss is on, and how strongly: the one schedule every part of a run reads.

A point of training is given in iterations (an ``int``), in epochs (``dict(epoch=E)``: the first
iteration of epoch ``E``, 0-based, for epoch-based loops) or as a share of the run
(``dict(fraction=F)``: the iteration ``F * max_iters``, rounded down). Epochs and fractions are
resolved to iterations once the run's length is known (:meth:`KTANSchedule.set_run`, called by
``KTANLossWeightHook`` before training), so every question the schedule answers is a function
of the iteration alone and a resumed run continues it exactly.
"""
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


def resolve_point(point: Point, run: Optional[RunLength], what: str) -> int:
    """The iteration a point of training names (see the module docstring)."""
    if isinstance(point, bool) or not isinstance(point, (int, Mapping)):
        raise TypeError(f'KTAN schedule: {what}={point!r} must be an iteration (int), '
                        'dict(epoch=E) or dict(fraction=F)')
    if isinstance(point, int):
        iteration = point
    else:
        if len(point) != 1 or next(iter(point)) not in ('epoch', 'fraction'):
            raise ValueError(f'KTAN schedule: {what}={dict(point)} must be dict(epoch=E) or '
                             'dict(fraction=F)')
        (unit, value), = point.items()
        needed = 'iters_per_epoch' if unit == 'epoch' else 'max_iters'
        if run is None or getattr(run, needed) is None:
            raise ValueError(
                f'KTAN schedule: {what}={dict(point)} needs the run\'s {needed}, which '
                'KTANLossWeightHook gives it before training: add '
                "dict(type='KTANLossWeightHook') to custom_hooks, or give iterations")
        if unit == 'fraction' and not 0 <= value <= 1:
            raise ValueError(f'KTAN schedule: {what}={dict(point)}: a fraction is in [0, 1]')
        iteration = int(value * getattr(run, needed))
    if iteration < 0:
        raise ValueError(f'KTAN schedule: {what}={point!r} must be >= 0')
    return iteration


@dataclass(frozen=True)
class Stage:
    """What a KTAN step does at one iteration.

    Attributes:
        tgn: T2S learns through the teacher's heads; the student gets no distillation.
        scales: Every configured KTAN loss's multiplier of its config weight (0 = off).
    """
    tgn: bool
    scales: Dict[str, float]

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
    ``stop`` on, where the teacher stops running. Its scale is that ramp times a per-loss
    ``balance`` factor (1 unless a balancing rule sets it with :meth:`set_balance`), which is a
    buffer: checkpoints keep it and ``--resume`` restores it.

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
        unknown = set(losses) - set(KTAN_LOSS_NAMES)
        if unknown:
            raise ValueError(f'KTAN schedule: unknown losses {sorted(unknown)}; expected some '
                             f'of {KTAN_LOSS_NAMES}')
        self.losses = tuple(name for name in KTAN_LOSS_NAMES if name in losses)
        self.register_buffer('balance', torch.ones(len(KTAN_LOSS_NAMES), dtype=torch.float64))
        self._run: Optional[RunLength] = None
        self._points = dict(tgn=tgn, adv_start=adv_start)
        self.configure(warmup, stop)

    def configure(self, warmup: Optional[Mapping[str, Point]] = None,
                  stop: Optional[Point] = None) -> None:
        """Set the ramps and the stop (``KTANLossWeightHook``'s arguments)."""
        warmup = dict(warmup or {})
        unknown = set(warmup) - set(KTAN_LOSS_NAMES)
        if unknown:
            raise ValueError(f'KTAN schedule: warm-up for unknown losses {sorted(unknown)}; '
                             f'expected some of {KTAN_LOSS_NAMES}')
        self._points.update(stop=stop, **{f'warmup_{name}': warmup.get(name, 0)
                                          for name in KTAN_LOSS_NAMES})
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

    def start(self, name: str) -> int:
        """First iteration of loss ``name``."""
        return self.tgn_iters + (self._at('adv_start') if name == 'adv' else 0)

    def set_balance(self, name: str, value: float) -> None:
        """Set loss ``name``'s balance factor (what a balancing rule adjusts)."""
        self.balance[KTAN_LOSS_NAMES.index(name)] = value

    def _balance(self, name: str) -> float:
        return float(self.balance[KTAN_LOSS_NAMES.index(name)])

    def _ramp(self, name: str, iteration: int) -> float:
        start, length = self.start(name), self._at(f'warmup_{name}')
        if iteration < start:
            return 0.0
        return 1.0 if length == 0 else min((iteration - start + 1) / length, 1.0)

    def stage(self, iteration: int) -> Stage:
        """The stage at ``iteration`` (0-based)."""
        stop = self._at('stop')
        stopped = stop is not None and iteration >= stop
        scales = {name: 0.0 if stopped else self._ramp(name, iteration) * self._balance(name)
                  for name in self.losses}
        return Stage(tgn=iteration < self.tgn_iters, scales=scales)

    def steady_stage(self) -> Stage:
        """Every configured loss on at its full (balanced) scale: the stage after every start
        and ramp (for analysing and timing a full KTAN step)."""
        return Stage(tgn=False, scales={name: self._balance(name) for name in self.losses})
