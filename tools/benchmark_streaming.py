"""Peak memory and speed of feature extraction and window prediction on long videos.

Generates test videos of the given lengths (320x240 at 25 fps, a moving
pattern, MJPG), then runs tools/extract_features.py and tools/predict.py
--window on each in a child process with a random-weight RGB I3D (10 classes,
224 px, saved once; --image_size for smaller ones), and reports each run's peak
resident memory (the child's own, from `os.wait4`), wall time and real-time
factor (seconds of video per second of work). Memory must not grow with the video's length
(i3d_keras.data.streaming).

Usage:
  python tools/benchmark_streaming.py                       # 30 s and 10 min, RGB and RGB+flow
  python tools/benchmark_streaming.py --seconds 30,120 --streams rgb --json streaming.json
  python tools/benchmark_streaming.py --seconds 30,3600 --streams rgb --tools predict \
      --image_size 112                                      # an hour, bounded memory

Results go to standard output (and --json), progress to standard error.
Exit status: 0 done, 1 a run failed, 2 a usage error.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.benchmarks import checks  # noqa: E402 (no TensorFlow)
from i3d_keras.utils import outputs  # noqa: E402

# The lists are parsed with the command line: an empty or bad one is a usage
# error, not a run that measures nothing.
_SECONDS = flags.DEFINE(checks.IntListParser(1), "seconds", "30,600",
                        "Video lengths in seconds.", serializer=flags.CsvListSerializer(","))
_STREAMS = flags.DEFINE(checks.NameListParser(("rgb", "rgb+flow")), "streams", "rgb,rgb+flow",
                        "rgb and/or rgb+flow (DIS flow).",
                        serializer=flags.CsvListSerializer(","))
_WINDOW = flags.DEFINE_integer("window", 64, "Frames per window.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 4, "Windows per forward pass.", lower_bound=1)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "The models' crop size (smaller for a "
                                   "quick check of memory on very long videos).",
                                   lower_bound=32)
_TOOLS = flags.DEFINE(checks.NameListParser(("extract_features", "predict")), "tools",
                      "extract_features,predict", "Tools to run: extract_features and/or "
                      "predict.", serializer=flags.CsvListSerializer(","))
_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", ["auto", "float32", "float16",
                                                          "bfloat16"], "Passed to the tools.")
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --json file.")

TOOLS = Path(__file__).resolve().parent


def write_test_video(path: Path, seconds: int, size=(240, 320), fps: int = 25) -> Path:
    """A moving colour pattern (like ffmpeg's testsrc), written frame by frame."""
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    for t in range(seconds * fps):
        frame = np.stack([(x + 3 * t) % 256, (y + t) % 256, ((x + y) // 2 + 5 * t) % 256], -1)
        writer.write(frame.astype(np.uint8))
    writer.release()
    return path


def run_child(command):
    """`(seconds, peak MB, returncode, stderr tail)` of a child process (its own
    peak resident memory, from `os.wait4`)."""
    # Standard error to a file, not a pipe: a child that writes more than a pipe
    # holds would wait for a reader while we wait for it.
    with tempfile.TemporaryFile(mode="w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        err.seek(0)
        tail = err.read()[-1500:]
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), tail


def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments {argv[1:]}")
    if _JSON.value:
        outputs.check_output_file(_JSON.value, flag="json", overwrite=_OVERWRITE.value)
    import i3d_keras  # noqa: PLC0415
    from i3d_keras.benchmarks import results  # noqa: PLC0415

    run = results.run_record("benchmark_streaming")
    rows = []
    result = {"run": run, "machine": {"cpu": run["machine"]["cpu"],
                                      "kind": run["machine"]["kind"],
                                      "cores": run["machine"]["cores"]},
              "date": run.get("date") or time.strftime("%Y-%m-%d"), "window": _WINDOW.value,
              "batch_size": _BATCH.value, "image_size": _IMAGE_SIZE.value,
              "precision": _PRECISION.value,
              "video": "320x240, 25 fps, MJPG", "runs": rows}
    with tempfile.TemporaryDirectory(prefix="i3d_streaming_") as tmp:
        tmp = Path(tmp)
        models = {}
        for stream in ("rgb", "flow"):
            models[stream] = tmp / f"{stream}.keras"
            i3d_keras.InceptionI3D(10, stream, frames=None, image_size=_IMAGE_SIZE.value,
                                   name=f"bench_{stream}").save(models[stream])
        for seconds in _SECONDS.value:
            console.info(f"benchmark_streaming: writing a {seconds} s test video")
            clip = write_test_video(tmp / f"test_{seconds}s.avi", seconds)
            for tool in _TOOLS.value:
                for streams in _STREAMS.value:
                    both = streams == "rgb+flow"
                    model = ["--model", str(models["rgb"])] + (
                        ["--flow_model", str(models["flow"])] if both else [])
                    common = [*model, "--mixed_precision", _PRECISION.value, "--batch_size",
                              str(_BATCH.value)]
                    if tool == "extract_features":
                        args = [*common, "--window", str(_WINDOW.value), "--output_dir",
                                str(tmp / f"f_{seconds}_{streams}"), "--flow_method", "dis",
                                "--streams", "rgb,flow" if both else "rgb"]
                    else:
                        report = tmp / f"p_{seconds}_{streams}.json"
                        args = [*common, "--window", str(_WINDOW.value), "--flow_method",
                                "dis", "--json", str(report)]
                    console.info(f"benchmark_streaming: {tool} {streams} on {seconds} s")
                    wall, peak, code, err = run_child(
                        [sys.executable, str(TOOLS / f"{tool}.py"), *args, str(clip)])
                    row = {"tool": tool, "streams": streams, "video_seconds": seconds,
                           "wall_seconds": round(wall, 1), "peak_mb": round(peak),
                           "realtime_factor": round(seconds / wall, 3), "ok": code == 0}
                    if code:
                        row["error"] = err
                    elif tool == "predict":  # the forward passes' share of the work
                        done, = json.loads(report.read_text())
                        row["model_share"] = round(done["seconds"]["model"] /
                                                   done["seconds"]["total"], 3)
                    rows.append(row)
                    print(f"{tool:16s} {streams:8s} {seconds:6d} s video: peak "
                          f"{row['peak_mb']:6d} MB, {wall:7.1f} s, "
                          f"{row['realtime_factor']:.2f}x real time"
                          + (f", forward {row['model_share']:.0%} of it"
                             if "model_share" in row else "")
                          + ("" if code == 0 else "  FAILED"), flush=True)
                    if _JSON.value:  # after every run: a long benchmark keeps what it measured
                        outputs.write_json(_JSON.value, result)
    if not all(r["ok"] for r in rows):
        raise SystemExit(console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main)
