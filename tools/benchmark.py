"""Benchmarks I3D on this machine: forward pass, training step, memory, matmul peak.

Measures, in one run so that results can be read as ratios:
  * the machine's float32 matrix-multiply throughput (GFLOP/s, 2048x2048 matmul);
  * seconds per clip and effective GFLOP/s (2 x multiply-adds / time) of the RGB
    I3D forward pass at 16, 32, 64 and 250 frames of 224x224;
  * a training step (SGD, batch 2 x 16 frames x 224x224, BatchNorm in training);
  * LiteRT files (builtin ops, the 4-D graph XNNPACK takes whole) against TF on the same
    clip, round by round, at 16 and 64 frames (--litert_frames): seconds, the LiteRT/TF
    time ratio, the XNNPACK partition count and the operators left outside XNNPACK, for
    each of --litert_quantizations (float32,float16,int8; int8 calibrated on two random
    clips: the timing does not depend on the calibration);
  * peak resident memory of the process;
  * GPU clips/s when a GPU is visible;
  * with --pytorch, the same network in PyTorch (forward and training step) and the
    TF/PyTorch time ratios (torch in this Python, or in --pytorch_python's);
  * with --precisions float32,bfloat16, the forward passes and training step in each
    precision (same weights) and their time ratios to the first.
Every timing is the median of --repeats runs after a warm-up run.

Usage:
  python tools/benchmark.py                          # everything, JSON + table
  python tools/benchmark.py --frames 16,64 --repeats 5 --output bench.json --plot bench.png
  python tools/benchmark.py --onednn both            # oneDNN on vs off, same run
  python tools/benchmark.py --xla                    # XLA-compiled functions
  python tools/benchmark.py --compare_with conv3d     # vs TF's Conv3D kernels, same run
  python tools/benchmark.py --frames 64 --pytorch     # vs the same network in PyTorch
  python tools/benchmark.py --pytorch --pytorch_python ~/torch-env/bin/python
  python tools/benchmark.py --frames 16 --precisions float32,bfloat16  # is bfloat16 faster?
"""

import json
import os
import subprocess
import sys

from i3d_keras.utils import console, outputs  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags

from i3d_keras.benchmarks import checks  # noqa: E402 (no TensorFlow)
from i3d_keras.runtime.precision import PRECISIONS  # noqa: E402 (no TensorFlow)

# The lists are parsed with the command line: a bad length is a usage error
# before anything is timed.
_FRAMES = flags.DEFINE(checks.IntListParser(1), "frames", "16,32,64,250",
                       "Clip lengths for the forward pass.",
                       serializer=flags.CsvListSerializer(","))
_SIZE = flags.DEFINE_integer("image_size", 224, "Frame size.", lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per measurement (median).",
                                lower_bound=1)
_TRAIN_BATCH = flags.DEFINE_integer("train_batch", 2, "Training step batch size.",
                                    lower_bound=1)
_TRAIN_FRAMES = flags.DEFINE_integer("train_frames", 16, "Training step clip length.",
                                     lower_bound=1)
_SKIP_TRAIN = flags.DEFINE_bool("skip_train", False, "Skip the training step.")
_XLA = flags.DEFINE_bool("xla", False, "Compile the forward and training functions with XLA.")
_ONEDNN = flags.DEFINE_enum("onednn", "default", ["default", "on", "off", "both"],
                            "TF_ENABLE_ONEDNN_OPTS for the measurement (default: the "
                            "environment's, else the package's: on; both: one child "
                            "process each, results side by side).")
_IMPLEMENTATION = flags.DEFINE_enum(
    "implementation", "auto", ["auto", "conv2d", "conv3d"],
    "How I3D computes its 3D convolutions (i3d_keras.models.layers.Conv3D): auto (the default: "
    "2D convolutions on CPUs, TF's Conv3D with a GPU), conv2d or conv3d.")
_COMPARE_WITH = flags.DEFINE_enum(
    "compare_with", None, ["auto", "conv2d", "conv3d"],
    "Also time this implementation in the same run and report the speed-ups.")
_PYTORCH = flags.DEFINE_bool("pytorch", False, "Also time the same network in PyTorch "
                             "(i3d_keras/benchmarks/pytorch_reference.py) in the same run.")
_PYTORCH_PYTHON = flags.DEFINE_string("pytorch_python", None, "The Python that has torch "
                                      "(implies --pytorch; default: this one).")
_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", ["auto", "float32", "float16",
                                                              "bfloat16"],
                               "Precision of the timed models (auto: the package's choice "
                               "here; PyTorch under torch.autocast(bfloat16) when bfloat16).")
_PRECISIONS = flags.DEFINE(
    checks.NameListParser(PRECISIONS), "precisions", None, "Time the forward passes and the "
    "training step in each of these precisions in one run (e.g. float32,bfloat16; same "
    "weights): the first replaces --mixed_precision, the others get their time ratios to it.",
    serializer=flags.CsvListSerializer(","))
_OUTPUT = flags.DEFINE_string("output", None, "Write the JSON results here.")
_PLOT = flags.DEFINE_string("plot", None, "Write a PNG of the timings here.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing --output and --plot "
                               "files.")
_LITERT = flags.DEFINE(checks.IntListParser(0, True), "litert_frames", "16,64",
                       "Also time LiteRT files against TF at these clip lengths (0 or empty: "
                       "skip).", serializer=flags.CsvListSerializer(","))
# exporters.TFLITE_QUANTIZATIONS (not imported here: it loads TensorFlow).
_LITERT_CHOICES = ("float32", "float16", "dynamic_int8", "int8")
_LITERT_QUANT = flags.DEFINE(checks.NameListParser(_LITERT_CHOICES), "litert_quantizations",
                             "float32,float16,int8", "The LiteRT files timed (float32, "
                             "float16, dynamic_int8, int8).",
                             serializer=flags.CsvListSerializer(","))


def _child_args(setting):
    args = [sys.executable, os.path.abspath(__file__), "--onednn", setting]
    for name in ("frames", "image_size", "repeats", "train_batch", "train_frames",
                 "implementation", "mixed_precision", "litert_frames", "litert_quantizations"):
        args.append(flags.FLAGS[name].serialize())  # lists as 16,64
    args += ["--skip_train"] if _SKIP_TRAIN.value else []
    args += ["--xla"] if _XLA.value else []
    args += [f"--compare_with={_COMPARE_WITH.value}"] if _COMPARE_WITH.value else []
    args += [_PRECISIONS.serialize()] if _PRECISIONS.value else []
    return args


def main(argv):
    del argv
    pytorch_python = (_PYTORCH_PYTHON.value or sys.executable
                      if _PYTORCH.value or _PYTORCH_PYTHON.value else None)
    if _ONEDNN.value == "both" and (pytorch_python or _PLOT.value):
        console.fail("--pytorch and --plot need one oneDNN setting (on, off or default). "
                 "Received: --onednn both")
    precisions = _PRECISIONS.value or []
    litert_frames = [f for f in _LITERT.value if f]  # 0: skip
    for flag, path in (("output", _OUTPUT.value), ("plot", _PLOT.value)):
        if path:
            outputs.check_output_file(path, flag=flag, overwrite=_OVERWRITE.value)
    if _OUTPUT.value and _PLOT.value and outputs.same_file(_OUTPUT.value, _PLOT.value):
        console.fail(f"--output and --plot name the same file. Received: {_PLOT.value}")
    if _ONEDNN.value == "both":
        results = {}
        for setting in ("on", "off"):
            out = subprocess.run(_child_args(setting), capture_output=True, text=True)
            if out.returncode != 0:
                console.fail(f"benchmark child (oneDNN {setting}) failed:\n{out.stderr[-2000:]}",
                             console.EXIT_FAILED)
            results[setting] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"--- oneDNN {setting} ---\n{results[setting]['table']}", file=sys.stderr)
        for key, value in results["on"]["forward"].items():
            off = results["off"]["forward"][key]["seconds"]
            print(f"forward {key} frames: oneDNN on/off time ratio "
                  f"{value['seconds'] / off:.2f}", file=sys.stderr)
        if "train_step" in results["on"]:
            print("train step: oneDNN on/off time ratio "
                  f"{results['on']['train_step']['seconds'] / results['off']['train_step']['seconds']:.2f}",
                  file=sys.stderr)
        if _OUTPUT.value:
            from i3d_keras.benchmarks import results as run  # noqa: PLC0415

            results["run"] = run.run_record("benchmark")  # machine, versions, commit, date
            outputs.write_json(_OUTPUT.value, results)
        print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "table"}
                          for k, v in results.items()}))
        return
    if _ONEDNN.value != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if _ONEDNN.value == "on" else "0"

    from i3d_keras.benchmarks import speed  # noqa: PLC0415 (after the environment is set)
    from i3d_keras.runtime import precision  # noqa: PLC0415 (after the environment is set)

    policies = []
    for setting in precisions or [_PRECISION.value]:
        policy, reason = precision.choose_precision(setting)
        console.info(f"benchmark: precision {policy} ({reason})")
        policies.append(policy)
    if len(set(policies)) != len(policies):
        console.fail(f"--precisions must name different precisions. Received: "
                     f"--precisions={','.join(precisions)} ({', '.join(policies)})")

    try:
        results = speed.run_benchmarks(
            frames=_FRAMES.value, image_size=_SIZE.value, repeats=_REPEATS.value,
            train_batch=None if _SKIP_TRAIN.value else _TRAIN_BATCH.value,
            train_frames=_TRAIN_FRAMES.value, xla=_XLA.value, litert_frames=litert_frames,
            implementation=_IMPLEMENTATION.value, compare_with=_COMPARE_WITH.value,
            pytorch_python=pytorch_python, mixed_precision=_PRECISION.value,
            precisions=precisions or None, litert_quantizations=_LITERT_QUANT.value)
    except speed.PyTorchError as error:  # --pytorch without torch: no traceback
        console.fail(f"{error}")
    results["onednn"] = _ONEDNN.value
    results["table"] = speed.format_results(results)
    print(results["table"], file=sys.stderr)
    if _OUTPUT.value:
        from i3d_keras.benchmarks import results as run  # noqa: PLC0415

        results["run"] = run.run_record("benchmark")  # machine, versions, commit, date
        outputs.write_json(_OUTPUT.value, results)
    print(json.dumps(results))
    if _PLOT.value:
        try:
            print(f"plot: {speed.plot_results(results, _PLOT.value)}", file=sys.stderr)
        except OSError as error:  # the timings are printed above
            console.fail(f"cannot write the plot ({error}). Received: --plot={_PLOT.value}",
                         console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main)
