"""Tables and summaries of benchmark results."""
from statistics import fmean, stdev
from typing import Dict, Optional, Tuple

METRICS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')


def mAP_table(rows: Dict[str, Optional[Dict[str, float]]]) -> str:
    """A Markdown table of COCO bbox metrics, one row per model (``None``: not available)."""
    lines = ['| model | ' + ' | '.join(m.replace('bbox_', '') for m in METRICS) + ' |',
             '|---' * (len(METRICS) + 1) + '|']
    for name, metrics in rows.items():
        cells = [f'{metrics[f"coco/{m}"]:.3f}' if metrics else 'n/a' for m in METRICS]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _std(values):
    """Sample standard deviation; 0 for a single value (``statistics.stdev`` refuses it)."""
    return stdev(values) if len(values) > 1 else 0.0


def summarize(results: Dict[str, list], teacher: Dict[str, float],
              baseline: str = 'plain') -> Dict[str, dict]:
    """Per variant: mean, sample std and range over seeds of every metric, the share of the
    teacher-student mAP gap closed, and whether its mAP difference to ``baseline`` exceeds the
    seed spread (the larger of the two variants' mAP ranges).

    Args:
        results: ``variant -> [metrics of each seed]`` (``coco/...`` keys).
        teacher: The teacher's metrics.
    """
    summary = {}
    base = [r['coco/bbox_mAP'] for r in results[baseline]]
    base_range = max(base) - min(base)
    gap = teacher['coco/bbox_mAP'] - fmean(base)
    for variant, runs in results.items():
        row = {}
        for metric in METRICS:
            values = [r[f'coco/{metric}'] for r in runs]
            row[metric] = dict(mean=fmean(values), std=_std(values),
                               range=max(values) - min(values), n=len(values))
        mAP = row['bbox_mAP']
        diff = mAP['mean'] - fmean(base)
        spread = max(base_range, mAP['range'])
        row['gap_closed'] = diff / gap if gap > 0 else float('nan')
        row['diff'] = diff
        row['spread'] = spread
        row['significant'] = variant != baseline and abs(diff) > spread
        summary[variant] = row
    return summary


def quality_table(summary: Dict[str, dict], teacher: Dict[str, float]) -> str:
    """Markdown: mean +- std per metric, gap closed, difference vs plain and whether it
    exceeds the seed spread."""
    head = ['variant', 'seeds'] + [m.replace('bbox_', '') for m in METRICS] + [
        'gap closed', 'diff vs plain', '> spread?']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    lines.append('| teacher | 1 | ' + ' | '.join(f'{teacher[f"coco/{m}"]:.3f}'
                                                 for m in METRICS) + ' | | | |')
    for variant, row in summary.items():
        cells = [f'{row[m]["mean"]:.3f} ± {row[m]["std"]:.3f}' for m in METRICS]
        verdict = '-' if variant == 'plain' else ('yes' if row['significant'] else 'no')
        lines.append(f'| {variant} | {row["bbox_mAP"]["n"]} | ' + ' | '.join(cells)
                     + f' | {100 * row["gap_closed"]:.0f}% | {row["diff"]:+.3f} '
                     f'(spread {row["spread"]:.3f}) | {verdict} |')
    return '\n'.join(lines)


def tuning_table(runs: Dict[Tuple[str, float], Dict[str, float]],
                 chosen: Dict[str, float]) -> str:
    """Markdown: bbox mAP of each (method, weight scale) tuning run, one row per method, the
    chosen scale in bold.

    Args:
        runs: ``(method, scale) -> final metrics``.
        chosen: ``method -> the scale the benchmark uses``.
    """
    scales = sorted({scale for _, scale in runs})
    lines = ['| method | ' + ' | '.join(f'x{s:g}' for s in scales) + ' | trials |',
             '|---' * (len(scales) + 2) + '|']
    for method in dict.fromkeys(m for m, _ in runs):
        cells = []
        for scale in scales:
            metrics = runs.get((method, scale))
            cell = f'{metrics["coco/bbox_mAP"]:.3f}' if metrics else ''
            cells.append(f'**{cell}**' if metrics and scale == chosen.get(method, 1.0)
                         else cell)
        trials = sum(m == method for m, _ in runs)
        lines.append(f'| {method} | ' + ' | '.join(cells) + f' | {trials} |')
    return '\n'.join(lines)


def regime_checks(results: Dict[str, list], teacher: Dict[str, float], longer: str,
                  factor: float) -> Dict[str, dict]:
    """The quality benchmark's regime (students near their plateau, a teacher clearly ahead),
    checked on test-split results: each check's measured value, its bound and whether it holds.

    Args:
        results: ``variant -> [metrics of each seed]``; ``'plain'`` at every seed, ``longer``
            (the plain student trained ``factor`` times as long) at plain's first seed.
        teacher: The teacher's metrics.
    """
    plain = [r['coco/bbox_mAP'] for r in results['plain']]
    mean, spread = fmean(plain), max(plain) - min(plain)
    gain = results[longer][0]['coco/bbox_mAP'] / plain[0] - 1
    gap = teacher['coco/bbox_mAP'] - mean
    return {
        'plain at least half the teacher': dict(
            value=mean / teacher['coco/bbox_mAP'], bound='>= 0.5',
            holds=mean >= 0.5 * teacher['coco/bbox_mAP']),
        f'gain of the {factor:g}x schedule (same seed)': dict(
            value=gain, bound='< 0.10', holds=gain < 0.10),
        'teacher-student gap over the plain seed spread': dict(
            value=gap / spread if spread else float('inf'), bound='>= 4',
            holds=gap >= 4 * spread, gap=gap, spread=spread, seeds=len(plain)),
    }


def regime_table(checks: Dict[str, dict]) -> str:
    """Markdown: one row per regime check."""
    lines = ['| check | measured | bound | holds? |', '|---|---|---|---|']
    for name, check in checks.items():
        lines.append(f'| {name} | {check["value"]:.2f} | {check["bound"]} | '
                     f'{"yes" if check["holds"] else "no"} |')
    return '\n'.join(lines)


def quick_prediction(results: Dict[str, list], seeds: list, teacher: Dict[str, float],
                     quick_variants: Tuple[str, ...], quick_seeds: Tuple[int, ...]
                     ) -> Optional[Dict[str, dict]]:
    """How well the quick mode (``quick_variants`` at ``quick_seeds``) predicts a full table
    run at ``seeds`` (which must include the quick seeds; the quick runs are the full table's
    runs at those seeds): per quick variant, its difference to plain and gap closed from the
    quick seeds and from all, and whether the verdict (difference beyond the seed spread)
    agrees. ``None`` when the table lacks a quick variant or seed.

    Args:
        results: ``variant -> [metrics of each seed]``, seeds in the order of ``seeds``.
    """
    if not (set(quick_variants) <= set(results) and set(quick_seeds) <= set(seeds)):
        return None
    at = [seeds.index(s) for s in quick_seeds]
    quick = summarize({v: [results[v][i] for i in at] for v in quick_variants}, teacher)
    full = summarize({v: results[v] for v in quick_variants}, teacher)
    return {v: dict(quick_diff=quick[v]['diff'], full_diff=full[v]['diff'],
                    quick_gap_closed=quick[v]['gap_closed'],
                    full_gap_closed=full[v]['gap_closed'],
                    verdict_agrees=quick[v]['significant'] == full[v]['significant'])
            for v in quick_variants if v != 'plain'}


def quick_prediction_table(prediction: Dict[str, dict]) -> str:
    """Markdown: one row per quick variant, quick against full."""
    lines = ['| variant | diff vs plain, quick | full | gap closed, quick | full | '
             'same verdict? |', '|---|---|---|---|---|---|']
    for variant, row in prediction.items():
        lines.append(f'| {variant} | {row["quick_diff"]:+.3f} | {row["full_diff"]:+.3f} | '
                     f'{100 * row["quick_gap_closed"]:.0f}% | {100 * row["full_gap_closed"]:.0f}% '
                     f'| {"yes" if row["verdict_agrees"] else "no"} |')
    return '\n'.join(lines)
