"""Tests for i3d_keras.models.layers: the layers equal their Keras counterparts."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.models import layers as i3d_layers


@pytest.mark.parametrize(
    "shape,pool_size,strides,padding",
    [
        ((2, 5, 9, 11, 3), (1, 3, 3), (1, 2, 2), "same"),
        ((2, 5, 9, 11, 3), (3, 3, 3), (2, 2, 2), "same"),
        ((1, 7, 8, 8, 4), (2, 2, 2), (2, 2, 2), "same"),
        ((1, 7, 8, 8, 4), (3, 3, 3), (1, 1, 1), "same"),
        ((2, 6, 10, 9, 2), (2, 3, 3), (1, 2, 1), "valid"),
        ((1, 4, 7, 7, 5), (2, 7, 7), (1, 1, 1), "valid"),
    ],
)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling3d_equals_keras_3d_pooling(rng, shape, pool_size, strides, padding, mode):
    x = rng.normal(size=shape).astype("float32")
    reference_cls = keras.layers.MaxPooling3D if mode == "max" else keras.layers.AveragePooling3D
    expected = reference_cls(pool_size, strides=strides, padding=padding)(x)
    got = i3d_layers.Pooling3D(pool_size, strides=strides, padding=padding, mode=mode)(x)
    assert got.shape == expected.shape
    if mode == "max":
        np.testing.assert_array_equal(got, expected)  # value for value
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_pooling3d_dynamic_shapes_in_graph(rng):
    layer = i3d_layers.Pooling3D((3, 3, 3), strides=(2, 2, 2), padding="same")
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, None, 4])])
    x = rng.normal(size=(2, 5, 9, 7, 4)).astype("float32")
    expected = keras.layers.MaxPooling3D(3, strides=2, padding="same")(x)
    np.testing.assert_array_equal(fn(x), expected)


def test_adaptive_pooling_equals_plain_where_window_fits(rng):
    x = rng.normal(size=(2, 4, 9, 8, 3)).astype("float32")
    expected = keras.layers.AveragePooling3D((2, 7, 7), strides=1, padding="valid")(x)
    got = i3d_layers.Pooling3D((2, 7, 7), strides=1, padding="valid", mode="avg", adaptive=True)(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_adaptive_pooling_shrinks_window_also_for_dynamic_shapes(rng):
    layer = i3d_layers.Pooling3D((2, 7, 7), strides=1, padding="valid", mode="avg", adaptive=True)
    x = rng.normal(size=(2, 1, 3, 8, 5)).astype("float32")
    # Time: 1 < 2 and height: 3 < 7 shrink to global means; width 8 >= 7 pools.
    expected = keras.layers.AveragePooling3D((1, 3, 7), strides=1, padding="valid")(x)
    assert layer(x).shape == (2, 1, 1, 2, 5)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, None, None, None, 5])])
    np.testing.assert_allclose(fn(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "signature",
    [[None, 1, 3, 8, 5], [None, 1, 1, 1, 5], [None, None, None, None, 5]],
    ids=["unknown_batch", "unknown_batch_all_axes_shrink", "all_dynamic"],
)
def test_adaptive_pooling_under_xla(rng, signature):
    # Regression: begin/size vectors built from tf.shape crashed XLA (or made
    # Keras' jit-compiled evaluate report zero loss) with an unknown batch.
    layer = i3d_layers.Pooling3D((2, 7, 7), strides=1, padding="valid", mode="avg", adaptive=True)
    x = rng.normal(size=[2] + [n or 4 for n in signature[1:]]).astype("float32")
    fn = tf.function(layer, jit_compile=True, input_signature=[tf.TensorSpec(signature)])
    np.testing.assert_allclose(fn(x), layer(x), rtol=1e-5, atol=1e-6)


def test_pooling3d_rejects_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        i3d_layers.Pooling3D(3, padding="full")
    with pytest.raises(ValueError, match="mode"):
        i3d_layers.Pooling3D(3, mode="min")
    with pytest.raises(ValueError, match="pool_size"):
        i3d_layers.Pooling3D((3, 3))
    with pytest.raises(ValueError, match="adaptive"):
        i3d_layers.Pooling3D(3, strides=2, mode="avg", padding="valid", adaptive=True)


@pytest.mark.parametrize(
    "layer",
    [
        i3d_layers.Pooling3D((1, 3, 3), strides=(1, 2, 2), name="pool"),
        i3d_layers.Mean(axis=(1, 2), keepdims=True, name="mean"),
        i3d_layers.WeightedSum([0.5, 2.0], name="sum"),
        i3d_layers.BatchNormalization(epsilon=1e-3, scale=False, name="bn"),
    ],
)
def test_layers_config_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_mean_and_weighted_sum_values(rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    np.testing.assert_allclose(i3d_layers.Mean(axis=(1, 2))(x), x.mean(axis=(1, 2)), rtol=1e-6)
    a, b = x[:, 0], x[:, 1]
    np.testing.assert_allclose(
        i3d_layers.WeightedSum([0.5, 2.0])([a, b]), 0.5 * a + 2.0 * b, rtol=1e-6
    )
    with pytest.raises(ValueError, match="one weight per input"):
        i3d_layers.WeightedSum([1.0])([a, b])


@pytest.mark.parametrize("implementation", ["conv2d", "conv3d", "auto"])
def test_conv3d_equals_keras_conv3d(rng, implementation):
    x = rng.normal(size=(2, 7, 12, 12, 3)).astype("float32")
    args = dict(filters=8, kernel_size=(3, 5, 5), strides=(1, 2, 2), padding="same",
                use_bias=True, activation="relu")
    reference = keras.layers.Conv3D(**args)
    layer = i3d_layers.Conv3D(**args, implementation=implementation)
    reference.build(x.shape)
    layer.build(x.shape)
    # Same variables (names and shapes), so checkpoints and inflation map 1:1.
    assert [(v.path.split("/")[-1], v.shape) for v in layer.weights] == [
        (v.path.split("/")[-1], v.shape) for v in reference.weights]
    layer.set_weights([w + 0.1 for w in reference.get_weights()])
    reference.set_weights(layer.get_weights())
    expected = reference(x).numpy()
    got = layer(x).numpy()
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))
    assert isinstance(layer, keras.layers.Conv3D)
    clone = i3d_layers.Conv3D.from_config(layer.get_config())
    assert clone.implementation == implementation
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("kwargs,message", [
    (dict(dilation_rate=2), "dilation_rate=(1, 1, 1) only. Received: dilation_rate=(2, 2, 2)"),
    (dict(data_format="channels_first"), "Received: data_format='channels_first'"),
    (dict(groups=2), "Received: groups=2"),
    (dict(implementation="fast"), "Received: implementation='fast'"),
])
def test_conv3d_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        i3d_layers.Conv3D(4, 3, **kwargs)


@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "eigen"])
@pytest.mark.parametrize("pool_size", [(3, 3, 3), (1, 3, 3), (2, 2, 2)])
def test_max_pooling_in_training_equals_keras_values_and_gradients(rng, monkeypatch, pool_size,
                                                                   onednn):
    # Without oneDNN, training uses maxima of shifted slices for stride-1
    # "same" max pools; with it, the 2D poolings of inference.
    monkeypatch.setattr(i3d_layers.convolution, "onednn_enabled", lambda: onednn)
    calls = []
    monkeypatch.setattr(i3d_layers, "_separable_max_same",
                        lambda *a, _f=i3d_layers._separable_max_same: calls.append(1) or _f(*a))
    x = tf.constant(rng.normal(size=(2, 5, 9, 8, 3)).astype("float32"))
    layer = i3d_layers.Pooling3D(pool_size, strides=1, padding="same")
    reference = keras.layers.MaxPooling3D(pool_size, strides=1, padding="same")
    weights = tf.constant(rng.normal(size=(2, 5, 9, 8, 3)).astype("float32"))
    results = []
    for fn in (lambda a: layer(a, training=True), reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * weights)
        results.append((y.numpy(), tape.gradient(loss, x).numpy()))
    (y, dx), (expected_y, expected_dx) = results
    np.testing.assert_array_equal(y, expected_y)  # value for value
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)  # no ties in random data
    np.testing.assert_array_equal(layer(x, training=False), expected_y)
    dynamic = tf.function(lambda a: layer(a, training=True),
                          input_signature=[tf.TensorSpec([None, None, None, None, 3])])
    np.testing.assert_array_equal(dynamic(x), expected_y)
    assert bool(calls) == (not onednn)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "keras"])
@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("unknown_dims", [False, True], ids=["static", "unknown"])
def test_batch_normalization_equals_keras_in_training(rng, monkeypatch, fused, scale,
                                                      unknown_dims):
    # The fused kernel runs with oneDNN; Keras' computation otherwise.
    monkeypatch.setattr(i3d_layers.convolution, "onednn_enabled", lambda: fused)
    x = tf.constant(rng.normal(2.0, 3.0, size=(2, 4, 6, 6, 8)).astype("float32"))
    weights = tf.constant(rng.normal(size=x.shape).astype("float32"))
    kwargs = dict(epsilon=1e-3, scale=scale, momentum=0.9)
    layers = [keras.layers.BatchNormalization(**kwargs), i3d_layers.BatchNormalization(**kwargs)]
    for layer in layers:
        layer.build(x.shape)
    # [gamma,] beta, moving mean: random; moving variance: positive.
    values = [rng.normal(size=w.shape).astype("float32") for w in layers[0].weights[:-1]]
    values.append(np.full(layers[0].weights[-1].shape, 2.0, "float32"))
    for layer in layers:
        layer.set_weights(values)

    def train_step(layer, a):
        with tf.GradientTape() as tape:
            tape.watch(a)
            loss = tf.reduce_sum(layer(a, training=True) * weights)
        return (layer(a, training=True), *tape.gradient(loss, [a, *layer.trainable_weights]))

    shape = [None] * 4 + [8] if unknown_dims else x.shape
    results = [tf.function(lambda a, layer=layer: train_step(layer, a),
                           input_signature=[tf.TensorSpec(shape)])(x) for layer in layers]
    for expected, got in zip(*results):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    # Two updates of the moving statistics (train_step calls the layer twice).
    for expected, got in zip(layers[0].non_trainable_weights, layers[1].non_trainable_weights):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layers[1](x, training=False).numpy(),
                               layers[0](x, training=False).numpy(), rtol=1e-5, atol=1e-5)


def test_batch_normalization_keeps_keras_synchronized_statistics(rng, monkeypatch):
    # Cross-replica statistics are Keras' own computation, never the fused kernel.
    monkeypatch.setattr(i3d_layers.convolution, "onednn_enabled", lambda: True)
    calls = []
    original = tf.raw_ops.FusedBatchNormV3
    monkeypatch.setattr(tf.raw_ops, "FusedBatchNormV3",
                        lambda **kwargs: calls.append(kwargs) or original(**kwargs))
    x = tf.constant(rng.normal(size=(2, 3, 4, 4, 8)).astype("float32"))
    i3d_layers.BatchNormalization()(x, training=True)
    assert len(calls) == 1  # the spy sees the fused path
    i3d_layers.BatchNormalization(synchronized=True)(x, training=True)
    assert len(calls) == 1
