"""Tests for i3d_keras.export.litert_graph: the 4-D rebuild computes the Keras models' values.

The LiteRT files it gives (partitions, quantisations): tests/export/test_exporters.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.export import litert_graph
from i3d_keras.models import layers as i3d_layers


def _randomize_statistics(model, rng):
    """Non-trivial BatchNorm statistics and offsets, so that folding them shows."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _randomize_statistics(layer, rng)
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape) * 0.1)
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
            if layer.center:
                layer.beta.assign(rng.normal(size=layer.beta.shape) * 0.1)


def _conv3d_reference(x, kernel, strides, padding):
    return tf.nn.conv3d(x, kernel, [1, *strides, 1], padding.upper()).numpy()


@pytest.mark.parametrize("frames,kernel,strides,padding", [
    (8, (3, 3, 3), (1, 1, 1), "same"),
    (8, (7, 7, 7), (2, 2, 2), "same"),   # I3D's stem: the phase reshape
    (5, (7, 7, 7), (2, 2, 2), "same"),   # a clip shorter than the kernel
    (9, (3, 1, 1), (2, 1, 1), "valid"),  # "valid" with a stride: the clip is cut
    (6, (1, 1, 1), (2, 1, 1), "same"),   # a temporally strided 1x1x1
    (6, (2, 3, 3), (1, 1, 1), "valid"),
])
def test_time_taps_and_conv2d_are_the_3d_convolution(rng, frames, kernel, strides, padding):
    x = rng.normal(size=(1, frames, 9, 10, 3)).astype("float32")
    w = rng.normal(size=(*kernel, 3, 4)).astype("float32")
    taps = litert_graph.time_taps(tf.constant(x[0]), kernel[0], strides[0], padding)
    kt, kh, kw = kernel
    kernel2d = np.transpose(w, [1, 2, 0, 3, 4]).reshape(kh, kw, kt * 3, 4)
    got = tf.nn.conv2d(taps, kernel2d, [1, *strides[1:], 1], padding.upper()).numpy()
    expected = _conv3d_reference(x, w, strides, padding)[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,window,strides,padding", [
    ((5, 9, 11, 3), (1, 3, 3), (1, 2, 2), "same"),
    ((5, 9, 11, 3), (3, 3, 3), (2, 2, 2), "same"),
    ((7, 8, 8, 4), (3, 3, 3), (1, 1, 1), "same"),
    ((6, 10, 9, 2), (2, 3, 3), (1, 2, 1), "valid"),
    ((4, 7, 7, 5), (2, 7, 7), (1, 1, 1), "valid"),  # I3D's head: the window is the map
    ((8, 7, 7, 5), (2, 7, 7), (1, 1, 1), "valid"),  # 64 frames' head: a sum over time
    ((4, 9, 8, 5), (2, 7, 7), (1, 1, 1), "valid"),  # frames over 224 px: a window in the map
    ((8, 6, 6, 3), (2, 3, 3), (2, 1, 1), "valid"),  # a temporal stride
])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool3d_equals_keras_3d_pooling(rng, shape, window, strides, padding, mode):
    x = rng.normal(size=(1, *shape)).astype("float32")
    reference = keras.layers.MaxPooling3D if mode == "max" else keras.layers.AveragePooling3D
    expected = reference(window, strides=strides, padding=padding)(x).numpy()[0]
    got = litert_graph.pool3d(tf.constant(x[0]), window, strides, padding, mode).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if mode == "avg" and padding == "valid":  # no average pooling: none in int8 XNNPACK
        traced = tf.function(lambda v: litert_graph.pool3d(v, window, strides, padding, mode))
        ops = {op.type for op in traced.get_concrete_function(
            tf.TensorSpec(shape, tf.float32)).graph.get_operations()}
        assert "AvgPool" not in ops, ops


def test_concatenations_of_at_most_five_inputs_are_one_concatenation():
    parts = [tf.fill([2, 3], float(i)) for i in range(11)]
    np.testing.assert_array_equal(litert_graph.concat(parts, -1), tf.concat(parts, -1))
    fn = tf.function(lambda: litert_graph.concat(parts[:7], -1)).get_concrete_function()
    inputs = [len(op.inputs) - 1 for op in fn.graph.get_operations() if op.type == "ConcatV2"]
    assert sorted(inputs) == [3, 5]  # (t0, t1, t2), then that and t3..t6


def _same_logits(model, clips, tolerance=1e-5):
    shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    fn = litert_graph.logits_function(model, shapes)
    assert fn.fallbacks == ()
    names = [t.name.split(":")[0] for t in model.inputs]
    got = fn(*[tf.constant(clips[n]) for n in names])["logits"].numpy()
    out = model(clips if len(names) > 1 else clips[names[0]], training=False)
    expected = (out["logits"] if isinstance(out, dict) else out).numpy()
    scale = max(np.abs(expected).max(), 1.0)
    np.testing.assert_allclose(got, expected, atol=tolerance * scale, rtol=0)
    return fn


def test_i3d_rebuilt_in_4d_gives_its_logits(rng):
    model = i3d_keras.InceptionI3D(6, frames=8, image_size=32)
    _randomize_statistics(model, rng)
    fn = _same_logits(model, {"rgb": rng.uniform(-1, 1, (1, 8, 32, 32, 3)).astype("float32")})
    ops = fn.graph.get_operations()
    # No Conv3D, 3D pool or BatchNorm is left (folded into the convolutions:
    # no multiplication either), and no tensor but the input clip is 5-D.
    assert not {"Conv3D", "MaxPool3D", "AvgPool3D", "FusedBatchNormV3", "Mul"} & {
        op.type for op in ops}
    assert [op.type for op in ops if any(o.shape.rank == 5 for o in op.outputs)] == [
        "Placeholder"]
    # Each weight once: BatchNorm is folded in as the convolution is emitted,
    # not by a second convolution beside a dead first one (whose constants
    # the converter would copy too).
    constant_bytes = sum(len(op.get_attr("value").tensor_content) for op in ops
                         if op.type == "Const")
    kernels = sum(w.numpy().nbytes for w in model.weights if w.path.endswith("kernel"))
    assert kernels <= constant_bytes <= 1.05 * kernels


def test_batch_norm_folds_only_where_nothing_else_reads_the_convolution(rng):
    """A convolution whose output is also a model's output (of the model, or of
    a nested one), or reaches its BatchNorm through a Dropout, keeps its own
    values; the BatchNorm is applied to the copy it reads."""
    def conv_and_norm(x, tag):
        conv = keras.layers.Conv3D(5, 1, name=f"conv_{tag}")(x)
        return conv, keras.layers.BatchNormalization(name=f"bn_{tag}")(conv)

    clip = keras.Input((4, 8, 8, 3), batch_size=1, name="rgb")
    conv, norm = conv_and_norm(clip, "a")
    pool = keras.layers.GlobalAveragePooling3D
    both_outputs = keras.Model(clip, {"logits": pool(name="pool")(conv), "aux": norm})
    inner = keras.Model(clip, list(conv_and_norm(clip, "b")), name="inner")
    outer_clip = keras.Input((4, 8, 8, 3), batch_size=1, name="rgb")
    nested = keras.Model(outer_clip, pool(name="pool")(
        keras.layers.Add(name="add")(inner(outer_clip))))
    conv = keras.layers.Conv3D(5, 1, name="conv_c")(clip)
    dropped = keras.layers.BatchNormalization(name="bn_c")(
        keras.layers.Dropout(0.5, name="drop")(conv))
    dropout = keras.Model(clip, pool(name="pool")(dropped))
    x = {"rgb": rng.uniform(-1, 1, (1, 4, 8, 8, 3)).astype("float32")}
    for model in (both_outputs, nested, dropout):
        _randomize_statistics(model, rng)
        fn = _same_logits(model, x)
    # Through the Dropout the BatchNorm still folds into the convolution.
    assert "Mul" not in {op.type for op in fn.graph.get_operations()}


def test_two_stream_and_comparison_models_rebuilt_in_4d(rng):
    clips = {"rgb": rng.uniform(-1, 1, (1, 8, 32, 32, 3)).astype("float32"),
             "flow": rng.uniform(-1, 1, (1, 8, 32, 32, 2)).astype("float32")}
    from i3d_keras.models import baselines  # noqa: PLC0415

    for name in ("two_stream_i3d", "c3d", "two_stream_2d", "3d_fused", "convnet_pooling"):
        extra = {"fusion_filters": 16} if name == "3d_fused" else {}
        model = baselines.build_architecture(name, 5, frames=8, image_size=32, **extra)
        _randomize_statistics(model, rng)
        inputs = {k: clips[k] for k in (t.name.split(":")[0] for t in model.inputs)}
        _same_logits(model, inputs)


def test_depthwise_conv3d_and_keras_layers_rebuilt_in_4d(rng):
    inputs = keras.Input((6, 16, 16, 3), batch_size=1, name="rgb")
    x = i3d_layers.DepthwiseConv3D((3, 3, 3), strides=(1, 2, 2), depth_multiplier=2,
                                   name="depthwise")(inputs)
    x = keras.layers.Conv3D(4, (3, 1, 1), padding="same", activation="relu", name="conv")(x)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.MaxPooling3D((2, 2, 2), name="pool")(x)
    x = keras.layers.GlobalAveragePooling3D(name="mean")(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="logits")(x))
    model.get_layer("depthwise").bias.assign(rng.normal(size=6).astype("float32"))
    _randomize_statistics(model, rng)
    _same_logits(model, {"rgb": rng.uniform(-1, 1, (1, 6, 16, 16, 3)).astype("float32")})


@keras.saving.register_keras_serializable(package="test_litert_graph")
class _Unknown(keras.layers.Layer):
    """A layer the rebuild does not know: it runs as Keras runs it, on 5-D clips."""

    def call(self, x):
        return x * 2.0 - tf.reduce_mean(x, axis=1, keepdims=True)


def test_unknown_layers_run_on_5d_clips_and_are_named(rng):
    inputs = keras.Input((4, 8, 8, 3), batch_size=1, name="rgb")
    x = i3d_keras.Conv3D(4, 3, padding="same", name="conv")(inputs)
    x = _Unknown(name="unknown")(x)
    x = keras.layers.GlobalAveragePooling3D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))
    clip = rng.normal(size=(1, 4, 8, 8, 3)).astype("float32")
    fn = litert_graph.logits_function(model, {"rgb": (4, 8, 8, 3)})
    assert fn.fallbacks == ("unknown",)
    np.testing.assert_allclose(fn(tf.constant(clip))["logits"], model(clip), rtol=1e-5,
                               atol=1e-5)


def test_clip_shapes_must_cover_the_inputs():
    model = i3d_keras.InceptionI3D(3, frames=4, image_size=16, final_endpoint="Conv3d_1a_7x7")
    with pytest.raises(ValueError, match=r"Received: clip_shapes for \['flow'\]"):
        litert_graph.logits_function(model, {"flow": (4, 16, 16, 2)})


@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, True)])
def test_lstm_unrolled_over_the_steps(rng, return_sequences, go_backwards):
    inputs = keras.Input((5, 7), batch_size=1, name="rgb")
    x = keras.layers.LSTM(4, return_sequences=return_sequences, go_backwards=go_backwards,
                          name="lstm")(inputs)
    model = keras.Model(inputs, x)
    model.get_layer("lstm").cell.bias.assign(rng.normal(size=16).astype("float32"))
    fn = litert_graph.logits_function(model, {"rgb": (5, 7)})
    assert fn.fallbacks == () and "While" not in {op.type for op in fn.graph.get_operations()}
    seq = rng.normal(size=(1, 5, 7)).astype("float32")
    np.testing.assert_allclose(fn(tf.constant(seq))["logits"], model(seq), rtol=1e-5, atol=1e-6)
