"""The version of the project's code a run executes, so that a cached run is never reused after
a change that could alter its result.

A run executes the registered types its config names (``type='KTANDistiller'``, ...) and
those the project's code builds by name, the
modules its config imports (``custom_imports``) and ``tools/train.py``. Their project modules
are followed through their imports to the files that define what they import
(``from ..models import KTANDistiller`` reaches ``models/distiller.py`` through the package's
re-export; package ``__init__`` files that only import, for registration, are not followed),
and each file counts by its syntax tree without docstrings: comments and
docstrings change no result, so editing them keeps the cache. The versions of torch, mmcv,
mmengine and mmdet count too.
"""
import ast
import hashlib
import importlib.metadata
import os.path as osp
import re
from typing import Iterable, List, Optional, Set

from mmdet import registry
from mmengine.registry import Registry

from .runs import REPO_ROOT

PROJECT_PACKAGES = ('ktan_det', 'benchmarks')
# The training tool, and what `import ktan_det` does besides registering (safe loading).
ENTRY_POINTS = ('tools/train.py', 'ktan_det/utils/safe_load.py')
LIBRARIES = ('torch', 'mmcv', 'mmengine', 'mmdet')
# A registered type named in a config or in code: type='X', constructor='X' (and dict forms).
_TYPE = re.compile(r"""['"]?(?:type|constructor)['"]?\s*[=:]\s*['"]([\w.]+)['"]""")


def _registered_project_modules() -> dict:
    """``type name -> module file`` for every type a project module registered."""
    found = {}
    for reg in vars(registry).values():
        if not isinstance(reg, Registry):
            continue
        for type_name, cls in reg.module_dict.items():
            module = getattr(cls, '__module__', '')
            if module.split('.')[0] in PROJECT_PACKAGES:
                found[type_name] = _module_file(module)
    return found


def _module_file(module: str) -> Optional[str]:
    """The project file of a dotted module name (relative to the repo), or None."""
    base = osp.join(*module.split('.'))
    for candidate in (base + '.py', osp.join(base, '__init__.py')):
        if osp.isfile(osp.join(REPO_ROOT, candidate)):
            return candidate
    return None


def _absolute(path: str, node: ast.ImportFrom) -> str:
    """The dotted module an ``ImportFrom`` in file ``path`` names, relative imports resolved."""
    if not node.level:
        return node.module or ''
    parts = osp.dirname(path).split(osp.sep)
    base = '.'.join(parts[:len(parts) - node.level + 1])
    return f'{base}.{node.module}' if node.module else base


def _defining_file(module: str, name: str) -> Optional[str]:
    """The project file ``from module import name`` reaches: ``module/name.py`` if ``name`` is
    a submodule, else the file that defines ``name``, following a package's re-exports."""
    submodule = _module_file(f'{module}.{name}')
    if submodule is not None:
        return submodule
    path = _module_file(module)
    if path is None or not path.endswith('__init__.py'):
        return path
    for node in ast.walk(ast.parse(open(osp.join(REPO_ROOT, path)).read())):
        if isinstance(node, ast.ImportFrom) and any(
                (alias.asname or alias.name) == name for alias in node.names):
            return _defining_file(_absolute(path, node), name)
    return path


def _imported_files(path: str) -> List[Optional[str]]:
    """The project files the imports of ``path`` reach. ``import pkg`` of a package runs only
    its registrations (every KTAN run has them), so it is not followed."""
    found = []
    for node in ast.walk(ast.parse(open(osp.join(REPO_ROOT, path)).read())):
        if isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            if module.split('.')[0] in PROJECT_PACKAGES:
                found += [_defining_file(module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [_module_file(alias.name) for alias in node.names
                      if alias.name.split('.')[0] in PROJECT_PACKAGES]
    return [f for f in found if f is None or not f.endswith('__init__.py')] + [
        f for f in found if f is not None and f.endswith('__init__.py') and f != path
        and not _is_registration_only(f)]


def _is_registration_only(path: str) -> bool:
    """A package ``__init__`` that only imports (and lists ``__all__``)."""
    tree = ast.parse(open(osp.join(REPO_ROOT, path)).read())
    return all(isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr))
               or (isinstance(node, ast.Assign) and [getattr(t, 'id', None)
                                                      for t in node.targets] == ['__all__'])
               for node in tree.body)


def _without_docstrings(path: str) -> str:
    tree = ast.parse(open(osp.join(REPO_ROOT, path)).read())
    for node in ast.walk(tree):
        body = getattr(node, 'body', None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], 'value', None), ast.Constant) and isinstance(
                    body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def project_files(config_text: str, imports: Iterable[str] = ()) -> List[str]:
    """The project files a run of a config with this text executes (relative paths)."""
    registered = _registered_project_modules()
    todo = [registered[t] for t in _TYPE.findall(config_text) if t in registered]
    todo += [_module_file(m) for m in imports if m.split('.')[0] in PROJECT_PACKAGES]
    todo += list(ENTRY_POINTS)
    seen: Set[str] = set()
    while todo:
        path = todo.pop()
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += _imported_files(path)
        # Types the code builds by name (MODELS.build(dict(type='T2SAdapters', ...))).
        text = open(osp.join(REPO_ROOT, path)).read()
        todo += [registered[t] for t in _TYPE.findall(text) if t in registered]
    return sorted(seen)


def code_version(config_text: str, imports: Iterable[str] = ()) -> str:
    """A short hash of the code a run of this config executes (see the module docstring)."""
    digest = hashlib.sha256()
    for path in project_files(config_text, imports):
        digest.update(path.encode())
        digest.update(_without_docstrings(path).encode())
    for library in LIBRARIES:
        digest.update(f'{library}=={importlib.metadata.version(library)}'.encode())
    return digest.hexdigest()[:10]
