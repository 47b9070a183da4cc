"""Tests for i3d_keras.models.clip_shape: the same video model for clips of another shape."""

import keras
import numpy as np
import pytest

import i3d_keras
from i3d_keras.models import baselines
from i3d_keras.models.clip_shape import KEEP, with_clip_shape

CLASSES = 4


def test_i3d_rebuilt_for_other_clips_keeps_its_weights(rng):
    model = i3d_keras.InceptionI3D(CLASSES, frames=4, image_size=32)
    free = with_clip_shape(model, frames=None, image_size=None)
    assert free.inputs[0].shape == (None, None, None, None, 3)
    clip = rng.uniform(-1, 1, (2, 4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(free(clip), model(clip), atol=1e-6)
    longer = with_clip_shape(model, frames=12, image_size=(48, 64))
    assert longer.inputs[0].shape == (None, 12, 48, 64, 3)
    big = rng.uniform(-1, 1, (1, 12, 48, 64, 3)).astype("float32")
    np.testing.assert_allclose(longer(big), free(big), atol=1e-6)
    # KEEP leaves an axis as it is; a model of the asked shape is returned as is.
    assert with_clip_shape(model, frames=None).inputs[0].shape == (None, None, 32, 32, 3)
    assert with_clip_shape(model, frames=4, image_size=KEEP) is model


def test_two_stream_model_rebuilds_its_streams(rng):
    streams = [i3d_keras.InceptionI3D(CLASSES, s, frames=4, image_size=32) for s in ("rgb", "flow")]
    fused = i3d_keras.TwoStreamI3D(*streams)
    rebuilt = with_clip_shape(fused, frames=8, image_size=48)
    assert {t.name.split(":")[0]: tuple(t.shape) for t in rebuilt.inputs} == {
        "rgb": (None, 8, 48, 48, 3), "flow": (None, 8, 48, 48, 2)}
    clips = {"rgb": rng.uniform(-1, 1, (1, 8, 48, 48, 3)).astype("float32"),
             "flow": rng.uniform(-1, 1, (1, 8, 48, 48, 2)).astype("float32")}
    expected = sum(with_clip_shape(m, frames=None, image_size=None)(clips[s]) for m, s in
                   zip(streams, ("rgb", "flow")))
    np.testing.assert_allclose(rebuilt(clips)["logits"], expected, atol=1e-5)


def test_models_that_cannot_take_other_clips_say_so():
    image = keras.Input((32, 32, 3))
    with pytest.raises(ValueError, match=r"Expected a video model .* Received: inputs of "
                                         r"shapes \[\(None, 32, 32, 3\)\]"):
        with_clip_shape(keras.Model(image, keras.layers.Dense(2)(image)), frames=None)
    # C3D's fully connected layers hold the flattened size of its clips.
    c3d = baselines.build_architecture("c3d", CLASSES, frames=8, image_size=32)
    with pytest.raises(ValueError, match="Cannot rebuild model 'c3d' for clips of 8 frames of "
                                         "64 x 64 pixels"):
        with_clip_shape(c3d, image_size=64)
