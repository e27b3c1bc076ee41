"""The code base stays ruff-clean (rules in ruff.toml)."""
import os.path as osp
import subprocess

import ruff

from conftest import REPO


def _ruff_binary() -> str:
    """The ruff executable of the environment that holds the ruff package: a checkout's .venv
    over the shared cache (tools/setup_env.sh) has the package on its path, not the binary."""
    package = osp.dirname(osp.abspath(ruff.__file__))  # PREFIX/lib/pythonX.Y/site-packages/ruff
    prefix = osp.dirname(osp.dirname(osp.dirname(osp.dirname(package))))
    return osp.join(prefix, 'bin', 'ruff')


def test_ruff_is_clean():
    result = subprocess.run([_ruff_binary(), 'check', 'ktan_det', 'tools', 'tests', 'benchmarks'],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
