"""Tests of 2D -> 3D inflation (Carreira & Zisserman, CVPR 2017, Sec. 2.4).

The acceptance property: on a "boring video" (one frame repeated) an
inflated network computes the 2D network's activations on the frame at
every time position that temporal zero padding does not reach, for every
supported keras.applications family, with random weights and random
BatchNorm statistics.
"""

import numpy as np
import pytest

import i3d_keras  # noqa: F401 (sets TF options first)
import keras
import tensorflow as tf

from i3d_keras.weights.inflation import (
    adapt_input_channels,
    inflate,
    inflate_kernel,
    inflate_model,
    resnet_time_kernel,
    unpadded_time_positions,
)
from i3d_keras.models.layers import DepthwiseConv3D, Pooling3D

REL_TOL = 1e-4

FAMILIES = {
    "ResNet50": (keras.applications.ResNet50, 32),
    "InceptionV3": (keras.applications.InceptionV3, 75),
    "VGG16": (keras.applications.VGG16, 32),
    "MobileNetV2": (keras.applications.MobileNetV2, 32),
    "DenseNet121": (keras.applications.DenseNet121, 32),
    "EfficientNetB0": (keras.applications.EfficientNetB0, 32),
}

_MODELS = {}


def randomize_statistics(model, seed=0):
    """Random BatchNorm / Normalization parameters and statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for weight in layer.weights:
                kind = weight.path.split("/")[-1]
                if kind in ("gamma", "moving_variance"):
                    values.append(rng.uniform(0.5, 1.5, weight.shape))
                else:
                    values.append(rng.normal(0.0, 0.2, weight.shape))
            layer.set_weights([v.astype("float32") for v in values])
        elif isinstance(layer, keras.layers.Normalization):
            mean, variance, *rest = layer.get_weights()
            layer.set_weights(
                [rng.normal(0, 0.2, mean.shape).astype("float32"),
                 rng.uniform(0.5, 1.5, variance.shape).astype("float32"), *rest]
            )


def model_2d(family):
    """Each family is built once per test module (building is slow-ish)."""
    if family not in _MODELS:
        builder, size = FAMILIES[family]
        keras.utils.set_random_seed(1)
        model = builder(weights=None, input_shape=(size, size, 3), classes=7)
        randomize_statistics(model)
        _MODELS[family] = (model, size)
    return _MODELS[family]


def rel_error(reference, value):
    return float(np.abs(reference - value).max() / max(np.abs(reference).max(), 1e-12))


def compare_boring_video(model, model_3d, size, frames, all_positions=False, channels=3, seed=0):
    """Max relative error over all layers present in both models, and the count."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(-1, 1, (2, size, size, 3)).astype("float32")
    video = np.repeat(image[:, None, ..., :channels], frames, axis=1)
    masks = unpadded_time_positions(model_3d, frames)
    layers_3d = {layer.name: layer for layer in model_3d.layers}
    names = [
        layer.name for layer in model.layers
        if layer.name in layers_3d and not isinstance(layer, keras.layers.InputLayer)
    ]
    outputs_2d = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])(image)
    outputs_3d = keras.Model(model_3d.inputs[0], [layers_3d[n].output for n in names])(video)
    worst, compared = 0.0, 0
    for name, y2, y3 in zip(names, outputs_2d, outputs_3d):
        y2, y3 = np.asarray(y2), np.asarray(y3)
        if y3.ndim == y2.ndim + 1:
            keep = np.ones(y3.shape[1], bool) if all_positions else masks[name]
            if not keep.any():
                continue
            y3 = y3[:, keep]
            y2 = np.broadcast_to(y2[:, None], y3.shape)
        elif not all_positions:
            continue  # Pooled over time: the padded edge frames are inside.
        worst = max(worst, rel_error(y2, y3))
        compared += 1
    return worst, compared, len(names)


def frames_for(model_3d):
    """The fewest frames for which the last time-bearing layer has a clean position."""
    masks = unpadded_time_positions(model_3d, 201)
    reach = max(int(np.argmax(m)) for m in masks.values())
    return 2 * reach + 1


# --------------------------------------------------------------------------
# Kernel level.


def test_inflate_kernel_mean_repeats_and_divides():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype("float32")
    inflated = inflate_kernel(kernel, 5)
    assert inflated.shape == (5, 3, 3, 4, 5)
    np.testing.assert_allclose(inflated.sum(axis=0), kernel, rtol=1e-6)
    np.testing.assert_allclose(inflated[2], kernel / 5, rtol=1e-6)


@pytest.mark.parametrize("time_size, index", [(1, 0), (3, 1), (4, 1), (7, 3)])
def test_inflate_kernel_centre_is_the_same_padding_aligned_tap(time_size, index):
    kernel = np.ones((3, 3, 2, 2), "float32")
    inflated = inflate_kernel(kernel, time_size, method="centre")
    assert inflated.sum() == kernel.sum()
    np.testing.assert_array_equal(inflated[index], kernel)
    # A boring video through Conv3D "SAME" gives the 2D result at every frame.
    x = np.random.default_rng(1).normal(size=(1, 6, 5, 5, 2)).astype("float32")
    boring = np.repeat(x[:, :1], 6, axis=1)
    y3 = tf.nn.conv3d(boring, inflated, [1] * 5, "SAME").numpy()
    y2 = tf.nn.conv2d(boring[:, 0], kernel, 1, "SAME").numpy()
    np.testing.assert_allclose(y3, np.repeat(y2[:, None], 6, axis=1), rtol=1e-5, atol=1e-5)


def test_inflate_dispatches_on_kernels():
    assert inflate(np.ones((3, 3, 3, 8), "float32"), 3).shape == (3, 3, 3, 3, 8)
    with pytest.raises(ValueError, match="time_kernel='auto'"):
        inflate(np.ones((3, 3, 3, 8), "float32"))


def test_equal_response_channel_rule_preserves_equal_valued_inputs():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype("float32")
    flow = adapt_input_channels(kernel, 2)
    assert flow.shape == (3, 3, 2, 4)
    np.testing.assert_allclose(flow.sum(axis=2), kernel.sum(axis=2), rtol=1e-5)
    # TSN's rule: the mean over RGB, repeated.
    tsn = adapt_input_channels(kernel, 2, rule="mean")
    np.testing.assert_allclose(tsn[:, :, 0], kernel.mean(axis=2), rtol=1e-6)
    with pytest.raises(ValueError, match="rule"):
        adapt_input_channels(kernel, 2, rule="first")


def test_inflate_kernel_errors_say_what_was_received():
    with pytest.raises(ValueError, match="Received: method='median'"):
        inflate_kernel(np.ones((3, 3, 1, 1)), 3, method="median")
    with pytest.raises(ValueError, match="Received: time_size=0"):
        inflate_kernel(np.ones((3, 3, 1, 1)), 0)
    with pytest.raises(ValueError, match="Received: kernel of shape"):
        inflate_kernel(np.ones((3, 3)), 3)


# --------------------------------------------------------------------------
# DepthwiseConv3D.


@pytest.mark.parametrize("multiplier, padding, time_size", [(1, "same", 3), (2, "valid", 2), (1, "same", 1)])
def test_depthwise_conv3d_matches_per_channel_conv3d(multiplier, padding, time_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 9, 9, 3)).astype("float32")
    layer = DepthwiseConv3D((time_size, 3, 3), strides=2, padding=padding, depth_multiplier=multiplier)
    y = layer(x).numpy()
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    before = (time_size - 1) // 2
    padded = np.pad(x, [(0, 0), (before, time_size - 1 - before), (0, 0), (0, 0), (0, 0)])
    if padding == "same":
        padded = np.pad(padded, [(0, 0), (0, 0), (1, 1), (1, 1), (0, 0)])
    reference = np.stack(
        [tf.nn.conv3d(padded[..., c:c + 1], kernel[..., c:c + 1, :], [1, 1, 2, 2, 1], "VALID").numpy()
         for c in range(3)],
        axis=-2,
    ).reshape(y.shape) + bias
    np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-5)


def test_depthwise_conv3d_serialises():
    layer = DepthwiseConv3D((3, 3, 3), name="dw")
    layer(np.zeros((1, 2, 4, 4, 2), "float32"))
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="temporal stride 1"):
        DepthwiseConv3D(3, strides=(2, 1, 1))


# --------------------------------------------------------------------------
# The acceptance property, per family.


@pytest.mark.parametrize("family", list(FAMILIES))
def test_boring_video_matches_2d_activations(family):
    model, size = model_2d(family)
    model_3d = inflate_model(model)
    assert model_3d.inputs[0].shape[1:] == (None, size, size, 3)
    frames = frames_for(model_3d)
    worst, compared, total = compare_boring_video(model, model_3d, size, frames)
    print(f"{family}: frames={frames}, layers compared {compared}/{total}, max rel err {worst:.2e}")
    assert compared >= total - 5  # all but the time-pooled head
    assert worst < REL_TOL


@pytest.mark.parametrize("family", list(FAMILIES))
def test_centre_inflation_matches_2d_at_every_frame_and_output(family):
    model, size = model_2d(family)
    model_3d = inflate_model(model, method="centre", frames=3)
    worst, compared, total = compare_boring_video(model, model_3d, size, 3, all_positions=True)
    print(f"{family} centre: layers compared {compared}/{total}, max rel err {worst:.2e}")
    assert compared == total  # the predictions included
    assert worst < REL_TOL


# --------------------------------------------------------------------------
# Options and structure.


def test_layer_names_and_types_are_kept():
    model, _ = model_2d("MobileNetV2")
    model_3d = inflate_model(model, frames=4)
    names_2d = {layer.name for layer in model.layers}
    names_3d = {layer.name for layer in model_3d.layers}
    assert names_2d <= names_3d
    assert isinstance(model_3d.get_layer("Conv1"), keras.layers.Conv3D)
    assert isinstance(model_3d.get_layer("expanded_conv_depthwise"), DepthwiseConv3D)
    assert model_3d.get_layer("expanded_conv_depthwise").kernel.shape == (3, 3, 3, 32, 1)
    assert isinstance(model_3d.get_layer("block_1_pad"), keras.layers.ZeroPadding3D)
    head = [layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    assert isinstance(model_3d.get_layer(head[0].name), keras.layers.GlobalAveragePooling3D)
    assert model_3d.output.shape == (None, 7)


def test_resnet_recipe_defaults():
    model, _ = model_2d("ResNet50")
    model_3d = inflate_model(model, frames=8)
    kernels = {name: model_3d.get_layer(name).kernel_size for name in (
        "conv1_conv", "conv2_block1_1_conv", "conv2_block3_1_conv", "conv2_block1_2_conv",
        "conv3_block1_1_conv", "conv3_block2_1_conv", "conv4_block5_1_conv",
        "conv5_block1_1_conv", "conv5_block2_1_conv", "conv2_block1_0_conv")}
    assert kernels == {
        "conv1_conv": (5, 7, 7), "conv2_block1_1_conv": (3, 1, 1),
        "conv2_block3_1_conv": (3, 1, 1), "conv2_block1_2_conv": (1, 3, 3),
        "conv3_block1_1_conv": (3, 1, 1), "conv3_block2_1_conv": (1, 1, 1),
        "conv4_block5_1_conv": (3, 1, 1), "conv5_block1_1_conv": (1, 1, 1),
        "conv5_block2_1_conv": (3, 1, 1), "conv2_block1_0_conv": (1, 1, 1),
    }
    assert resnet_time_kernel(model.get_layer("conv4_block2_1_conv")) == 1
    # The ResNet's "valid" 7x7 stem gets temporal "SAME" padding.
    assert model_3d.get_layer("conv1_conv_time_pad").padding[0] == (2, 2)


def test_time_kernel_and_time_pool_options():
    model, _ = model_2d("VGG16")
    custom = inflate_model(
        model,
        time_kernel={"block1_conv1": 5},
        time_pool=lambda layer: (2, 2) if layer.name == "block2_pool" else None,
        frames=8,
    )
    assert custom.get_layer("block1_conv1").kernel_size == (5, 3, 3)
    assert custom.get_layer("block1_conv2").kernel_size == (3, 3, 3)
    # VGG pools "valid": spatial pooling, then temporal pooling with "SAME".
    assert custom.get_layer("block2_pool_spatial").pool_size == (1, 2, 2)
    assert custom.get_layer("block2_pool").pool_size == (2, 1, 1)
    assert custom.get_layer("block3_pool").pool_size == (1, 2, 2)
    assert custom.get_layer("block5_conv3").output.shape[1] == 4
    flat = inflate_model(model, time_kernel=1, frames=2)
    assert all(layer.kernel_size[0] == 1 for layer in flat.layers if isinstance(layer, keras.layers.Conv3D))
    by_callable = inflate_model(model, time_kernel=lambda layer: 2 if "block5" in layer.name else None)
    assert by_callable.get_layer("block5_conv1").kernel_size == (2, 3, 3)
    assert by_callable.get_layer("block4_conv1").kernel_size == (3, 3, 3)
    with pytest.raises(ValueError, match=r"Received: \['no_such_layer'\]"):
        inflate_model(model, time_kernel={"no_such_layer": 3})
    with pytest.raises(ValueError, match="block1_conv1"):
        inflate_model(model, time_kernel=lambda layer: 0)


def test_num_classes_replaces_the_classifier_and_head_pools_time_and_space():
    model, _ = model_2d("EfficientNetB0")
    model_3d = inflate_model(model, num_classes=5, frames=4)
    assert model_3d.output.shape == (None, 5)
    assert model_3d.get_layer("predictions").units == 5
    # Squeeze-and-excitation pools space per frame; the head, time and space.
    assert isinstance(model_3d.get_layer("block1a_se_squeeze"), i3d_keras.Mean)
    assert model_3d.get_layer("block1a_se_reshape").output.shape[1:] == (4, 1, 1, 32)
    assert isinstance(model_3d.get_layer("avg_pool"), keras.layers.GlobalAveragePooling3D)
    out = model_3d(np.zeros((2, 4, 32, 32, 3), "float32"))
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


def test_num_classes_adds_a_head_to_a_feature_model():
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    video = inflate(base, num_classes=3, classifier_activation="softmax", frames=4)
    assert video.output.shape == (None, 3)
    assert isinstance(video.get_layer("avg_pool_3d"), keras.layers.GlobalAveragePooling3D)
    features = inflate(base, frames=4)
    assert features.output.shape == (None, 4, 1, 1, 1280)


def test_flow_input_channels_equal_response():
    model, size = model_2d("ResNet50")
    flow = inflate_model(model, input_channels=2, method="centre", frames=2)
    assert flow.get_layer("conv1_conv").kernel.shape == (5, 7, 7, 2, 64)
    image = np.random.default_rng(2).uniform(-1, 1, (1, size, size, 1)).astype("float32")
    gray = np.repeat(image, 3, axis=-1)
    video = np.repeat(np.repeat(image, 2, axis=-1)[:, None], 2, axis=1)
    expected = model(gray).numpy()
    np.testing.assert_allclose(flow(video).numpy(), expected, rtol=1e-4, atol=1e-6)


def test_inflated_model_saves_and_loads_with_safe_mode(tmp_path):
    model, size = model_2d("MobileNetV2")
    model_3d = inflate_model(model, frames=3)
    path = tmp_path / "mobilenet_3d.keras"
    model_3d.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    video = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size, 3)).astype("float32")
    np.testing.assert_allclose(loaded(video), model_3d(video), rtol=1e-5, atol=1e-6)


def test_nested_and_sequential_models():
    inner = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, padding="same", name="c"),
         keras.layers.BatchNormalization(name="bn"), keras.layers.ReLU(name="r")],
        name="inner",
    )
    inputs = keras.Input((16, 16, 3))
    x = inner(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outer = keras.Model(inputs, keras.layers.Dense(2, name="fc")(x))
    video = inflate_model(outer, method="centre", frames=3)
    assert isinstance(video.get_layer("flat_time_mean"), i3d_keras.Mean)
    image = np.random.default_rng(0).normal(size=(1, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        video(np.repeat(image[:, None], 3, axis=1)), outer(image), rtol=1e-5, atol=1e-6
    )
    assert inflate_model(inner).get_layer("c").kernel_size == (3, 3, 3)
    # Per-layer sizes reach into nested models.
    custom = inflate_model(outer, time_kernel={"c": 5})
    assert custom.get_layer("inner_3d").get_layer("c").kernel_size == (5, 3, 3)


def test_unsupported_layer_is_named():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2DTranspose(4, 3, name="deconv")(inputs)
    model = keras.Model(inputs, x)
    with pytest.raises(ValueError, match="'deconv' of type .*Conv2DTranspose"):
        inflate_model(model)
    inputs = keras.Input((8, 8, 3))
    grouped = keras.Model(inputs, keras.layers.Conv2D(6, 3, groups=3, name="grouped")(inputs))
    with pytest.raises(ValueError, match="'grouped' with groups=3"):
        inflate_model(grouped)
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        inflate_model(grouped, num_classes=0)


def test_unpadded_time_positions():
    inputs = keras.Input((10, 4, 4, 1))
    x = keras.layers.Conv3D(1, (3, 1, 1), padding="same", name="a")(inputs)
    x = Pooling3D((3, 1, 1), strides=(2, 1, 1), name="p")(x)
    x = keras.layers.Conv3D(1, (3, 1, 1), padding="same", name="b")(x)
    masks = unpadded_time_positions(keras.Model(inputs, x), 10)
    np.testing.assert_array_equal(masks["a"], [0, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    # Pool windows (SAME, stride 2, pad 0 before): {0,1,2}, {2,3,4}, ..., {8,9}.
    np.testing.assert_array_equal(masks["p"], [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(masks["b"], [0, 0, 1, 0, 0])
