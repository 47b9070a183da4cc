"""tools/predict.py on long videos and live streams, as a user runs it."""

import csv
import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _command(*args):
    return [sys.executable, str(ROOT / "tools" / "predict.py"), *map(str, args)]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("I3D_KERAS_VERBOSE", None)
    return env


@pytest.fixture(scope="module")
def model_and_video(tmp_path_factory):
    import i3d_keras
    from i3d_keras.data import video

    root = tmp_path_factory.mktemp("predict")
    model = i3d_keras.InceptionI3D(3, "rgb", frames=None, image_size=32, name="tiny_rgb")
    model.save(root / "rgb.keras")
    (root / "labels.txt").write_text("walking\nrunning\nwaving\n")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 90, (150, 48, 64, 3), dtype=np.uint8)  # 6 s at 25 fps
    video.write_video(root / "clip.avi", frames, fps=25)
    return root


def test_windows_table_csv_json_timeline_and_annotated_video(model_and_video, tmp_path):
    root = model_and_video
    outs = {"json": tmp_path / "w.json", "csv": tmp_path / "w.csv",
            "timeline": tmp_path / "t.png", "annotate": tmp_path / "a.avi"}
    args = ["--model", root / "rgb.keras", "--labels", root / "labels.txt", "--window", 32,
            "--stride", 16, "--top_k", 2, "--mixed_precision", "float32",
            *[item for flag, path in outs.items() for item in (f"--{flag}", path)],
            root / "clip.avi"]
    run = subprocess.run(_command(*args), capture_output=True, text=True, env=_env(),
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0].endswith("clip.avi:") and lines[1].startswith("  0:00.0-0:01.3")
    assert "whole video (150 frames" in run.stdout and "real time" in run.stdout
    result, = json.loads(outs["json"].read_text())
    assert [w["start_frame"] for w in result["windows"]] == list(range(0, 150 - 32 + 1, 16))
    with outs["csv"].open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 2 * len(result["windows"])
    assert outs["timeline"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from i3d_keras.data import video

    assert len(video.read_video(outs["annotate"], fps=None, short_side=None)) == 150
    # The same command again: every output exists, nothing is replaced.
    before = {p: p.read_bytes() for p in outs.values()}
    again = subprocess.run(_command(*args), capture_output=True, text=True, env=_env(),
                           timeout=600)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr
    assert {p: p.read_bytes() for p in outs.values()} == before


def test_a_live_stream_prints_windows_as_they_come_and_ctrl_c_keeps_them(model_and_video,
                                                                        tmp_path):
    root = model_and_video
    from i3d_keras.data import video

    rng = np.random.default_rng(1)
    video.write_video(root / "long.avi", rng.integers(0, 90, (3000, 48, 64, 3), np.uint8),
                      fps=25)  # 2 minutes: still running when interrupted
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "live.json"
    url = f"http://127.0.0.1:{server.server_address[1]}/long.avi"
    proc = subprocess.Popen(
        _command("--model", root / "rgb.keras", "--source", url, "--window", 16, "--json", out,
                 "--mixed_precision", "float32"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert proc.stdout.readline().strip().endswith("(live; Ctrl-C stops):")
        first = proc.stdout.readline()
        assert first.startswith("  [") and "0:00.0-0:00.6" in first  # wall-clock time first
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        server.shutdown()
        server.server_close()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "predict: interrupted" in stderr
    result, = json.loads(out.read_text())
    assert result["interrupted"] and result["live"] and len(result["windows"]) >= 1


def test_a_source_that_cannot_be_opened(model_and_video):
    run = subprocess.run(_command("--model", model_and_video / "rgb.keras", "--source",
                                  "http://127.0.0.1:9/none.avi", "--mixed_precision", "float32"),
                         capture_output=True, text=True, env=_env(), timeout=600)
    assert run.returncode == 1 and "cannot open the stream" in run.stdout
    assert "Traceback" not in run.stderr
