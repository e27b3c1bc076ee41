"""Read back what MMEngine logged: the rows of a run's ``scalars.json``."""
import glob
import json
import os.path as osp
from typing import Dict, List


def scalar_logs(work_dir: str) -> List[Dict]:
    """Every row MMEngine logged to ``vis_data/scalars.json`` in ``work_dir``, all runs
    (a resumed run writes a second timestamped directory) in time order."""
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows
