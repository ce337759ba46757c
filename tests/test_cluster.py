"""``genred classify`` / ``dataset build`` on a real Dask cluster, a local pool, and resumed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster_helpers import tiny_artifact
from tests.conftest import make_tone_file
from training.cluster_harness import REPO_ROOT, child_env, dask_cluster

pytestmark = pytest.mark.tf
RUN_TIMEOUT_SECONDS = 300
N_FILES = 8


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return tiny_artifact(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A small folder of 125-s tones (2 slices each after the intro/outro rule)."""
    folder = tmp_path_factory.mktemp("library")
    for index in range(N_FILES):
        make_tone_file(folder / f"tone{index}.flac", 150 + 400 * index, 125.0, 22050)
    return folder


def genred(*args: str) -> subprocess.CompletedProcess:
    """``genred ARGS`` in a subprocess of this checkout (bounded time)."""
    return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True,
                          text=True, env=child_env(), cwd=REPO_ROOT,
                          timeout=RUN_TIMEOUT_SECONDS, check=False)


def classify_json(*args: str) -> list[dict]:
    """Results of ``genred classify ... --json`` (it must succeed)."""
    done = genred("classify", *args, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def local_results(tiny_model, library) -> list[dict]:
    return classify_json(str(tiny_model), str(library), "--workers", "1")


def test_cluster_gives_exactly_the_local_results(tiny_model, library, local_results,
                                                 tmp_path):
    assert [Path(r["file"]).name for r in local_results] == \
        [f"tone{i}.flac" for i in range(N_FILES)]
    assert all(r["n_slices"] == 2 for r in local_results)
    with dask_cluster(tmp_path) as cluster:
        remote = classify_json(str(tiny_model), str(library), "--cluster", cluster.address)
    assert remote == local_results


def test_local_pool_gives_the_same_results(tiny_model, library, local_results):
    assert classify_json(str(tiny_model), str(library), "--workers", "2") == local_results


def test_a_killed_worker_loses_no_file(tiny_model, library, local_results, tmp_path):
    output = tmp_path / "results.jsonl"
    with dask_cluster(tmp_path) as cluster:
        run = subprocess.Popen([sys.executable, "-m", "daemon", "classify", str(tiny_model),
                                str(library), "--cluster", cluster.address, "--json",
                                "--output", str(output)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=child_env(),
                               cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            while not (output.is_file() and output.read_text().count("\n") >= 1):
                assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
                time.sleep(0.05)
            cluster.kill_worker(0)
            stdout, stderr = run.communicate(timeout=RUN_TIMEOUT_SECONDS)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=10)
    assert run.returncode == 0, stderr[-3000:]
    assert json.loads(stdout) == local_results
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["file"] for r in lines) == sorted(r["file"] for r in local_results)


def test_output_file_resumes_and_errors_do_not_stop_the_run(tiny_model, library, tmp_path):
    output = tmp_path / "results.jsonl"
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio" * 50)
    files = [str(library / "tone0.flac"), str(broken), str(library / "tone1.flac")]
    first = genred("classify", str(tiny_model), *files, "--workers", "1", "--output",
                   str(output))
    assert first.returncode == 1 and "1 of 3 files failed" in first.stderr
    assert "broken.flac" in first.stderr.splitlines()[-2]
    lines = output.read_text().splitlines()
    assert [("error" in json.loads(line)) for line in lines] == [False, True, False]
    second = genred("classify", str(tiny_model), *files, "--workers", "1", "--output",
                    str(output), "--json")
    assert second.returncode == 1 and json.loads(second.stdout)[0]["file"] == str(broken)
    assert len(json.loads(second.stdout)) == 1  # the two done files were skipped


def test_dataset_build_on_the_cluster_equals_the_local_build(library, tmp_path):
    audio = tmp_path / "audio"
    for genre, names in (("low", ["tone0", "tone1"]), ("high", ["tone6", "tone7"])):
        (audio / genre).mkdir(parents=True)
        for name in names:
            (audio / genre / f"{name}.flac").symlink_to(library / f"{name}.flac")
    local = genred("dataset", "build", str(audio), str(tmp_path / "local"), "--workers", "1")
    assert local.returncode == 0, local.stderr[-3000:]
    with dask_cluster(tmp_path) as cluster:
        remote = genred("dataset", "build", str(audio), str(tmp_path / "remote"),
                        "--cluster", cluster.address)
    assert remote.returncode == 0, remote.stderr[-3000:]
    manifest = (tmp_path / "local" / "manifest.csv").read_text()
    assert manifest == (tmp_path / "remote" / "manifest.csv").read_text()
    pngs = sorted(p.relative_to(tmp_path / "local")
                  for p in (tmp_path / "local").rglob("*.png"))
    assert len(pngs) == 8
    for png in pngs:
        assert (tmp_path / "local" / png).read_bytes() == (tmp_path / "remote" / png).read_bytes()


def test_a_local_pool_leaves_port_8787_alone():
    import socket
    import warnings

    from training.cluster import open_client

    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 8787))  # as a second run (or anything else) would hold it
        held.listen()
    except OSError:
        pass  # taken already: the same situation
    try:
        with warnings.catch_warnings(record=True) as caught, open_client(None, 2) as client:
            warnings.simplefilter("always")
            assert client is not None
    finally:
        held.close()
    assert not [w for w in caught if "8787" in str(w.message)]
