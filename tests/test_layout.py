"""The floor plan: imports only ever go down.

    data_pipeline -> keyboard_lm.phone -> keyboard_lm.harness -> keyboard_lm.training -> export -> the commands
                                                                            (keyboard_lm's own modules)

Every module's imports are read with ``ast`` (those inside functions too, where TensorFlow
is imported lazily); an import of a package above the importer's is a failure, and so is
TensorFlow or Keras anywhere in the phone package or in data_pipeline's TF-free modules.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("data_pipeline", "keyboard_lm.phone", "keyboard_lm.harness", "keyboard_lm.training", "export", "keyboard_lm")
TF_FREE = ("keyboard_lm.phone", "keyboard_lm.harness", "data_pipeline.tokenization", "data_pipeline.vocab", "data_pipeline.corpora",
           "data_pipeline.textio", "data_pipeline.errors", "data_pipeline.progress",
           "data_pipeline.pipeline_config", "keyboard_lm.training.config")
TF_FREE_MODULES = ("keyboard_lm.training.cells",)  # the cell table itself (its kinds' modules use TF)
HEAVY = ("tensorflow", "tensorflow_text", "keras", "tf_keras")
LARGEST_SHARE = 0.30  # of the project's Python lines, in any one package of FLOORS


def tf_free(name):
    return name.startswith(TF_FREE) or name in TF_FREE_MODULES


def floor(module):
    """The index in FLOORS of the package holding ``module``; None outside the project."""
    best = None
    for i, package in enumerate(FLOORS):
        if module == package or module.startswith(package + "."):
            if best is None or len(package) > len(FLOORS[best]):
                best = i
    return best


def modules():
    for package in ("data_pipeline", "keyboard_lm", "export"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imported(name, path):
    """[(line, module)] of every import in the file, at any depth. ``from a import b`` counts
    as ``a.b`` when that is a module of the project, else as ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").exists() or \
                    (ROOT / Path(*sub.split(".")) / "__init__.py").exists()
                found.append((node.lineno, sub if is_module else base))
    return found


ALL = list(modules())


def test_no_package_holds_more_than_30_percent_of_the_lines():
    lines = {}
    for name, path in ALL:
        package = FLOORS[floor(name)]
        lines[package] = lines.get(package, 0) + len(path.read_text(encoding="utf-8").splitlines())
    total = sum(lines.values())
    largest = max(lines, key=lines.get)
    assert lines[largest] <= LARGEST_SHARE * total, \
        f"{largest} holds {lines[largest]:,} of {total:,} lines ({lines[largest] / total:.0%})"


def test_every_package_is_on_a_floor():
    assert {floor(name) for name, _ in ALL} == set(range(len(FLOORS)))
    assert all(floor(name) is not None for name, _ in ALL)


@pytest.mark.parametrize("name,path", ALL, ids=[name for name, _ in ALL])
def test_imports_only_go_down(name, path):
    mine = floor(name)
    upward = [f"{path.relative_to(ROOT)}:{line} imports {target} ({FLOORS[floor(target)]} is above "
              f"{FLOORS[mine]})"
              for line, target in imported(name, path)
              if floor(target) is not None and floor(target) > mine]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("name,path", [(n, p) for n, p in ALL if tf_free(n)],
                         ids=[n for n, _ in ALL if tf_free(n)])
def test_tensorflow_free_modules_never_name_tensorflow(name, path):
    heavy = [f"{path.relative_to(ROOT)}:{line} imports {target}" for line, target in imported(name, path)
             if target.split(".")[0] in HEAVY or target == "data_pipeline.dataset"
             or target.startswith(("data_pipeline.dataset", "data_pipeline.tf_tokenization", "data_pipeline.stats",
                                   "keyboard_lm.training.model", "keyboard_lm.training.loop"))]
    assert not heavy, "\n".join(heavy)


def test_tensorflow_free_modules_import_with_tensorflow_blocked():
    names = [n for n, _ in ALL if tf_free(n) and not n.endswith("make_unicode_tables")]
    code = ("import sys\n"
            "for m in ('tensorflow', 'tensorflow_text', 'keras'): sys.modules[m] = None\n"
            + "".join(f"import {n}\n" for n in names)
            + "assert not any(m.startswith(('tensorflow', 'keras')) for m in sys.modules if sys.modules[m])\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
