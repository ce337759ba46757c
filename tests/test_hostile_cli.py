"""Hostile files given to the CLI (issue 13): undecodable or bomb-like config.yaml, deeply
nested contract.json, an OUT_DIR that is a file. Each is one stderr line and exit status 2,
never a traceback; the config loader is also fuzzed with hypothesis."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import ConfigError, config_from_dict, read_config
from daemon.yamlsafe import load_yaml
from models.audio import NETWORK_TIMEOUT_SECONDS, AudioDecodeError, explain_ffmpeg_error, load_audio
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.timeout(180)
ALIAS_BOMB = "\n".join(
    [f"{a}: &{a} [" + ",".join([f"*{p}" if p else '"lol"'] * 9) + "]"
     for p, a in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)]
    + ["server: {port: *h}"]) + "\n"


def genred(*args: str, timeout_seconds: float = 120.0) -> subprocess.CompletedProcess:
    """``python -m daemon ARGS`` from the repository, stdin closed to /dev/null."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("GENRED_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "daemon", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_seconds,
                          stdin=subprocess.DEVNULL)


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    """Exit status 2, ``expected`` in stderr, no traceback."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert expected in result.stderr, result.stderr[-3000:]


def test_config_that_is_not_utf8_is_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"\xff\xfe\x00bin")
    result = genred("run", "--config", str(config))
    assert_one_line_error(result, "not UTF-8 text (byte 0xff at offset 0)")


def test_alias_bomb_is_refused_quickly_with_a_short_error(tmp_path):
    config = tmp_path / "bomb.yaml"
    config.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 400
    started = time.monotonic()
    result = genred("run", "--config", str(config), timeout_seconds=60)
    assert time.monotonic() - started < 30
    assert_one_line_error(result, "once aliases are expanded")
    assert len(result.stderr) < 2000


@pytest.mark.parametrize(("text", "expected"), [
    ("server:\n  port: 1\n  port: 2\n", "found duplicate key 'port'"),
    ("a: &a [*a]\n", "recursive alias"),
    ("sources: &s\n  - {name: a, kind: device}\n  - *s\n", "recursive alias"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
    ("a: &a [1]\n" + "".join(f"b{i}: *a\n" for i in range(101)), "more than 100 aliases"),
    ("server: {port: &p [" + "x" * 100_000 + "]}\n", "server.port: expected int"),
])
def test_hostile_yaml_is_a_bounded_config_error(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 1000


def test_merge_keys_may_still_be_overridden():
    assert load_yaml("b: &b {port: 1}\ns: {<<: *b, port: 2}\n")["s"] == {"port": 2}


def test_deeply_nested_contract_is_one_line_in_run_classify_and_export(tmp_path):
    model = tmp_path / "deep"
    model.mkdir()
    (model / "contract.json").write_text("[" * 200_000 + "]" * 200_000)
    config = tmp_path / "c.yaml"
    config.write_text(f"model: {model}\nsources: []\n")
    wav = tmp_path / "a.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=440:d=1",
                    str(wav)], check=True, timeout=60)
    for args in (("run", "--config", str(config)), ("classify", str(model), str(wav)),
                 ("export", str(model))):
        assert_one_line_error(genred(*args), "unreadable JSON (nested too deeply)")


def test_dataset_build_into_a_file_is_one_line(tmp_path):
    audio = tmp_path / "audio" / "rock"
    audio.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=440:d=1",
                    str(audio / "a.wav")], check=True, timeout=60)
    out = tmp_path / "out"
    out.write_text("not a folder")
    result = genred("dataset", "build", str(tmp_path / "audio"), str(out))
    assert_one_line_error(result, "exists and is not a folder")


@pytest.mark.parametrize(("host", "token", "expected"), [
    ("127.attacker.example", None, "server.token: is required when binding"),
    ("localhost.attacker.example", None, "server.token: is required when binding"),
    ("0.0.0.0", "   ", "server.token: must not be blank"),
    ("127.0.0.1", "\t", "server.token: must not be blank"),
])
def test_public_bind_needs_a_real_token(tmp_path, host, token, expected):
    config = tmp_path / "c.yaml"
    config.write_text("sources: []\n")
    args = ["run", "--config", str(config), "--host", host, "--port", "0"]
    result = genred(*args, *(["--token", token] if token else []))
    assert_one_line_error(result, expected)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_hosts_need_no_token(host):
    assert config_from_dict({"server": {"host": host}}).server.host == host


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_KEYS = st.one_of(st.sampled_from(["server", "sources", "port", "host", "token", "kind", "name",
                                   "url", "window", "hop_seconds", "smoothing", "alpha",
                                   "model", "inference", "log_level", "max_clients"]),
                  st.text(max_size=8), st.integers())
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=20)


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """A YAML document: a random mapping, sometimes with anchors/aliases spliced in."""
    data = draw(st.dictionaries(_KEYS, _VALUES, max_size=6))
    text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()))
    if draw(st.booleans()):
        text = "x0: &a " + yaml.safe_dump(draw(_VALUES), default_flow_style=True).strip() + \
            "\n" + text.replace(": ", ": *a #", draw(st.integers(0, 3)))
    return text + draw(st.sampled_from(["", "\n\x00", "\ufeff", "&b x: *b\n", "- 1\n"]))


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_texts())
def test_fuzzed_config_is_loaded_or_refused_with_a_config_error(tmp_path: Path, text: str):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        read_config(path).validate()
    except ConfigError as error:
        assert len(str(error)) < 2000


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port whose server accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for sock in [*accepted, server]:
        sock.close()


def test_classify_of_a_url_that_never_answers_times_out(silent_server):
    started = time.monotonic()
    result = genred("classify", str(REPO_ROOT / "models" / "genred-default"),
                    f"http://127.0.0.1:{silent_server}/radio.mp3", timeout_seconds=150)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "timed out" in result.stderr, result.stderr[-3000:]
    assert time.monotonic() - started < 120


def test_decoding_a_silent_server_fails_after_the_network_timeout(silent_server):
    started = time.monotonic()
    with pytest.raises(AudioDecodeError, match="timed out"):
        load_audio(f"http://127.0.0.1:{silent_server}/radio.mp3")
    assert time.monotonic() - started < NETWORK_TIMEOUT_SECONDS + 10


def test_video_only_file_says_no_audio_stream(tmp_path):
    video = tmp_path / "video.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=1",
                    str(video)], check=True, timeout=60)
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        load_audio(video)
    assert "To ignore this" not in explain_ffmpeg_error(
        "Stream map '0:a:0' matches no streams.\nTo ignore this, add a trailing '?' to the map.")


def test_hls_scheme_is_refused_by_the_config_with_a_hint(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("sources: []\n")
    result = genred("run", "--config", str(config), "--source", "hls://example.org/live")
    assert_one_line_error(result, "use http(s)://.../x.m3u8")


@pytest.mark.parametrize(("config_text", "flags"), [
    ("sources: []\n", ("--source", "hls://user:hunter2@example.org/live?token=tok3n")),
    ("mqtt:\n  url: 'http://user:hunter2@broker/x?token=tok3n'\n", ()),
    # a value of the wrong type is quoted as it is: only the CLI's redaction hides it
    ("sources:\n  - {kind: url, name: a, url: ['http://user:hunter2@h/s?token=tok3n']}\n", ()),
])
def test_config_errors_of_run_never_show_credentials(tmp_path, config_text, flags):
    """`genred run` names the bad key and value, with user info and secret values as ***."""
    config = tmp_path / "c.yaml"
    config.write_text(config_text)
    result = genred("run", "--config", str(config), *flags)
    assert_one_line_error(result, "config error")
    assert "***@" in result.stderr and "token=***" in result.stderr, result.stderr
    assert "hunter2" not in result.stderr and "tok3n" not in result.stderr, result.stderr
