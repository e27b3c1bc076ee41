"""Every command in README.md and docs/ works: the ones that need a GPU, several machines or COCO
by a dry run (arguments parse, the config loads and its model builds), the others for real on
the tiny synthetic set with a tiny schedule."""
import glob
import os
import os.path as osp
import re
import shlex
import stat
import subprocess
import sys

import pytest
from mmdet.registry import MODELS

from conftest import REPO, load_tool

TINY_SCHEDULE = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                 'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
                 'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                 'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
                 'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']
# The schedule of the synthetic teacher and KTAN configs (their documented checkpoints).
DOC_CHECKPOINTS = {'iter_9000.pth': 'iter_2.pth', 'iter_4500.pth': 'iter_2.pth'}


def documented_commands():
    """Shell commands in fenced bash blocks and inline code that runs a tool with arguments,
    in document order."""
    commands = []
    for path in ['README.md'] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md'))):
        with open(osp.join(REPO, path)) as f:
            text = f.read()
        for block in re.findall(r'```bash\n(.*?)```', text, re.S):
            for line in block.replace('\\\n', ' ').splitlines():
                line = line.split(' #')[0].strip()
                if line and not line.startswith('#'):
                    commands.append(line)
        commands += re.findall(
            r'`(python tools/[^`\s]+(?: [^`\n]+)?|tools/[^`\s]+ [^`\n]+)`', text)
    return list(dict.fromkeys(commands))


COMMANDS = documented_commands()


def _substitute(command: str, places: dict) -> str:
    command = re.sub(r'\[--compare (\S+)\]', r'--compare \1', command)
    command = command.replace(' [WORK_DIR ...]', ' WORK_DIR').replace('WORK_DIR...', 'WORK_DIR')
    for doc, tiny in DOC_CHECKPOINTS.items():
        command = command.replace(doc, tiny)
    for token, value in places.items():
        command = re.sub(rf'(?<![\w/.-]){re.escape(token)}(?![\w-])', value, command)
    return command


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A directory to run the documented commands from, as from a checkout's root."""
    root = tmp_path_factory.mktemp('docs')
    os.symlink(osp.join(REPO, 'configs'), root / 'configs')
    os.symlink(osp.join(REPO, 'tools'), root / 'tools')
    return root


@pytest.fixture
def places(tiny_ktan_run, tiny_data, workspace, monkeypatch):
    config, work_dir, checkpoint = tiny_ktan_run
    monkeypatch.chdir(workspace)
    return {'CONFIG': config, 'CHECKPOINT': checkpoint, 'WORK_DIR': work_dir,
            'IMAGE': osp.join(tiny_data, 'val', '000000.png'), 'PLAIN_STUDENT.pth': checkpoint,
            'PLAIN.pth': checkpoint, 'OUT_DIR': str(workspace / 'out'), 'GPUS': '2',
            'PARTITION': 'gpu', 'JOB': 'ktan', 'work_dirs/RUN/iter_2.pth': checkpoint}


def _fake_launchers(tmp_path) -> dict:
    """`python` and `srun` that record their arguments instead of launching anything."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name in ('python', 'srun'):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/launched\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}')


def _dry_run_training(argv, tiny_data):
    """Arguments parse, the config loads with them and its model builds (teacher weights
    aside: they come from the network or a GPU machine)."""
    tool = load_tool('train')
    cfg = tool.load_config(tool.parse_args(argv))
    if cfg.model.type == 'KTANDistiller':
        cfg.model.teacher_ckpt = None
    MODELS.build(cfg.model)


def _ensure_trained(argv, places, tiny_data):
    """Documented commands may use a checkpoint an earlier documented command trains: train it
    first (tiny schedule) when it is not there yet."""
    for word in argv:
        match = re.fullmatch(r'(?:model\.teacher_ckpt=)?work_dirs/([^/]+)/iter_2\.pth', word)
        if match and not osp.exists(word.split('=')[-1]):
            producer = next(c for c in COMMANDS if c.startswith('python tools/train.py')
                            and f'/{match.group(1)}.py' in c)
            _run_tool(shlex.split(_substitute(producer, places))[1:], places, tiny_data)


def _run_tool(words, places, tiny_data):
    """Run ``tools/<name>.py ARGS`` in-process: for real on the synthetic set with a tiny
    schedule, or as a dry run where it needs COCO or a GPU."""
    name, argv = osp.splitext(osp.basename(words[0]))[0], list(words[1:])
    # Hours of CPU, or a GPU (the smoke kit's dry run and the demo have their own tests): the
    # arguments parse.
    if name.startswith('benchmark_') or name in ('gpu_smoke', 'run_demo'):
        load_tool(name).parse_args(argv)
        return
    synthetic = places['CONFIG'] in argv or any('synthetic' in w for w in argv)
    if name in ('train', 'test') and (not synthetic or '--amp' in argv):
        if name == 'train' and '--amp' not in argv:
            _dry_run_training(argv, tiny_data)
        else:  # COCO evaluation, or AMP (GPU only): the arguments parse, the config loads
            tool = load_tool(name)
            tool.load_config(tool.parse_args(argv))
        return
    if name in ('train', 'test'):
        _ensure_trained(argv, places, tiny_data)
        at = argv.index('--cfg-options') if '--cfg-options' in argv else len(argv)
        argv = argv[:at] + ['--data-root', tiny_data] + argv[at:] + (
            [] if at < len(argv) else ['--cfg-options']) + TINY_SCHEDULE
        if name == 'train' and '--work-dir' not in argv and places['CONFIG'] in argv:
            argv += ['--work-dir', osp.join('work_dirs', 'docs_tiny_run')]
    if name == 'make_synthetic_dataset':  # the documented set takes 40 s to draw: a few images
        argv[argv.index('--out') + 1] = osp.join('generated', str(len(os.listdir('.'))))
        for flag, count in (('--train', '4'), ('--val', '2'), ('--test', '2')):
            if flag in argv:
                argv[argv.index(flag) + 1] = count
            else:
                argv += [flag, count]
    load_tool(name).main(argv)


@pytest.mark.parametrize('command', COMMANDS)
def test_documented_command(command, places, tiny_data, tmp_path):
    command = _substitute(command, places)
    words = shlex.split(command)
    env_prefix = {}
    while '=' in words[0] and not words[0].startswith(('python', 'tools')):
        key, value = words.pop(0).split('=', 1)
        env_prefix[key] = value
    if words[0] == 'make':
        out = subprocess.run(['make', '-n', '-C', REPO, *words[1:]], capture_output=True,
                             text=True, check=True).stdout
        assert {'demo': 'tools/run_demo.py', 'test': '-m pytest', 'env': 'setup_env.sh',
                'bench-env': 'bench-packages'}[words[1]] in out
        return
    if words[0] in ('tools/dist_train.sh', 'tools/slurm_train.sh'):
        env = {**_fake_launchers(tmp_path), **env_prefix}
        subprocess.run(['bash', osp.join(REPO, words[0]), *words[1:]], env=env, check=True)
        launched = (tmp_path / 'launched').read_text()
        assert 'tools/train.py' in launched and '--launcher' in launched
        at = next(i for i, w in enumerate(words) if w.endswith('.py') and i > 0)
        options = words[words.index('--cfg-options'):] if '--cfg-options' in words else []
        _dry_run_training([words[at], *options], tiny_data)
        return
    if '$(' in command:  # stock MMDetection's own tools/test.py on an exported student
        export = load_tool('export_student').main([places['CHECKPOINT'], str(tmp_path / 'x')])
        command = command.replace('work_dirs/RUN/student/student_config.py', export[1])
        command = command.replace('work_dirs/RUN/student/student.pth', export[0])
        command = command.replace('python ', f'{sys.executable} ', 2)
        result = subprocess.run(['bash', '-c', command + ' --work-dir ' + str(tmp_path / 'w')],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return
    assert words[0] == 'python' and words[1].startswith('tools/'), command
    _run_tool(words[1:], places, tiny_data)
