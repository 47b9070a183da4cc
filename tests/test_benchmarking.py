"""Tests for i3d_keras.benchmarking on a tiny model (numbers, not speeds)."""

from i3d_keras import benchmarking


def test_measurements_are_consistent(truncated_i3d):
    # The measurements are generic; the whole network only adds tracing time.
    model = truncated_i3d(5, frames=None, image_size=32)
    forward = benchmarking.time_forward(model, 8, image_size=32, repeats=1)
    assert forward["seconds"] > 0 and len(forward["runs"]) == 1
    macs = benchmarking.model_macs(model, (8, 32, 32, 3))
    assert abs(forward["gmacs"] - macs / 1e9) < 1e-12
    assert abs(forward["effective_gflops"] - 2 * macs / forward["seconds"] / 1e9) < 1e-6
    step = benchmarking.time_train_step(model, batch=1, frames=4, image_size=32, repeats=1)
    assert step["seconds"] > 0 and step["batch"] == 1
    assert benchmarking.matmul_gflops(size=256, repeats=1) > 0
    assert benchmarking.peak_memory_mb() > 0


def test_litert_against_tf_on_the_same_clip(truncated_i3d):
    model = truncated_i3d(5, frames=8, image_size=32)  # test_export converts the full network
    result = benchmarking.time_litert(model, frames=8, image_size=32, repeats=1)
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["top1_agreement"] == 1.0
    assert result["litert_over_tf"] > 0
