"""Tests of i3d_keras.utils.console: the tools print their own lines only.

The tools run in child processes (`sys.executable tools/NAME.py`) on tiny real
inputs: the shared videos, a truncated MP4 (FFmpeg: "moov atom not found"), a
small I3D saved to tmp_path with the run-folder files of tools/train.py.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from i3d_keras.utils import console

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = sorted(p.stem for p in (ROOT / "tools").glob("*.py")
               if p.stem not in ("doctor", "fvd"))  # written beside this issue
# What TensorFlow, Abseil, OpenCV and FFmpeg print on their own.
LIBRARY_PREFIXES = ("I0000", "E0000", "W0000", "WARNING: All log messages", "[ WARN:",
                    "[mov,mp4")


def _run(tool, *args, cwd=None):
    env = {k: v for k, v in os.environ.items()
           if k not in (console.VERBOSE_ENV, "TF_CPP_MIN_LOG_LEVEL", "OPENCV_LOG_LEVEL")}
    return subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _assert_quiet(out, tool):
    for name, text in (("stdout", out.stdout), ("stderr", out.stderr)):
        found = [p for p in LIBRARY_PREFIXES if p in text]
        assert not found, f"{tool} {name} holds library lines {found}:\n{text[-3000:]}"
    first = out.stderr.splitlines()[0] if out.stderr.strip() else ""
    assert first.startswith(f"{tool}: "), f"first line of {tool}'s stderr: {first!r}"


def test_library_lines_are_told_apart():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796046177.995322    4016 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796046180.090113    4016 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
        "I1130 13:45:09.216066 140240092785536 builder_impl.py:838] Assets written to: x",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild "
        "TensorFlow with the appropriate compiler flags.",
        "[ WARN:0@23.060] global cap.cpp:212 open VIDEOIO(FFMPEG): backend is generally "
        "available but can't be used to capture by name",
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55ee657ac640] moov atom not found",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        "fully_quantize: 0, inference_type: 6, input_inference_type: FLOAT32, "
        "output_inference_type: FLOAT32",
    ]
    kept = [
        "E0000 00:00:1796046180.090113    4016 loader.cc:52] Reading SavedModel failed",
        "F0000 00:00:1796046180.090113    4016 tensor.cc:12] Check failed: dims == 3",
        "Traceback (most recent call last):",
        "predict 1/3 videos  33.3% | 0.20 videos/s | elapsed 0:05 | ETA 0:10",
    ]
    assert all(console.is_library_noise(line) for line in noise)
    assert not any(console.is_library_noise(line) for line in kept)


def test_quiet_tools_hide_the_libraries_python_warnings():
    """Keras' and the converter's UserWarnings (with their source line) are
    library chatter; a warning of the tool's own code still shows."""
    script = (
        "import sys, warnings\n"
        "from i3d_keras.utils import console\n"
        "console.setup(force=True, verbose=len(sys.argv) > 1)\n"
        "for module in ('keras.src.trainers.epoch_iterator', 'tensorflow.lite.python.convert',"
        " '__main__'):\n"
        "    exec(\"import warnings; warnings.warn('said by ' + __name__)\", {'__name__': module})\n")
    quiet = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=120)
    verbose = subprocess.run([sys.executable, "-c", script, "-v"], capture_output=True,
                             text=True, timeout=120)
    assert "said by __main__" in quiet.stderr
    assert "said by keras" not in quiet.stderr and "said by tensorflow" not in quiet.stderr
    assert "said by keras" in verbose.stderr and "said by tensorflow" in verbose.stderr


def test_capture_gives_the_decoders_complaint():
    with console.capture_native_stderr() as caught:
        os.write(2, b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55ee657ac640] moov atom not found\n"
                    b"[ WARN:0@9.3] global cap.cpp:212 open VIDEOIO(FFMPEG): backend is "
                    b"generally available but can't be used to capture by name\n"
                    b"[h264 @ 0x1] error while decoding MB 3 4\n"
                    b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55ee657ac641] moov atom not found\n")
    assert caught.captured
    assert console.decoder_messages(caught.text) == ["moov atom not found",
                                                     "error while decoding MB 3 4"]
    assert console.plural(1, "frame") == "1 frame" and console.plural(0, "frame") == "0 frames"
    assert console.plural(2, "class", "classes") == "2 classes"


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_exits_2_on_a_usage_error(tool):
    """Same exit code and message form everywhere; train.py imports TensorFlow
    before parsing, so it also shows a quiet start-up."""
    out = _run(tool, "--no_such_flag=1")
    assert out.returncode == console.EXIT_USAGE, out.stderr[-2000:]
    _assert_quiet(out, tool)
    assert out.stderr.startswith(f"{tool}: error: Unknown command line flag 'no_such_flag'")
    assert "\x1b[" not in out.stderr + out.stdout


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A tiny I3D (8 frames x 32x32, 10 motion classes) in a run folder as
    tools/train.py leaves it (best.keras, config.json, classes.txt)."""
    import i3d_keras
    from i3d_keras.data import motion_dataset
    from i3d_keras.tasks import training

    folder = tmp_path_factory.mktemp("runs") / "i3d_rgb_motion"
    folder.mkdir()
    config = training.TrainConfig(stream="rgb", num_val=10, output_dir=str(folder)).resolved()
    (folder / "config.json").write_text(json.dumps(config.__dict__))
    (folder / "classes.txt").write_text("\n".join(motion_dataset.CLASSES) + "\n")
    i3d_keras.InceptionI3D(10, "rgb", frames=8, image_size=32).save(folder / "best.keras")
    return folder


@pytest.fixture(scope="module")
def truncated_mp4(tmp_path_factory, request):
    shared = ROOT.parent / "shared" / "data" / "videos"
    if not shared.is_dir():
        pytest.skip(f"needs the shared data folder {shared} (absent in a fresh clone)")
    path = tmp_path_factory.mktemp("bad") / "truncated.mp4"
    path.write_bytes((shared / "arm_wrestling.mp4").read_bytes()[:100_000])  # no moov atom
    return shared / "v_CricketShot_g04_c01_rgb.gif", path


def test_predict_is_quiet_and_verbose_shows_all(run_folder, truncated_mp4, tmp_path):
    good, bad = truncated_mp4
    out = _run("predict", "--model", run_folder / "best.keras", "--top_k", 2,
               "--json", tmp_path / "p.json", bad, good)
    assert out.returncode == console.EXIT_FAILED, out.stderr[-3000:]
    _assert_quiet(out, "predict")
    # The decoder's complaint is the failed file's reason; class names from the run.
    assert f"{bad}: FAILED: " in out.stdout and "moov atom not found" in out.stdout
    from i3d_keras.data import motion_dataset  # noqa: PLC0415

    assert sum(out.stdout.count(f"  {name}\n") for name in motion_dataset.CLASSES) == 2
    # The rate counts finished work, not the file that failed at once.
    assert "? videos/s" in out.stderr and "predict: 1 of 2 videos failed" in out.stderr
    assert json.loads((tmp_path / "p.json").read_text())[0]["ok"] is False

    verbose = _run("predict", "-v", "--model", run_folder / "best.keras", bad)
    assert verbose.returncode == console.EXIT_FAILED
    assert "[mov,mp4" in verbose.stderr  # FFmpeg's own line, shown


def test_evaluate_defaults_to_the_runs_motion_data(run_folder, tmp_path):
    out = _run("evaluate", "--model", run_folder / "best.keras", "--json", tmp_path / "e.json")
    assert out.returncode == console.EXIT_OK, out.stderr[-3000:]
    _assert_quiet(out, "evaluate")
    assert out.stderr.startswith("evaluate: no --dataset: the built-in motion dataset")
    assert "10 clips of 8 frames x 32x32, seed 0" in out.stderr
    assert "10 videos" in out.stdout and "top-1" in out.stdout
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["num_videos"] == 10 and report["protocol"]["num_frames"] == 8


def test_prepare_dataset_motion_and_failed_videos(truncated_mp4, tmp_path):
    out = _run("prepare_dataset", "--layout", "motion", "--output_dir", tmp_path / "motion",
               "--num_train", 4, "--num_val", 3)
    assert out.returncode == console.EXIT_OK, out.stderr[-3000:]
    _assert_quiet(out, "prepare_dataset")
    meta = json.loads((tmp_path / "motion" / "motion.metadata.json").read_text())
    assert meta["preprocessing"]["num_frames"] == 8 and meta["preprocessing"]["size"] == 32
    assert meta["counts"] == {"train": 4, "val": 3} and meta["flow"]["method"] == "analytic"

    good, bad = truncated_mp4
    root = tmp_path / "videos"
    for cls, video in (("a", good), ("b", bad)):
        (root / cls).mkdir(parents=True)
        (root / cls / video.name).write_bytes(video.read_bytes())
    out = _run("prepare_dataset", "--layout", "folder", "--root", root, "--output_dir",
               tmp_path / "shards", "--workers", 2, "--max_frames", 4)
    assert out.returncode == console.EXIT_FAILED, out.stderr[-3000:]
    _assert_quiet(out, "prepare_dataset")  # the workers' decoder lines too
    assert "moov atom not found" in out.stdout
    report = json.loads((tmp_path / "shards" / "folder.report.json").read_text())
    assert report["report_path"] == str(tmp_path / "shards" / "folder.report.json")
    assert report["converted"] == 1 and len(report["failed"]) == 1


def test_export_prints_no_tensorflow_info(run_folder, tmp_path):
    out = _run("export", "--rgb_model", run_folder / "best.keras", "--base_dir", tmp_path,
               "--name", "tiny")
    assert out.returncode == console.EXIT_OK, out.stderr[-3000:]
    for text in (out.stdout, out.stderr):
        assert not any(p in text for p in LIBRARY_PREFIXES + ("Assets written", "I1", "INFO"))
    assert out.stdout.startswith(f"SavedModel written to {tmp_path / 'tiny' / '1'}")


_TOOL_SCRIPT = """
import sys, time
from i3d_keras.utils import console, outputs
console.setup(force=True)
what = sys.argv[1]
sys.argv[:] = ["tool_name.py", *sys.argv[2:]]  # the tool's name in its messages

def main(argv):
    if what == "output":
        raise outputs.OutputError("--json 'x.json' exists; pass --overwrite to replace it")
    if what == "bug":
        raise ZeroDivisionError("a bug")
    if what == "download":
        from i3d_keras.utils import downloads
        raise downloads.DownloadError("could not download x from y. Offline: pass a file")
    if what == "disk":
        import errno
        raise OSError(errno.ENOSPC, "No space left on device", "out/best.keras")
    if what == "wait":
        print("ready", flush=True)
        time.sleep(60)

console.run(main, interrupted="interrupted; rerun the same command to resume")
"""


@pytest.mark.parametrize("what, code, expected", [
    ("output", 2, "tool_name: error: --json 'x.json' exists; pass --overwrite to replace it"),
    ("bug", 1, "tool_name: error: this is a bug in i3d_keras"),
    # Not bugs: a failed download says how to go on offline; a full disk is the machine's.
    ("download", 1, "tool_name: error: could not download x from y. Offline: pass a file"),
    ("disk", 1, "tool_name: error: [Errno 28] No space left on device: 'out/best.keras'"),
])
def test_run_turns_usage_errors_into_a_sentence_and_shows_bugs(what, code, expected):
    run = subprocess.run([sys.executable, "-c", _TOOL_SCRIPT, what], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert run.returncode == code, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith(expected)
    if what != "bug":
        assert len(lines) == 1  # not a bug of i3d_keras: no traceback
    else:
        assert "Traceback" in run.stderr and "ZeroDivisionError: a bug" in run.stderr


def test_arguments_to_a_tool_of_flags_only_are_a_usage_error():
    """`describe model.keras` described a default model, silently ignoring the file."""
    run = subprocess.run([sys.executable, "-c", _TOOL_SCRIPT, "bug", "model.keras"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == console.EXIT_USAGE, run.stderr
    assert run.stderr.strip() == (
        "tool_name: error: tool_name takes flags only (a value needs its flag: --NAME=VALUE; "
        "pass --help to see them). Received: unexpected arguments ['model.keras']")
    out = _run("describe", "model.keras", "--frames", "8")
    assert out.returncode == console.EXIT_USAGE
    assert "Received: unexpected arguments ['model.keras']" in out.stderr


def test_ctrl_c_ends_with_a_sentence_and_exit_130():
    import signal

    proc = subprocess.Popen([sys.executable, "-c", _TOOL_SCRIPT, "wait"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == console.EXIT_INTERRUPTED == 130
    assert err.strip() == "tool_name: interrupted; rerun the same command to resume"
