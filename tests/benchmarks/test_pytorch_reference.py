"""Tests for i3d_keras.benchmarks.pytorch_reference: the same network as the Keras I3D.

The reference runs as a script in a Python that has torch (through
`i3d_keras.benchmarks.speed`): `pip install torch`, or set I3D_PYTORCH_PYTHON to
another Python that has it; without one these tests skip.
"""

import importlib.util
import os
import sys

import numpy as np
import pytest

import i3d_keras
from i3d_keras.benchmarks import speed


def _torch_python():
    """A Python with torch: $I3D_PYTORCH_PYTHON, else this one if it has torch."""
    python = os.environ.get("I3D_PYTORCH_PYTHON")
    if python:
        return python
    if importlib.util.find_spec("torch") is None:
        pytest.skip("needs PyTorch: `pip install torch`, or I3D_PYTORCH_PYTHON=<a Python "
                    "that has torch>")
    return sys.executable


def test_same_network_as_the_keras_model():
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


def test_times_under_bfloat16_autocast():
    # The counterpart of Keras' mixed_bfloat16 in benchmark.py's comparison.
    result = speed.time_pytorch(frames=(8,), image_size=32, repeats=1, train_batch=2,
                                train_frames=8, python=_torch_python(), autocast="bfloat16")
    assert result["autocast"] == "bfloat16"
    assert result["forward"]["8"]["seconds"] > 0 and result["train_step"]["seconds"] > 0


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_computes_the_same_logits(rng, stream):
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
