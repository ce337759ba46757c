"""The shipped default's TFLite export agrees with its Keras model on real windows."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT
from tools.export_agreement import main

pytestmark = pytest.mark.tf


def test_export_agrees_on_real_clips_and_a_short_loop(shared_data, capsys):
    clips = [shared_data / "gtzan-mini" / genre / f"{genre}.00002.flac"
             for genre in ("classical", "pop", "rock", "reggae")]
    clips += [shared_data / "cc-music" / "sorohanro_-_solo-trumpet-06.hq.ogg",
              sorted((shared_data / "emotify-share" / "pop").glob("*.mp3"))[0]]
    assert main([str(REPO_ROOT / "models" / "genred-default"), *map(str, clips)]) == 0
    assert "6/6 windows agree" in capsys.readouterr().out
