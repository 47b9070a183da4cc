"""Tests for i3d_keras.benchmarks.speed on a tiny model (numbers, not speeds)."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import keras
import tensorflow as tf

import i3d_keras
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
    result = speed.time_litert(model, frames=8, image_size=32, repeats=1)
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["top1_agreement"] == 1.0
    assert result["litert_over_tf"] > 0


def _torch_python():
    """A Python with torch: $I3D_PYTORCH_PYTHON, else this one if it has torch."""
    python = os.environ.get("I3D_PYTORCH_PYTHON")
    if python:
        return python
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs PyTorch: `pip install torch`, or I3D_PYTORCH_PYTHON=<a Python "
                    "that has torch>")
    return sys.executable


def test_pytorch_reference_is_the_same_network():
    result = speed.time_pytorch(frames=(8,), image_size=32, repeats=1, train_batch=2,
                                train_frames=8, python=_torch_python())
    # Built from i3d_keras.models.i3d.ARCHITECTURE: DeepMind's I3D with 400 classes
    # has 12,682,304 convolution weights, as the Keras model's kernels.
    assert result["conv_weights"] == 12_682_304
    model = i3d_keras.InceptionI3D(400, "rgb", frames=None, image_size=None)
    assert sum(int(np.prod(w.shape)) for w in model.weights
               if w.path.endswith("kernel")) == result["conv_weights"]
    assert result["forward"]["8"]["seconds"] > 0 and len(result["forward"]["8"]["runs"]) == 1
    assert result["train_step"]["seconds"] > 0


def test_pytorch_reference_times_under_bfloat16_autocast():
    # The counterpart of Keras' mixed_bfloat16 in benchmark.py's comparison.
    result = speed.time_pytorch(frames=(8,), image_size=32, repeats=1, train_batch=2,
                                train_frames=8, python=_torch_python(), autocast="bfloat16")
    assert result["autocast"] == "bfloat16"
    assert result["forward"]["8"]["seconds"] > 0 and result["train_step"]["seconds"] > 0


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_pytorch_reference_computes_the_same_logits(rng, stream):
    python = _torch_python()
    model = i3d_keras.InceptionI3D(5, stream, frames=None, image_size=None)
    # BatchNorm statistics away from (0, 1), so that a misplaced one shows.
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") if "mean" in v.path
                       else rng.uniform(0.5, 2.0, w.shape).astype("float32")
                       if "variance" in v.path else w
                       for v, w in zip(model.weights, model.get_weights())])
    clips = rng.uniform(-1, 1, (2, 10, 64, 64, model.inputs[0].shape[-1])).astype("float32")
    expected = model(clips, training=False).numpy()
    got = speed.pytorch_logits(model, clips, python=python)
    assert got.shape == expected.shape == (2, 5)
    assert np.max(np.abs(got - expected)) < 1e-4 * max(1.0, np.max(np.abs(expected)))


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

