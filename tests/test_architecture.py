"""The house rules: no import cycles between project modules (function-level imports too)
and no project module over MAX_MODULE_LINES lines."""

from __future__ import annotations

import ast
import itertools
import logging
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("daemon", "models", "training", "bench", "tools", "tests", "examples")
MAX_MODULE_LINES = 350


def _module_name(path: Path) -> str:
    """Dotted module name of a file under ROOT (packages without '.__init__')."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every project module: dotted name -> path."""
    return {_module_name(path): path for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` (or its nearest project parent) refers to, if any."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in ``path`` (top level or inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def _parents(module: str) -> list[str]:
    """Packages whose __init__ runs when ``module`` is imported."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports (a package import is not an edge to its parent)."""
    modules = project_modules()
    return {name: imports_of(name, path, modules) - set(_parents(name))
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None


def test_cycle_finder_sees_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_count(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from models import audio\n", encoding="utf-8")
    assert imports_of("x", path, {"models": path, "models.audio": path}) == {"models.audio"}
def test_no_module_over_limit() -> None:
    long = {name: n for name, path in project_modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_only_tests_import_tests() -> None:
    graph = import_graph()
    offenders = {name: sorted(t for t in targets if t.split(".")[0] == "tests")
                 for name, targets in graph.items() if name.split(".")[0] != "tests"}
    assert {name: t for name, t in offenders.items() if t} == {}


def _settings_classes(path: Path) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Class name -> (field names, base names) of every dataclass / Struct / Config class."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ClassDef):
            continue
        decorators = {ast.unparse(d).split("(")[0] for d in node.decorator_list}
        bases = frozenset(ast.unparse(b) for b in node.bases)
        if "dataclass" in decorators or any("Struct" in b or "Config" in b for b in bases):
            fields = frozenset(
                s.target.id for s in node.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                and "ClassVar" not in ast.unparse(s.annotation))
            found[node.name] = (fields, bases)
    return found


def find_twins(classes: dict[str, tuple[frozenset[str], frozenset[str]]]) -> list[tuple[str, str]]:
    """Pairs of unrelated classes where one's fields (3 or more) are all in the other's."""
    twins = []
    for (name, (fields, bases)), (other, (other_fields, other_bases)) in itertools.permutations(
            classes.items(), 2):
        related = name.rsplit(".", 1)[-1] in other_bases or other.rsplit(".", 1)[-1] in bases
        if len(fields) >= 3 and fields <= other_fields and not related and name < other:
            twins.append((name, other))
    return twins


def test_no_twin_settings_classes() -> None:
    """No two settings/data classes hold the same fields (one owner per idea)."""
    classes = {f"{module}.{name}": info for module, path in project_modules().items()
               if module.split(".")[0] != "tests"
               for name, info in _settings_classes(path).items()}
    assert find_twins(classes) == []


def test_twin_finder_sees_twins() -> None:
    a, b = frozenset("xyz"), frozenset("xyzw")
    assert find_twins({"m.A": (a, frozenset()), "m.B": (b, frozenset())}) == [("m.A", "m.B")]
    assert find_twins({"m.A": (a, frozenset()), "m.B": (b, frozenset({"A"}))}) == []


MODULE_STRING = re.compile(r"^(?:daemon|models|training)(?:\.[A-Za-z_][A-Za-z0-9_]*)*:"
                           r"[A-Za-z_][A-Za-z0-9_]*$")
"""A 'module:attribute' string naming project code."""


def _module_strings(path: Path) -> list[str]:
    """'module:attribute' string constants in a file."""
    return [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and MODULE_STRING.match(node.value)]


def test_module_strings_live_only_in_the_registry_and_all_resolve() -> None:
    """The model registry names code by 'module:attribute' (lazy: no Keras at import); each
    string is counted here, resolves, and names a module the import graph knows."""
    from models.registry import FRONTENDS, MODEL_KINDS, registry_targets, resolve

    modules = project_modules()
    elsewhere = {name: found for name, path in modules.items()
                 if name != "models.registry" and name.split(".")[0] != "tests"
                 and (found := _module_strings(path))}
    assert elsewhere == {}
    targets = registry_targets()
    assert sorted(targets) == sorted(_module_strings(modules["models.registry"]))
    assert len(targets) == len(FRONTENDS) + sum(len(k.targets()) for k in MODEL_KINDS.values())
    for target in targets:
        assert target.partition(":")[0] in modules, target
        assert callable(resolve(target)), target


def test_a_bad_registry_string_is_one_clear_error() -> None:
    from models.registry import RegistryError, resolve

    with pytest.raises(RegistryError, match="cannot import models.nope"):
        resolve("models.nope:build")
    with pytest.raises(RegistryError, match="models.vgg16 has no 'build_resnet'"):
        resolve("models.vgg16:build_resnet")
    with pytest.raises(RegistryError, match="is not 'module:attribute'"):
        resolve("models.vgg16")


def test_every_genred_error_has_the_one_root() -> None:
    """Errors raised on purpose share GenredError (the CLI prints it as one line, exit 2)."""
    from daemon.messages import ProtocolError
    from daemon.runner import StartupError
    from daemon.schema import ConfigError
    from daemon.sources import SourceConfigError
    from models.audio import AudioDecodeError
    from models.contract import ArtifactError
    from models.errors import GenredError
    from models.registry import RegistryError
    from training.errors import InputError

    for error in (ProtocolError, StartupError, ConfigError, SourceConfigError, AudioDecodeError,
                  ArtifactError, RegistryError, InputError):
        assert issubclass(error, GenredError), error
    assert issubclass(ConfigError, ValueError) and issubclass(RegistryError, LookupError)


def test_the_cli_prints_an_uncaught_genred_error_as_one_line(caplog, monkeypatch) -> None:
    from daemon import cli

    def handler(_args) -> int:
        raise cli.GenredError("model: http://bob:secret@host/x is broken")

    monkeypatch.setattr(cli, "_devices_command", handler)
    with caplog.at_level(logging.ERROR, logger="genred"):
        assert cli.main(["devices"]) == 2
    [record] = [r for r in caplog.records if r.name == "genred"]
    assert "is broken" in record.getMessage() and "secret" not in record.getMessage()
    assert record.exc_info is None  # one line, no traceback
