"""Tests of the 2D Inception-V1, its TF-slim loader, and its inflation into I3D."""

from pathlib import Path

import numpy as np
import pytest

import i3d_keras
import keras
import tensorflow as tf

from i3d_keras.models import inception_v1
from i3d_keras.models.inception_v1 import (
    InceptionV1,
    inflate_into_i3d,
    load_slim_checkpoint,
    slim_variable_names,
    to_i3d_name,
)
from i3d_keras.weights.inflation import unpadded_time_positions
from _checkpoints import write_checkpoint

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHECKPOINTS = SHARED / "deepmind_i3d" / "checkpoints"
FRAMES = 112  # Mixed_5c has clean (unpadded) positions from 104 frames on.
SIZE = 32


def synthetic_slim_values(seed=0, num_classes=1001):
    rng = np.random.default_rng(seed)
    model = InceptionV1(num_classes=num_classes, image_size=None)
    values = {}
    for name, (layer, index) in slim_variable_names(model).items():
        shape = tuple(layer.weights[index].shape)
        if name.endswith("moving_variance"):
            values[name] = rng.uniform(0.5, 1.5, shape).astype("float32")
        elif "/BatchNorm/" in name:
            values[name] = rng.normal(0, 0.2, shape).astype("float32")
        else:
            fan_in = int(np.prod(shape[:-1]))
            values[name] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype("float32")
    return values


@pytest.fixture(scope="module")
def slim_checkpoint(tmp_path_factory):
    values = synthetic_slim_values()
    extra = {
        "global_step": np.array(12345, "int64"),
        "InceptionV1/Conv2d_1a_7x7/weights/Momentum": np.zeros((7, 7, 3, 64), "float32"),
    }
    prefix = tmp_path_factory.mktemp("slim") / "inception_v1.ckpt"
    write_checkpoint(prefix, {**values, **extra})
    return prefix, values


@pytest.fixture(scope="module")
def model_2d(slim_checkpoint):
    model = InceptionV1(image_size=SIZE)
    load_slim_checkpoint(model, slim_checkpoint[0])
    return model


def test_architecture_and_names():
    model = InceptionV1(image_size=224)
    assert model.output.shape == (None, 1001)
    for name in ("Conv2d_1a_7x7_conv_2d", "MaxPool_2a_3x3", "Mixed_3b",
                 "Mixed_5b_Branch_2_Conv2d_0a_3x3_conv_2d", "Mixed_4f_Branch_3_MaxPool_0a_3x3",
                 "Logits_Conv2d_0c_1x1_conv_2d", "Mixed_5c"):
        model.get_layer(name)
    assert model.get_layer("Mixed_5c").output.shape == (None, 7, 7, 1024)
    names = slim_variable_names(model)
    assert len(names) == 230
    assert "InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights" in names
    assert "InceptionV1/Mixed_4b/Branch_1/Conv2d_0b_3x3/BatchNorm/moving_variance" in names
    assert "InceptionV1/Logits/Conv2d_0c_1x1/biases" in names
    assert to_i3d_name("Mixed_5b_Branch_2_Conv2d_0a_3x3_conv_2d") == "Mixed_5b_Branch_2_Conv3d_0a_3x3_conv_3d"


def test_every_i3d_weight_layer_has_a_2d_counterpart():
    model = InceptionV1(image_size=None)
    i3d = i3d_keras.InceptionI3D(1001, frames=None, image_size=None)
    names_2d = {to_i3d_name(layer.name) for layer in model.layers}
    names_3d = {layer.name for layer in i3d.layers if layer.weights}
    assert names_3d <= names_2d
    assert len(names_3d) == len([layer for layer in model.layers if layer.weights])


def test_slim_variables_are_deepmind_variables_in_2d():
    """Each DeepMind I3D variable has a slim counterpart, its shape without time."""
    index = CHECKPOINTS / "rgb_imagenet" / "model.ckpt.index"
    if not index.exists():
        pytest.skip(f"shared data absent: {index} (the project's ../shared/data checkout)")
    prefix = "RGB/inception_i3d/"
    leaf = {"w": "weights", "b": "biases"}
    deepmind = {}
    for name, shape in tf.train.list_variables(str(index)[: -len(".index")]):
        scope, kind, var = name[len(prefix):].rsplit("/", 2)
        scope = scope.replace("Conv3d_", "Conv2d_")
        slim_name = (
            f"InceptionV1/{scope}/{leaf[var]}" if kind == "conv_3d"
            else f"InceptionV1/{scope}/BatchNorm/{var}"
        )
        deepmind[slim_name] = tuple(shape[1:]) if var == "w" else tuple(shape)
    model = InceptionV1(num_classes=400, image_size=None)
    slim = {name: tuple(layer.weights[i].shape) for name, (layer, i) in slim_variable_names(model).items()}
    assert slim == deepmind


def test_load_slim_checkpoint_assigns_every_variable(model_2d, slim_checkpoint):
    _, values = slim_checkpoint
    for name, (layer, index) in slim_variable_names(model_2d).items():
        np.testing.assert_array_equal(layer.weights[index].numpy(), values[name])


def test_slim_loader_errors(tmp_path, slim_checkpoint):
    with pytest.raises(FileNotFoundError, match="Received: path="):
        load_slim_checkpoint(InceptionV1(image_size=None), tmp_path / "nothing.ckpt")
    _, values = slim_checkpoint
    broken = dict(values)
    del broken["InceptionV1/Mixed_4c/Branch_0/Conv2d_0a_1x1/weights"]
    broken["InceptionV1/Mixed_6a/Branch_0/Conv2d_0a_1x1/weights"] = np.zeros((1,), "float32")
    write_checkpoint(tmp_path / "broken.ckpt", broken)
    with pytest.raises(ValueError, match="Mixed_4c/Branch_0/Conv2d_0a_1x1/weights.*Mixed_6a"):
        load_slim_checkpoint(InceptionV1(image_size=None), tmp_path / "broken.ckpt")
    with pytest.raises(ValueError, match="shape mismatches.*Logits"):
        load_slim_checkpoint(InceptionV1(num_classes=10, image_size=None), slim_checkpoint[0])
    model = InceptionV1(num_classes=10, image_size=None)
    load_slim_checkpoint(model, slim_checkpoint[0], skip_logits=True)


def test_download_uses_get_file(monkeypatch, tmp_path):
    calls = []

    def fake_get_file(fname, origin, **kwargs):
        calls.append((fname, origin, kwargs))
        folder = tmp_path / "inception_v1_2016_08_28_extracted"
        folder.mkdir(exist_ok=True)
        (folder / "inception_v1.ckpt").write_bytes(b"")
        return str(folder)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    path = inception_v1.download_slim_checkpoint()
    assert path.endswith("inception_v1.ckpt")
    fname, origin, kwargs = calls[0]
    assert origin == "http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz"
    assert kwargs["extract"] is True and kwargs["cache_subdir"] == "i3d_keras"


def endpoint_outputs(model_2d, model_3d, image, video):
    endpoints = [e for e in i3d_keras.ENDPOINTS if e not in ("Predictions",)]
    names_2d = [e.replace("Conv3d_", "Conv2d_").replace("MaxPool3d_", "MaxPool_") for e in endpoints]
    y2 = keras.Model(model_2d.inputs[0], [model_2d.get_layer(n).output for n in names_2d])(image)
    y3 = keras.Model(model_3d.inputs[0], [model_3d.get_layer(e).output for e in endpoints])(video)
    return endpoints, [np.asarray(y) for y in y2], [np.asarray(y) for y in y3]


@pytest.mark.parametrize("stream", ["rgb", "flow"])
def test_boring_video_i3d_matches_inception_v1_at_mixed_5c(model_2d, stream):
    model_3d = i3d_keras.InceptionI3D(1001, stream, frames=FRAMES, image_size=SIZE)
    report = inflate_into_i3d(model_2d, model_3d)
    assert len(report["assigned"]) == 115 and not report["unassigned"]
    assert model_3d.get_layer("Conv3d_1a_7x7_conv_3d").kernel.shape[3] == (3 if stream == "rgb" else 2)
    rng = np.random.default_rng(3)
    gray = rng.uniform(-1, 1, (1, SIZE, SIZE, 1)).astype("float32")
    # Flow: equal-valued channels, for which the equal-response rule is exact.
    image = rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype("float32") if stream == "rgb" else np.repeat(gray, 3, -1)
    channels = 3 if stream == "rgb" else 2
    video = np.repeat(image[:, None, ..., :channels], FRAMES, axis=1)
    masks = unpadded_time_positions(model_3d, FRAMES)
    assert masks["Mixed_5c"].sum() == 2
    errors = {}
    for endpoint, y2, y3 in zip(*endpoint_outputs(model_2d, model_3d, image, video)):
        if endpoint == "Logits":
            continue  # pooled over time, edge frames included
        clean = y3[:, masks[endpoint]]
        errors[endpoint] = float(np.abs(clean - y2[:, None]).max() / np.abs(y2).max())
    print(stream, {k: f"{v:.1e}" for k, v in errors.items()})
    assert errors["Mixed_5c"] < 1e-4
    assert max(errors.values()) < 1e-4


def test_centre_inflation_matches_at_every_frame_and_logits(model_2d):
    frames = 16
    model_3d = i3d_keras.InceptionI3D(1001, frames=frames, image_size=SIZE)
    inflate_into_i3d(model_2d, model_3d, method="centre")
    image = np.random.default_rng(4).uniform(-1, 1, (1, SIZE, SIZE, 3)).astype("float32")
    video = np.repeat(image[:, None], frames, axis=1)
    for endpoint, y2, y3 in zip(*endpoint_outputs(model_2d, model_3d, image, video)):
        expected = y2 if endpoint == "Logits" else np.broadcast_to(y2[:, None], y3.shape)
        np.testing.assert_allclose(y3, expected, rtol=1e-4, atol=1e-4 * np.abs(y2).max(), err_msg=endpoint)


def test_inflation_leaves_other_class_counts_and_truncated_models(model_2d):
    kinetics = i3d_keras.InceptionI3D(400, frames=8, image_size=SIZE)
    before = kinetics.get_layer("Logits_Conv3d_0c_1x1_conv_3d").get_weights()
    report = inflate_into_i3d(model_2d, kinetics)
    assert report["skipped"] and report["skipped"][0].startswith("Logits_Conv3d_0c_1x1_conv_3d")
    after = kinetics.get_layer("Logits_Conv3d_0c_1x1_conv_3d").get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    truncated = i3d_keras.InceptionI3D(frames=8, image_size=SIZE, final_endpoint="Mixed_4c")
    assert len(inflate_into_i3d(model_2d, truncated)["assigned"]) == 2 * (3 + 6 * 4)
