"""Imports go one way, down the layers of docs/design.md ("The layer rule"), and inference never loads training code.

From the bottom up:

    0  critic/*.py        records, home, keys, store, embed, style model, ...
    1  index/             the FAISS store and the recommenders
    2  critic/writer/     the description and critique writer
    3  critic/service.py, critic/follow.py, critic/writing.py (and build, build_ray, repair, eval_recommend and
       pregenerate: a whole home)
    4  api/, critic/cli.py (and critic/explore.py, the notebooks' helper)

A module may import its own layer or a lower one. The test reads the source with ``ast`` (nothing is imported), so
an import inside a function counts as much as one at the top of the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("critic", "index", "api")

TOP = {"critic.cli", "critic.explore"}
SERVICE = {
    "critic.service", "critic.follow", "critic.writing", "critic.repair", "critic.build", "critic.build_ray",
    "critic.build_parity", "critic.eval_recommend", "critic.pregenerate",
}
# Offline code: training, the build pipeline and the evaluation protocols. The server and the CLI's query commands
# must run without loading any of it (it drags in optimisers and evaluation data, and it changes more often).
TRAINING = {
    "critic.train",
    "critic.build",
    "critic.build_ray",
    "critic.build_parity",
    "critic.evaluate",
    "critic.eval_recommend",
    "critic.writer.train",
    "critic.writer.protocol",
    "critic.writer.evaluate",
}
# Entry points that run training on request (`critic build`, `critic train`, `critic eval`).
DRIVERS = {"critic.cli", "critic.explore"}
LAYER_NAMES = ("critic base", "index/", "critic/writer/", "service", "api/ and the CLI")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module.startswith("api") or module in TOP:
        return 4
    if module in SERVICE:
        return 3
    if module.startswith("critic.writer"):
        return 2
    if module.startswith("index"):
        return 1
    return 0


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = project_modules()


def imported(module: str, source: str | None = None) -> set[str]:
    """The project modules ``module``'s source imports, wherever the import statement sits."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x / from .x import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from critic.writer import train` imports the module critic.writer.train
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found - {module}


def loaded_by(module: str) -> set[str]:
    """What importing ``module`` runs: itself and the ``__init__`` of every package above it."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & MODULES.keys()


GRAPH = {module: imported(module) for module in MODULES}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{MODULES[m].relative_to(ROOT)} ({LAYER_NAMES[layer(m)]}) imports {target} ({LAYER_NAMES[layer(target)]})"
        for m, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer(target) > layer(m)
    ]


def training_chain(start: str) -> list[str] | None:
    """The shortest chain of imports from ``start`` to a training module, or None."""
    seen, frontier = {start}, [[start]]
    while frontier:
        chain = frontier.pop(0)
        for target in sorted(GRAPH[chain[-1]]):
            for module in sorted(loaded_by(target)):
                if module in TRAINING:
                    return [*chain, module]
                if module not in seen:
                    seen.add(module)
                    frontier.append([*chain, module])
    return None


def test_each_package_has_its_layer():
    modules = ("critic.records", "index.store", "critic.writer.drafter", "critic.service", "api.app", "critic.cli")
    assert [layer(m) for m in modules] == [0, 1, 2, 3, 4, 4]


def test_the_checker_finds_an_upward_import():
    """Fed a records module that imports the index at the top and the API inside a function, it names both."""
    source = "import numpy\nfrom index.store import VectorStore\n\n\ndef f():\n    from api import app\n"
    graph = {"critic.records": imported("critic.records", source)}
    assert upward_imports(graph) == [
        "critic/records.py (critic base) imports api (api/ and the CLI)",
        "critic/records.py (critic base) imports api.app (api/ and the CLI)",
        "critic/records.py (critic base) imports index.store (index/)",
    ]


def test_nothing_imports_upward():
    found = upward_imports(GRAPH)
    assert not found, "upward imports:\n" + "\n".join(found)


def test_inference_never_loads_training_code():
    inference = sorted(m for m in MODULES if m not in TRAINING | DRIVERS)
    chains = [" -> ".join(chain) for chain in map(training_chain, inference) if chain]
    assert not chains, "inference modules that load training code:\n" + "\n".join(chains)
