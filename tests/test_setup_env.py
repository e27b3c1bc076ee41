"""tools/setup_env.sh on an environment that is already there (building one takes half an hour:
not a test)."""
import hashlib
import os
import os.path as osp
import shutil
import subprocess
import sys

from conftest import REPO

# What keys the shared stack; the test tools are keyed apart (.ktan-tests).
PINS = ('build.txt', 'runtime.txt')


def _checkout(tmp_path):
    """A copy of the set-up script and the pins, and the hash setup_env.sh gives the pins."""
    repo = tmp_path / 'repo'
    shutil.copytree(osp.join(REPO, 'requirements'), repo / 'requirements')
    (repo / 'tools').mkdir()
    shutil.copy(osp.join(REPO, 'tools', 'setup_env.sh'), repo / 'tools')
    text = sys.version + '\n' + ''.join(
        (repo / 'requirements' / name).read_text() for name in PINS)
    return repo, hashlib.sha256(text.encode()).hexdigest()[:16]


def _tests_hash(repo):
    return hashlib.sha256((repo / 'requirements' / 'tests.txt').read_bytes()).hexdigest()[:16]


def _layered_venv(repo, shared):
    """A .venv set up over the shared cache earlier, its interpreter this one (which sees the
    stack and ktan_det)."""
    python = repo / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (repo / '.venv' / '.ktan-shared').write_text(f'{shared}\n')
    (repo / '.venv' / '.ktan-editable').write_text(f'{repo}\n')


def test_a_checkout_set_up_over_the_cache_keeps_it_without_the_variable(tmp_path):
    repo, pins_hash = _checkout(tmp_path)
    shared = tmp_path / 'cache' / f'venv-{pins_hash}'
    shared.mkdir(parents=True)
    (shared / '.ktan-pins').write_text(f'{pins_hash}\n')
    (shared / '.ktan-tests').write_text(f'{_tests_hash(repo)}\n')
    _layered_venv(repo, shared)
    env = {k: v for k, v in os.environ.items() if k != 'KTAN_ENV_CACHE'}
    result = subprocess.run(['bash', str(repo / 'tools' / 'setup_env.sh')], capture_output=True,
                            text=True, env={**env, 'PYTHON': sys.executable})
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'building' not in result.stdout
    assert f'packages in {shared}' in result.stdout
    assert (repo / '.venv' / '.ktan-shared').read_text().strip() == str(shared)
    assert not (repo / '.venv' / '.ktan-pins').exists()  # not replaced by a full environment


def test_make_hands_the_chosen_interpreter_to_the_set_up_script():
    # `PYTHON=python3.11 make demo` (README): the recipes, and so setup_env.sh, must see it.
    out = subprocess.run(['make', '-s', '-C', REPO, '--eval', 'show-python: ; @echo $$PYTHON',
                          'show-python'], capture_output=True, text=True,
                         env={**os.environ, 'PYTHON': 'python3.11'}, check=True).stdout
    assert out.strip() == 'python3.11'
