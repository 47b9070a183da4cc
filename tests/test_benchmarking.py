"""Tests for i3d_keras.benchmarking on a tiny model (numbers, not speeds)."""

import keras

import i3d_keras
from i3d_keras import benchmarking


def _truncated_i3d(frames):
    """I3D up to Mixed_3c and a classifier: the measurements are generic, and
    the whole network only adds tracing and conversion time."""
    features = i3d_keras.InceptionI3D(5, frames=frames, image_size=32, final_endpoint="Mixed_3c")
    pooled = keras.layers.GlobalAveragePooling3D(name="pool")(features.output)
    return keras.Model(features.input, keras.layers.Dense(5, name="logits")(pooled))


def test_measurements_are_consistent():
    model = _truncated_i3d(frames=None)
    forward = benchmarking.time_forward(model, 8, image_size=32, repeats=1)
    assert forward["seconds"] > 0 and len(forward["runs"]) == 1
    macs = benchmarking.model_macs(model, (8, 32, 32, 3))
    assert abs(forward["gmacs"] - macs / 1e9) < 1e-12
    assert abs(forward["effective_gflops"] - 2 * macs / forward["seconds"] / 1e9) < 1e-6
    step = benchmarking.time_train_step(model, batch=1, frames=4, image_size=32, repeats=1)
    assert step["seconds"] > 0 and step["batch"] == 1
    assert benchmarking.matmul_gflops(size=256, repeats=1) > 0
    assert benchmarking.peak_memory_mb() > 0


def test_litert_against_tf_on_the_same_clip():
    model = _truncated_i3d(frames=8)  # test_export converts the full fusion model
    result = benchmarking.time_litert(model, frames=8, image_size=32, repeats=1)
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["top1_agreement"] == 1.0
    assert result["litert_over_tf"] > 0
