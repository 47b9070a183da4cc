"""Tests of the paper's compared architectures (i3d_keras.models.baselines)."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.models import baselines, inception_v1
from i3d_keras.models import layers as i3d_layers
from i3d_keras.models.baselines import ARCHITECTURES, build_architecture, classifier, input_modality
from i3d_keras.weights.inflation import adapt_input_channels
from i3d_keras.models.receptive_field import receptive_fields

FRAMES, SIZE, CLASSES = 8, 32, 10

# Exact parameter counts for build_architecture(name, 10, frames=8, image_size=32).
# (Two-stream 2D models stack min(10, 8) = 8 flow frames: a 16-channel first conv.)
PARAMS = {
    "i3d": 12_304_794,
    "convnet_pooling": 5_617_434,
    "convnet_lstm": 8_766_234,
    "c3d": 28_193_930,
    "two_stream_2d": 11_275_636,
    "3d_fused": 39_573_354,
    "two_stream_i3d": 24_587_636,
}

_MODELS = {}


def built(name):
    """One model per architecture for the whole module (building is the slow part)."""
    if name not in _MODELS:
        keras.utils.set_random_seed(0)
        _MODELS[name] = build_architecture(name, CLASSES, FRAMES, SIZE, batch_norm_momentum=0.9)
    return _MODELS[name]


def clip_inputs(name, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    clips = {
        "rgb": rng.uniform(-1, 1, [batch, FRAMES, SIZE, SIZE, 3]).astype("float32"),
        "flow": rng.uniform(-1, 1, [batch, FRAMES, SIZE, SIZE, 2]).astype("float32"),
    }
    modality = input_modality(name)
    return clips if modality == "both" else clips[modality]


def test_registry_covers_the_paper():
    assert set(ARCHITECTURES) == {
        "i3d", "convnet_pooling", "convnet_lstm", "c3d", "two_stream_2d", "3d_fused",
        "two_stream_i3d",
    }
    assert set(PARAMS) == set(ARCHITECTURES)
    assert [input_modality(n) for n in ("i3d", "c3d", "two_stream_2d", "3d_fused")] == [
        "rgb", "rgb", "both", "both"]
    assert input_modality("convnet_lstm", stream="flow") == "flow"


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_shapes_params_training_step_and_save_load(name, tmp_path):
    model = built(name)
    x = clip_inputs(name)
    # Deterministic names: no auto-named layers ("dense_3", "lambda", ...).
    auto = [layer.name for layer in model.layers
            if layer.name.split("_")[-1].isdigit() or "lambda" in layer.name]
    assert not auto
    assert model.count_params() == PARAMS[name]

    logits = classifier(model)
    out = logits(x, training=False)
    assert tuple(out.shape) == (2, CLASSES)
    assert out.dtype == "float32"
    if name == "two_stream_i3d":
        assert set(model(x, training=False)) == {"logits", "probabilities"}

    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.count_params() == PARAMS[name]
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(classifier(loaded)(x, training=False)),
        keras.ops.convert_to_numpy(out),
    )

    logits.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # one step: tracing a graph would cost more than it saves
    )
    before = [w.numpy().copy() for w in logits.trainable_weights[-2:]]
    loss = logits.train_on_batch(x, np.array([0, 1]))
    assert np.isfinite(loss)
    after = [w.numpy() for w in logits.trainable_weights[-2:]]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_convnet_pooling_ignores_frame_order_and_the_others_need_not():
    x = clip_inputs("convnet_pooling")
    model = built("convnet_pooling")
    forward = keras.ops.convert_to_numpy(model(x, training=False))
    backward = keras.ops.convert_to_numpy(model(x[:, ::-1], training=False))
    np.testing.assert_allclose(forward, backward, rtol=1e-5, atol=1e-5)
    lstm = built("convnet_lstm")
    assert not np.allclose(keras.ops.convert_to_numpy(lstm(x, training=False)),
                           keras.ops.convert_to_numpy(lstm(x[:, ::-1], training=False)),
                           atol=1e-5)


def test_macs_count_every_frame_and_snapshot():
    per_frame = inception_v1.InceptionV1(CLASSES, image_size=SIZE)
    frame_macs = sum(r.macs for r in receptive_fields(per_frame, input_shape=(SIZE, SIZE, 3)))
    rows = receptive_fields(built("convnet_pooling"))
    assert sum(r.macs for r in rows) == FRAMES * frame_macs
    assert rows[-1].receptive_field[0] == FRAMES  # the time average sees every frame
    rows = receptive_fields(built("two_stream_2d"))  # 1 snapshot: 1 rgb frame + 8 flow
    flow_frame = inception_v1.InceptionV1(CLASSES, image_size=SIZE, channels=16)
    flow_macs = sum(r.macs for r in receptive_fields(flow_frame, input_shape=(SIZE, SIZE, 16)))
    assert sum(r.macs for r in rows) == frame_macs + flow_macs


def test_paper_parameter_counts_at_kinetics_size():
    """Table 1 of the paper: 400 classes, 224x224 (C3D: 16x112x112)."""
    expected = {"convnet_lstm": 9e6, "two_stream_2d": 12e6, "3d_fused": 39e6, "c3d": 79e6}
    for name, count in expected.items():
        size = 112 if name == "c3d" else None
        frames = 16 if name == "c3d" else None
        model = build_architecture(name, 400, frames, size)
        assert abs(model.count_params() - count) / count < 0.06, (name, model.count_params())
    c3d = model
    assert c3d.get_layer("fc6_dense").units == 4096
    assert c3d.get_layer("flatten").output.shape[-1] == 8192  # C3D's 512x1x4x4 pool5


def test_c3d_layers_follow_the_table():
    model = built("c3d")
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv3D)]
    pools = [l for l in model.layers if isinstance(l, i3d_layers.Pooling3D)]
    fcs = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    assert (len(convs), len(pools), len(fcs)) == (8, 5, 3)  # 2 FC + the classifier
    assert pools[0].strides == (2, 2, 2)  # the paper's temporal stride 2 in pool1
    assert all(isinstance(model.get_layer(f"{l.name[:-len('_conv_3d')]}_batch_norm"),
                          keras.layers.BatchNormalization) for l in convs)
    assert baselines.c3d_fc_units(512) == 512 and baselines.c3d_fc_units(8192) == 4096


def test_snapshots_layer():
    clip = tf.reshape(tf.range(2 * 16 * 2 * 2 * 2, dtype=tf.float32), [2, 16, 2, 2, 2])
    flow = i3d_layers.Snapshots(2, length=10)(clip)
    assert tuple(flow.shape) == (4, 2, 2, 20)
    unfolded = i3d_layers.UnfoldTime(2)(flow)
    # Second snapshot of clip 1: frames 6..15 stacked frame by frame.
    expected = tf.concat([clip[1, t] for t in range(6, 16)], axis=-1)
    np.testing.assert_array_equal(unfolded[1, 1].numpy(), expected.numpy())
    rgb = i3d_layers.UnfoldTime(2)(i3d_layers.Snapshots(2, length=1, span=10)(clip))
    np.testing.assert_array_equal(rgb[0, 1].numpy(), clip[0, 6 + 4].numpy())
    assert i3d_layers.snapshot_starts(250, 25, 10) == list(range(0, 250, 10))
    with pytest.raises(ValueError, match="Received: frames=8"):
        i3d_layers.snapshot_starts(8, 1, 10)
    folded = i3d_layers.FoldTime()(clip)
    assert tuple(folded.shape) == (32, 2, 2, 2)
    np.testing.assert_array_equal(i3d_layers.UnfoldTime()([folded, clip]).numpy(), clip.numpy())


def test_errors():
    with pytest.raises(ValueError, match="Received: name='resnet'"):
        build_architecture("resnet", 10)
    with pytest.raises(ValueError, match="Received: frames=8"):
        baselines.TwoStream2D(10, frames=8, image_size=32)
    with pytest.raises(ValueError, match="Received: frames=None"):
        baselines.C3D(10, frames=None, image_size=32)
    with pytest.raises(ValueError, match="from scratch"):
        baselines.C3D(10, frames=8, image_size=32, weights="imagenet")
    with pytest.raises(ValueError, match="Received: stream='depth'"):
        build_architecture("convnet_pooling", 10, 8, 32, stream="depth")


def _write_slim_checkpoint(prefix):
    rng = np.random.default_rng(1)
    model = inception_v1.InceptionV1(image_size=None)
    values = {name: rng.normal(size=layer.weights[i].shape).astype("float32")
              for name, (layer, i) in inception_v1.slim_variable_names(model).items()}
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=list(values),
                      shape_and_slices=[""] * len(values),
                      tensors=[tf.constant(v) for v in values.values()])
    return values


def test_imagenet_backbones_and_flow_first_conv(tmp_path):
    prefix = tmp_path / "inception_v1.ckpt"
    values = _write_slim_checkpoint(prefix)
    model = baselines.TwoStream2D(CLASSES, frames=8, image_size=SIZE, flow_stack=8,
                                  weights=str(prefix))
    kernel = values["InceptionV1/Conv2d_1a_7x7/weights"]
    rgb = model.get_layer("rgb_InceptionV1").get_layer("Conv2d_1a_7x7_conv_2d").kernel.numpy()
    flow = model.get_layer("flow_InceptionV1").get_layer("Conv2d_1a_7x7_conv_2d").kernel.numpy()
    np.testing.assert_array_equal(rgb, kernel)
    np.testing.assert_allclose(flow, adapt_input_channels(kernel, 16), rtol=1e-6)
    mixed = "Mixed_5c_Branch_3_Conv2d_0b_1x1_conv_2d"
    np.testing.assert_array_equal(
        model.get_layer("flow_InceptionV1").get_layer(mixed).kernel.numpy(),
        values["InceptionV1/Mixed_5c/Branch_3/Conv2d_0b_1x1/weights"])
