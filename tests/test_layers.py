"""The house in layers: imports flow one way, `models <- training <- tasks <- (hub, cli, examples)`, with no cycle.
Every import counts, those inside functions included; a module's layer is that of its folder (or, for the few
modules at the package's top, the one given here)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "modeling_lstm_trm"
# Folders inside the package and the project's top-level `tokenization/` (installed as modeling_lstm_trm.tokenization)
FOLDERS = {f"{PACKAGE}/models": "models", f"{PACKAGE}/training": "training", f"{PACKAGE}/tasks": "tasks",
           "tokenization": "tokenization"}
TOP_MODULES = {"checks": "utilities", "auto": "utilities", "loading": "loading", "hub": "commands",
               "cli": "commands", "pipelines": "commands", "__init__": "package"}
ORDER = ["utilities", "models", "tokenization", "loading", "training", "tasks", "commands", "package"]
# What each layer may import besides itself: the layers below it, except where a layer is kept narrower.
MAY_IMPORT = {
    "utilities": set(),
    "models": set(),  # nothing else of the package: a model folder is copied to the Hub as it is
    "tokenization": set(),
    "loading": {"utilities", "models"},
    "training": {"utilities", "models"},  # neither the Hub machinery nor any task
    "tasks": {"utilities", "models", "tokenization", "loading", "training"},
    "commands": {"utilities", "models", "tokenization", "loading", "training", "tasks"},
    "package": set(ORDER),
}


def modules() -> dict[str, Path]:
    """Every module of the package by its import name (tokenization/ under the name it is installed as)."""
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")) + sorted((ROOT / "tokenization").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[0] == "tokenization":
            parts = [PACKAGE, *parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = modules()


def layer(name: str) -> str:
    path = MODULES[name].relative_to(ROOT).as_posix()
    for folder, folder_layer in FOLDERS.items():
        if path.startswith(folder + "/"):
            return folder_layer
    return TOP_MODULES[Path(path).stem]


def imports(name: str) -> set[str]:
    """The package's modules that `name` imports, anywhere in its file (functions included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            head = ".".join(base + ([node.module] if node.module else []))
            targets = [head] + [f"{head}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def test_every_module_has_a_layer():
    assert {name: layer(name) for name in MODULES if layer(name) not in ORDER} == {}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_and_those_it_may(name):
    own = layer(name)
    against = sorted(f"{target} ({layer(target)})" for target in GRAPH[name]
                     if layer(target) != own and layer(target) not in MAY_IMPORT[own])
    assert against == [], f"{name} ({own}) imports against the layers"


def test_a_model_folder_imports_only_itself_and_tasks_do_not_import_each_other():
    for name, targets in GRAPH.items():
        parts = name.split(".")
        if layer(name) == "models" and len(parts) > 3:
            assert all(t.split(".")[:3] == parts[:3] for t in targets if layer(t) == "models"), name
        if layer(name) == "tasks" and len(parts) > 3:  # a task folder: only itself and what tasks share
            others = [t for t in targets if layer(t) == "tasks" and len(t.split(".")) > 3 and t.split(".")[2] !=
                      parts[2]]
            assert others == [], f"{name} imports another task: {others}"


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]):
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])


def test_importing_the_package_loads_no_plotting_and_no_hub_machinery():
    code = ("import sys, modeling_lstm_trm\n"
            "print(sorted(m for m in ('matplotlib', 'modeling_lstm_trm.hub', 'modeling_lstm_trm.tasks.task', "
            "'modeling_lstm_trm.cli') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.strip() == "[]"


def test_the_model_files_read_in_one_sitting():
    """The modeling file as transformers writes one (solving, the carry and the pipeline in files of their own), and no
    function of models/ longer than a screen."""
    assert len((ROOT / PACKAGE / "models" / "lstm_trm" / "modeling_lstmtrm.py").read_text().splitlines()) <= 600
    long = []
    for path in sorted((ROOT / PACKAGE / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []
