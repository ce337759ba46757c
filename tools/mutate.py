"""Mutation score of the core modules with mutmut: ``scripts/dev mutate [MODULE...]`` (not CI).

Each module is mutated in a throw-away copy of the git-tracked tree (mutmut writes its
``mutants/`` folder there, never in the checkout) and only its related test files run
against each mutant. Surviving mutants listed in tests/mutation_equivalents.toml (the same
code either way) are left out of the score: killed / (mutants - equivalent). Log statements
are not mutated (``do_not_mutate_patterns``): their text is not behaviour.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_LOGGER = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS_PATH = REPO_ROOT / "tests" / "mutation_equivalents.toml"
MODULE_TESTS = {
    "daemon/smoother.py": ["tests/test_smoother.py"],
    "daemon/redact.py": ["tests/test_redact.py"],
    "daemon/change.py": ["tests/test_change.py"],
    "daemon/history.py": ["tests/test_history.py", "tests/test_history_boundaries.py"],
    "models/bfft.py": ["tests/test_bfft.py"],
    "models/musicnn/patch_cache.py": ["tests/test_musicnn_patch_cache.py"],
    "daemon/verdict.py": ["tests/test_verdict.py"],
    "models/outcome.py": ["tests/test_outcome.py"],
    "models/contract.py": ["tests/test_contract.py"],
    "daemon/schema.py": ["tests/test_schema.py"],
    "daemon/config.py": ["tests/test_config.py", "tests/test_config_limits.py",
                         "tests/test_hostile.py", "tests/test_precision.py",
                         "tests/test_change.py"],
    "models/musicnn/melspec.py": ["tests/test_musicnn_frontend.py", "tests/test_quiet_lift.py"],
    "models/musicnn/features.py": ["tests/test_musicnn_frontend.py"],
    "daemon/publisher.py": ["tests/test_publisher.py", "tests/test_publisher_admission.py"],
    "daemon/phases.py": ["tests/test_phases.py"],
}
"""The core modules measured so far and the test files that guard each."""
NOT_MUTATED_PATTERNS = [r"^\s*_LOGGER\.", r"^\s*logging\.getLogger"]
"""Lines whose statements mutmut leaves alone: log calls (their text is not behaviour)."""
KILLED_STATUSES = ("killed", "timeout", "segfault")
"""mutmut statuses where the tests did not pass (segfault: the test process crashed)."""
TOP_LEVEL = ["daemon", "models", "training", "bench", "tools", "examples", "config.yaml"]


@dataclass
class ModuleScore:
    """Outcome of one module's run."""

    module: str
    statuses: dict[str, str] = field(default_factory=dict)
    """mutmut's status per mutant name (killed, survived, timeout, no tests...)."""
    equivalent: list[str] = field(default_factory=list)
    survivors: dict[str, str] = field(default_factory=dict)
    """Non-equivalent surviving mutants -> their diff."""

    @property
    def killed(self) -> int:
        """Mutants a test failed on (a timeout or a crash counts: the tests did not pass)."""
        return sum(status in KILLED_STATUSES for status in self.statuses.values())

    @property
    def score_percent(self) -> float:
        """killed / (mutants - equivalent), in percent."""
        counted = len(self.statuses) - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0


def mutmut_config(module: str, tests: list[str]) -> str:
    """The [tool.mutmut] table of one module's run."""
    package = module.split("/")[0]
    also_copy = [name for name in TOP_LEVEL if name != package]
    values = {"source_paths": [f"{package}/"], "only_mutate": [module], "also_copy": also_copy,
              "pytest_add_cli_args_test_selection": tests,
              "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", "-x"],
              "do_not_mutate_patterns": NOT_MUTATED_PATTERNS}
    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]  # JSON is TOML
    return "\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def copy_tree(destination: Path) -> None:
    """The git-tracked files (as in the working tree) into ``destination``; ../shared linked."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=REPO_ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    for name in filter(None, names):
        source = REPO_ROOT / os.fsdecode(name)
        if source.is_file():
            target = destination / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shared = REPO_ROOT.parent / "shared"
    if shared.is_dir():  # tests read ../shared/data relative to the root mutmut runs in
        (destination / "shared").symlink_to(shared)


def mutmut(work: Path, *args: str, check: bool = True) -> str:
    """Run ``python -m mutmut ARGS`` in ``work``; its stdout."""
    env = {**os.environ, "GENRED_TEST_HOME_GUARD": "0"}  # others' writes are not kills
    result = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, text=True,
                            capture_output=True, check=False, env=env)
    if check and result.returncode != 0:
        raise RuntimeError(f"mutmut {' '.join(args)} failed:\n{result.stdout[-3000:]}"
                           f"{result.stderr[-3000:]}")
    return result.stdout


def mutant_diff(work: Path, name: str) -> str:
    """The changed lines of a mutant (``-old`` / ``+new``), as mutmut shows them."""
    shown = mutmut(work, "show", name, check=False)
    return "\n".join(line for line in shown.splitlines()
                     if re.match(r"^[-+](?![-+]{2})", line))


def load_equivalents(path: Path = EQUIVALENTS_PATH) -> list[dict[str, str]]:
    """The listed equivalent mutants: module, function, from, to, reason."""
    if not path.exists():
        return []
    return tomllib.loads(path.read_text())["equivalent"]


def is_listed(module: str, name: str, diff: str, equivalents: list[dict[str, str]]) -> bool:
    """Whether a surviving mutant is one of the listed equivalent ones."""
    function = name.split(".")[-1].rsplit("__mutmut_", 1)[0].replace("xǁ", "").replace("ǁ", ".")
    function = function.removeprefix("x_")
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    return any(entry["module"] == module and entry["function"] == function.strip(".")
               and entry["from"].strip() in removed and entry["to"].strip() in added
               for entry in equivalents)


def run_module(module: str, max_children: int) -> ModuleScore:
    """Mutate one module in a fresh copy of the tree and score its related tests."""
    tests = MODULE_TESTS[module]
    with tempfile.TemporaryDirectory(prefix="genred-mutate-") as folder:
        work = Path(folder)
        copy_tree(work)
        with (work / "pyproject.toml").open("a") as pyproject:
            pyproject.write(mutmut_config(module, tests))
        _LOGGER.info("mutating %s against %s", module, " ".join(tests))
        mutmut(work, "run", "--max-children", str(max_children))
        score = ModuleScore(module)
        for line in mutmut(work, "results", "--all", "true").splitlines():
            name, _, status = line.strip().rpartition(": ")
            if name:
                score.statuses[name] = status
        equivalents = load_equivalents()
        for name, status in score.statuses.items():
            if status in KILLED_STATUSES:
                continue
            diff = mutant_diff(work, name)
            if is_listed(module, name, diff, equivalents):
                score.equivalent.append(name)
            else:
                score.survivors[name] = diff
    return score


def print_report(scores: list[ModuleScore], verbose: bool) -> None:
    """One line per module (and the surviving mutants' diffs with ``verbose``)."""
    print(f"{'module':32} {'mutants':>7} {'killed':>6} {'equiv.':>6} {'survived':>8} "
          f"{'score':>6}")
    for score in scores:
        print(f"{score.module:32} {len(score.statuses):7d} {score.killed:6d} "
              f"{len(score.equivalent):6d} {len(score.survivors):8d} "
              f"{score.score_percent:5.1f}%")
        if verbose:
            for name, diff in score.survivors.items():
                print(f"  survived {name} ({score.statuses[name]})\n    "
                      + diff.replace("\n", "\n    "))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scripts/dev mutate``."""
    parser = argparse.ArgumentParser(prog="scripts/dev mutate", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"module paths (default: all of {', '.join(MODULE_TESTS)})")
    parser.add_argument("--max-children", type=int, default=2, help="parallel test processes")
    parser.add_argument("-v", "--verbose", action="store_true", help="show surviving mutants")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = [m for m in args.modules if m not in MODULE_TESTS]
    if unknown:
        parser.error(f"not measured yet: {unknown}; known: {list(MODULE_TESTS)} "
                     "(add a module and its test files to MODULE_TESTS in tools/mutate.py)")
    failed = 0
    for module in args.modules or MODULE_TESTS:
        try:
            print_report([run_module(module, args.max_children)], args.verbose)
        except RuntimeError as error:  # the next module still runs
            failed += 1
            print(f"{module}: {str(error)[-2000:]}")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
