"""Tests for i3d_keras.benchmarks.speed on a tiny model (numbers, not speeds)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from i3d_keras.benchmarks import speed


def test_measurements_are_consistent(truncated_i3d):
    # The measurements are generic; the whole network only adds tracing time.
    model = truncated_i3d(5, frames=None, image_size=32)
    forward = speed.time_forward(model, 8, image_size=32, repeats=1)
    assert forward["seconds"] > 0 and len(forward["runs"]) == 1
    macs = speed.model_macs(model, (8, 32, 32, 3))
    assert abs(forward["gmacs"] - macs / 1e9) < 1e-12
    assert abs(forward["effective_gflops"] - 2 * macs / forward["seconds"] / 1e9) < 1e-6
    step = speed.time_train_step(model, batch=1, frames=4, image_size=32, repeats=1)
    assert step["seconds"] > 0 and step["batch"] == 1
    assert speed.matmul_gflops(size=256, repeats=1) > 0
    assert speed.peak_memory_mb() > 0


def test_forward_with_xla_on_a_named_device(truncated_i3d):
    # The GPU measurement's code path (XLA, a device scope), on the CPU.
    model = truncated_i3d(5, frames=None, image_size=32)
    forward = speed.time_forward(model, 4, image_size=32, repeats=1, xla=True,
                                 device="/CPU:0")
    assert forward["seconds"] > 0 and forward["effective_gflops"] > 0


def test_litert_against_tf_on_the_same_clip(truncated_i3d):
    model = truncated_i3d(5, frames=8, image_size=32)  # test_export converts the full network
    result = speed.time_litert(model, frames=8, image_size=32, repeats=1,
                               quantizations=("float32", "int8"))
    assert json.loads(json.dumps(result)) == result  # what --output records
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["top1_agreement"] == 1.0
    assert result["litert_over_tf"] > 0 and len(result["tf_runs"]) == 1
    assert result["threads"] == speed.litert_threads() >= 1
    for quantization, timing in result["quantizations"].items():
        assert timing["over_tf"] == pytest.approx(timing["seconds"] / result["tf_seconds"])
        # The 4-D graph: XNNPACK takes it whole, float and int8 (not a machine's answer:
        # which operators XNNPACK takes does not depend on the CPU).
        assert timing["partitions"] == 1 and timing["outside"] == {}, quantization
        assert timing["size_mb"] > 0
        # A process running the file holds at least its weights (resident
        # memory is measured on Linux only).
        assert timing["arena_mb"] > 0
        if sys.platform.startswith("linux"):
            assert timing["resident_mb"] > 0.5 * timing["size_mb"], quantization
    int8, f32 = result["quantizations"]["int8"], result["quantizations"]["float32"]
    assert int8["size_mb"] < f32["size_mb"] and int8["arena_mb"] < f32["arena_mb"]
    lines = speed._litert_lines({"8": result})
    assert lines[0].startswith("LiteRT, 8 frames (XNNPACK, ")
    assert "1 XNNPACK partition," in lines[1] and lines[2].lstrip().startswith("int8")
    assert f", arena {f32['arena_mb']:.0f} MB" in lines[1]


def test_litert_table_lines_read_old_and_new_records():
    old = {"frames": 16, "litert_seconds": 0.6, "tf_seconds": 0.3, "litert_over_tf": 2.0,
           "max_abs_logit_diff": 1e-8}
    (head, line) = speed._litert_lines(old)
    assert head.startswith("LiteRT, 16 frames") and "LiteRT/TF time 2.00" in line
    new = {"64": {"frames": 64, "threads": 2, "tf_seconds": 1.0, "quantizations": {
        "float32": {"seconds": 0.9, "over_tf": 0.9, "partitions": 3, "size_mb": 51.0,
                    "outside": {"SLICE": 2}, "max_abs_logit_diff": 1e-6}}}}
    assert ("LiteRT/TF time 0.90, 3 XNNPACK partitions (outside: 2 SLICE), 51.0 MB"
            in speed._litert_lines(new)[1])


def test_pytorch_errors_say_what_is_wrong():
    with pytest.raises(speed.PyTorchError, match="Cannot run the Python"):
        speed.check_pytorch("/nonexistent/python3")
    # A program that runs but is no Python with torch: said, not a raw traceback.
    with pytest.raises(speed.PyTorchError, match="printed no torch version"):
        speed.check_pytorch("/bin/true")
    with pytest.raises(speed.PyTorchError, match="printed no result"):
        speed.time_pytorch(frames=(8,), image_size=32, python="/bin/true")
    with pytest.raises(speed.PyTorchError, match="exit status 3"):
        speed._run_torch_python(sys.executable, ["-c", "import sys; sys.exit(3)"])
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(speed.PyTorchError, match="PyTorch is not installed"):
            speed.check_pytorch(sys.executable)


def _results_with_pytorch():
    return {"matmul_gflops": 100.0, "xla": False, "implementation": "conv2d",
            "machine": {"onednn_env": "unset", "cpus": 2, "tensorflow": tf.__version__},
            "peak_memory_mb": 10.0,
            "forward": {f: {"seconds": s, "gmacs": 111.2, "effective_gflops": 111.2}
                        for f, s in (("16", 0.5), ("64", 2.0))},
            "train_step": {"seconds": 4.0, "batch": 2, "frames": 16, "effective_gflops": 80.0},
            "pytorch": {"torch": "2.13.0", "threads": 2,
                        "forward": {"16": {"seconds": 0.8, "tf_over_torch": 0.625},
                                    "64": {"seconds": 4.0, "tf_over_torch": 0.5}},
                        "train_step": {"seconds": 3.2, "tf_over_torch": 1.25}}}


def test_table_shows_pytorch_ratios_or_its_error():
    results = _results_with_pytorch()
    table = speed.format_results(results)
    assert "PyTorch 2.13.0 (2 threads), 64 frames: 4.000 s/clip, TF/PyTorch time 0.50" in table
    assert "PyTorch 2.13.0 (2 threads), train step: 3.200 s, TF/PyTorch time 1.25" in table
    results["pytorch"] = {"error": "PyTorch is not installed for this Python"}
    assert "PyTorch reference: PyTorch is not installed" in speed.format_results(results)


def test_plot_of_the_timings(tmp_path):
    results = _results_with_pytorch()
    path = speed.plot_results(results, tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    # Without a training step or PyTorch: the forward panel alone.
    del results["train_step"], results["pytorch"]
    assert speed.plot_results(results, tmp_path / "forward.png").stat().st_size > 5_000


def test_run_benchmarks_records_the_precision_and_both_matmul_peaks():
    results = speed.run_benchmarks(frames=(4,), image_size=32, repeats=1, train_batch=1,
                                   train_frames=4, mixed_precision="bfloat16")
    assert json.loads(json.dumps(results)) == results  # what --json writes
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored
    assert results["precision"]["policy"] == "mixed_bfloat16"
    assert results["precision"]["reason"] == "--mixed_precision given"
    assert results["matmul_gflops"] > 0 and results["matmul_bfloat16_gflops"] > 0
    # The share of the peak is taken of the precision the model computes in.
    assert results["matmul_peak_gflops"] == results["matmul_bfloat16_gflops"]
    cpu = results["machine"]["cpu"]
    assert cpu["model"] and cpu["kind"] and "avx512_bf16" in cpu["flags"]
    assert results["forward"]["4"]["seconds"] > 0 and results["train_step"]["seconds"] > 0
    table = speed.format_results(results)
    assert "matmul bfloat16" in table and "precision: mixed_bfloat16" in table



def test_run_benchmarks_times_several_precisions_in_one_run():
    results = speed.run_benchmarks(frames=(4,), image_size=32, repeats=1, train_batch=1,
                                   train_frames=4, precisions=("float32", "bfloat16"))
    assert json.loads(json.dumps(results)) == results
    assert keras.config.dtype_policy().name == "float32"
    assert results["precision"]["policy"] == "float32"  # the first: every measurement
    other = results["precisions"]["mixed_bfloat16"]
    assert other["reason"] == "--mixed_precision given"
    for timing, first in ((other["forward"]["4"], results["forward"]["4"]),
                          (other["train_step"], results["train_step"])):
        assert timing["seconds"] > 0
        assert timing["time_ratio"] == pytest.approx(timing["seconds"] / first["seconds"])
    table = speed.format_results(results)
    assert "mixed_bfloat16, 4 frames: " in table and "mixed_bfloat16, train step: " in table
    assert "time / float32's " in table
    with pytest.raises(ValueError, match=r"Received: precisions=\['float32', 'float32'\]"):
        speed.run_benchmarks(frames=(4,), precisions=("float32", "float32"))


def test_benchmark_tool_with_two_precisions(tmp_path):
    tool = Path(__file__).resolve().parents[2] / "tools" / "benchmark.py"
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(tool), "--frames", "4", "--image_size", "32",
                          "--repeats", "1", "--train_batch", "1", "--train_frames", "4",
                          "--litert_frames", "0", "--precisions", "float32,bfloat16",
                          "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "benchmark: precision float32 (--mixed_precision given)" in run.stderr
    assert "benchmark: precision mixed_bfloat16 (--mixed_precision given)" in run.stderr
    assert "mixed_bfloat16, train step: " in run.stderr
    data = json.loads(out.read_text())
    assert data["precisions"]["mixed_bfloat16"]["train_step"]["time_ratio"] > 0
    bad = subprocess.run([sys.executable, str(tool), "--precisions", "float32,fp8"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "flag --precisions=float32,fp8: " in bad.stderr
    assert "Received: 'fp8'" in bad.stderr


def test_benchmark_tool_litert_flags_are_checked_before_work():
    tool = Path(__file__).resolve().parents[2] / "tools" / "benchmark.py"
    for flag, received in (("--litert_quantizations=float32,int4", "int4"),
                           ("--litert_frames=16,x", "x")):
        bad = subprocess.run([sys.executable, str(tool), flag], capture_output=True, text=True,
                             timeout=300)
        assert bad.returncode == 2 and f"flag {flag}: " in bad.stderr, bad.stderr
        assert f"Received: {received!r}" in bad.stderr, bad.stderr
