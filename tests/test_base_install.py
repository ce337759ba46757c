"""The serve-only base install (``pip install .``, no extras) in a fresh venv, used from a
folder outside the checkout: no TensorFlow, yet classify and the daemon work (issue 23, 1)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.harness import free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(300)
INSTALL_TIMEOUT_SECONDS = 240
TREE_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.egg-info",
                                     ".pytest_cache", ".ruff_cache", "runs", "data")
TERMINAL_LINE = re.compile(r"^\d\d:\d\d:\d\d  (\S+) +([a-z]+) +(\d\.\d\d)$")


@dataclass
class BaseVenv:
    """A fresh venv holding only genred's base install, and a folder outside the checkout."""

    root: Path
    workdir: Path

    def bin(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return {**env, "PATH": f"{self.root / 'bin'}:{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1"}

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), cwd=self.workdir, env=self.env(), text=True,
                              capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> BaseVenv:
    """``pip install <copy of this tree>`` into a new venv (pip's cache makes reruns quick)."""
    tmp = tmp_path_factory.mktemp("base-install")
    tree = tmp / "src"
    shutil.copytree(REPO_ROOT, tree, ignore=TREE_IGNORE)
    venv = BaseVenv(tmp / "venv", tmp / "elsewhere")
    venv.workdir.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(venv.root)], check=True, timeout=120)
    done = subprocess.run([venv.bin("python"), "-m", "pip", "install", "-q", str(tree)],
                          capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS,
                          env=venv.env())
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(tree)  # the install must not need the sources
    return venv


def test_no_tensorflow_or_keras_in_the_base_install(base_venv: BaseVenv) -> None:
    code = ("import importlib.util as u\n"
            "print([m for m in ('tensorflow', 'keras', 'matplotlib') if u.find_spec(m)])")
    result = base_venv.run(base_venv.bin("python"), "-c", code)
    assert result.stdout.strip() == "[]", result.stderr


def test_base_install_classifies_with_the_shipped_model(base_venv: BaseVenv,
                                                        shared_data: Path) -> None:
    clip = shared_data / "gtzan-mini" / "jazz" / "jazz.00001.flac"
    result = base_venv.run(base_venv.bin("genred"), "classify", str(clip), "--workers", "1")
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{clip}: ") and "slices" in first
    assert "XNNPACK" not in result.stderr and "clamping" not in result.stderr, result.stderr


def test_keras_runtime_without_the_extra_is_one_line(base_venv: BaseVenv) -> None:
    config = base_venv.workdir / "keras.yaml"
    config.write_text("inference: {runtime: keras}\nsources: [{name: demo, kind: demo}]\n"
                      f"server: {{port: {free_port()}}}\n")
    result = base_venv.run(base_venv.bin("genred"), "run", "--config", str(config))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("genred:")]
    assert len(errors) == 1 and "pip install 'genred[keras]'" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_training_commands_name_their_extra(base_venv: BaseVenv, tmp_path: Path) -> None:
    result = base_venv.run(base_venv.bin("genred"), "export", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "genred[keras]" in result.stderr.strip().splitlines()[-1]


def _read_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


def test_base_install_daemon_on_the_demo_says_what_it_hears(base_venv: BaseVenv) -> None:
    """``genred run --source demo:`` outside the checkout (built-in defaults, no config.yaml):
    a terminal line per genre change, a clean stop."""
    port = free_port()
    log = base_venv.workdir / "daemon.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [base_venv.bin("genred"), "run", "--source", "demo:", "--port", str(port)],
            cwd=base_venv.workdir, env=base_venv.env(), stdout=subprocess.PIPE,
            stderr=stderr, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any(TERMINAL_LINE.match(line) for line in lines):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{lines}\n{log.read_text()}"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(30)
        reader.join(5)
    assert status == 0, log.read_text()
    source, genre, confidence = TERMINAL_LINE.match(
        next(line for line in lines if TERMINAL_LINE.match(line))).groups()
    assert source == "source1" and 0 < float(confidence) <= 1  # --source names: sourceN
    text = log.read_text()
    assert "no config.yaml here: built-in defaults" in text
    assert "XNNPACK" not in text and "Traceback" not in text, text


def test_run_outside_the_project_names_config(base_venv: BaseVenv) -> None:
    result = base_venv.run(base_venv.bin("genred"), "run")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"genred: config error: no config.yaml in {base_venv.workdir}: pass --config FILE "
        f"(e.g. the project's config.yaml), or --source SPEC to listen with the built-in "
        f"defaults")
