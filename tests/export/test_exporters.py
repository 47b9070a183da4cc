"""Tests for i3d_keras.export.exporters: SavedModel signatures and LiteRT builtin-only files.

Requests against an exported model: tests/export/test_serving.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.export import exporters
from i3d_keras.models import convolution

SIZE, FRAMES, CLASSES = 32, 4, 6
NAMES = [f"class_{i}" for i in range(CLASSES)]


@pytest.fixture(scope="module")
def streams():
    rng = np.random.default_rng(1)
    models = {}
    for stream in ("rgb", "flow"):
        model = i3d_keras.InceptionI3D(CLASSES, stream, frames=FRAMES, image_size=SIZE)
        # Non-zero logits biases and BN statistics make the comparisons meaningful.
        for layer in model.layers:
            if hasattr(layer, "moving_mean"):
                layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape) * 0.1)
                layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
        models[stream] = model
    return models


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(2)
    return {
        "rgb": rng.uniform(-1, 1, (1, FRAMES, SIZE, SIZE, 3)).astype("float32"),
        "flow": rng.uniform(-1, 1, (1, FRAMES, SIZE, SIZE, 2)).astype("float32"),
    }


@pytest.fixture(scope="module")
def fused_export(streams, tmp_path_factory):
    """The two-stream model and its SavedModel, exported once for the module."""
    fused = i3d_keras.TwoStreamI3D(streams["rgb"], streams["flow"])
    base = tmp_path_factory.mktemp("saved_models")
    path = exporters.export_saved_model(fused, base, "i3d", class_names=NAMES, top_k=3,
                                        image_size=SIZE)
    return fused, base, path


def _small_stream_model(stream):
    """A cheap stand-in for one stream where only the export plumbing is tested."""
    channels = 3 if stream == "rgb" else 2
    inputs = keras.Input((FRAMES, SIZE, SIZE, channels), name=stream)
    pooled = keras.layers.GlobalAveragePooling3D(name="pool")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(pooled), name=stream)


def test_saved_model_signatures_match_keras(fused_export, clip):
    fused, base, path = fused_export
    assert path == base / "i3d" / "1"
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "preprocessed"}
    expected = fused(clip)["logits"].numpy()
    out = loaded.signatures["preprocessed"](rgb=tf.constant(clip["rgb"]),
                                             flow=tf.constant(clip["flow"]))
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(expected), atol=1e-6)
    assert out["top_k_indices"].shape == (1, 3)
    assert out["top_k_names"].numpy()[0, 0].decode() == NAMES[int(np.argmax(expected))]
    # Raw frames of another size: resized to short side 256, cropped, scaled in the graph.
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, FRAMES, 48, 64, 3), dtype=np.uint8)
    flow = rng.uniform(-0.2, 0.2, (2, FRAMES, 48, 64, 2)).astype("float32")
    raw = loaded.signatures["serving_default"](frames=tf.constant(frames), flow=tf.constant(flow))
    rgb_in, flow_in = exporters.serving_preprocess(frames, flow, image_size=SIZE)
    np.testing.assert_allclose(
        raw["logits"], fused({"rgb": rgb_in, "flow": flow_in})["logits"], rtol=1e-5, atol=1e-5)
    assert rgb_in.shape == (2, FRAMES, SIZE, SIZE, 3)
    assert -1.0 <= float(tf.reduce_min(rgb_in)) and float(tf.reduce_max(rgb_in)) <= 1.0


def test_serving_signature_rejects_wrong_channels(tmp_path):
    path = exporters.export_saved_model(_small_stream_model("rgb"), tmp_path, "rgb",
                                        image_size=SIZE)
    loaded = tf.saved_model.load(str(path))
    bad = tf.zeros([1, FRAMES, 40, 40, 4], tf.uint8)
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError), match="3"):
        loaded.signatures["serving_default"](frames=bad)


def test_versions_are_never_overwritten(tmp_path):
    model = _small_stream_model("flow")
    first = exporters.export_saved_model(model, tmp_path, "flow", image_size=SIZE)
    second = exporters.export_saved_model(model, tmp_path, "flow", image_size=SIZE)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(exporters.ExportError, match="refusing to overwrite"):
        exporters.export_saved_model(model, tmp_path, "flow", version=1, image_size=SIZE)
    exporters.export_saved_model(model, tmp_path, "flow", version=1, overwrite=True,
                                 image_size=SIZE)
    # No temporary folders are left behind.
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == ["1", "2"]
    assert 'name: "flow"' in exporters.models_config([("flow", "/models/flow")])


@pytest.mark.parametrize("quantization,tolerance", [
    ("float32", 1e-4), ("float16", 5e-2), ("dynamic_int8", None)])
def test_tflite_builtin_only_runs_in_litert(streams, clip, tmp_path, quantization, tolerance,
                                           truncated_i3d):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    # The fusion model in float32; for the quantised variants (the same
    # converter path with weight quantisation) I3D up to Mixed_3c and a
    # classifier, which converts in a third of the time.
    if quantization == "float32":
        model, inputs = i3d_keras.TwoStreamI3D(streams["rgb"], streams["flow"]), clip
    else:
        model = truncated_i3d(CLASSES, frames=FRAMES, image_size=SIZE)
        inputs = {"rgb": clip["rgb"]}
    path = exporters.export_tflite(model, tmp_path / f"i3d_{quantization}.tflite",
                                   quantization=quantization)
    ops = exporters.tflite_builtin_ops(path)
    # On CPUs the model computes its 3D convolutions as 2D ones (i3d_keras.models.convolution).
    conv = "CONV_2D" if convolution.resolve_implementation("auto") == "conv2d" else "CONV_3D"
    assert conv in ops and "MAX_POOL_2D" in ops
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    report = exporters.verify_tflite(model, path, inputs)
    if tolerance is not None:
        assert report["max_abs_logit_diff"] <= tolerance, report
    assert np.isfinite(report["max_abs_logit_diff"])


def test_tflite_two_input_model_with_plain_logits(tmp_path, capfd):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    # The comparison's two-stream baselines (TwoStream2D, ThreeDFused) take
    # {"rgb", "flow"} and return a logits tensor, not TwoStreamI3D's dict.
    rgb = keras.Input((FRAMES, SIZE, SIZE, 3), name="rgb")
    flow = keras.Input((FRAMES, SIZE, SIZE, 2), name="flow")
    x = keras.layers.Concatenate(name="stack")([rgb, flow])
    x = i3d_keras.Conv3D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.GlobalAveragePooling3D(name="pool")(x)
    model = keras.Model({"rgb": rgb, "flow": flow},
                        keras.layers.Dense(CLASSES, name="logits")(x), name="two_input")
    capfd.readouterr()
    path = exporters.export_tflite(model, tmp_path / "two_input.tflite")
    assert capfd.readouterr().out == ""  # not the converter's SavedModel listing
    assert not [op for op in exporters.tflite_builtin_ops(path) if op.startswith("Flex")]
    rng = np.random.default_rng(5)
    inputs = {"rgb": rng.uniform(-1, 1, (1, FRAMES, SIZE, SIZE, 3)).astype("float32"),
              "flow": rng.uniform(-1, 1, (1, FRAMES, SIZE, SIZE, 2)).astype("float32")}
    assert exporters.verify_tflite(model, path, inputs)["max_abs_logit_diff"] <= 1e-5


def test_tflite_needs_fixed_shapes_and_known_quantization(streams, tmp_path):
    dynamic = i3d_keras.InceptionI3D(CLASSES, frames=None, image_size=SIZE)
    with pytest.raises(exporters.ExportError, match="fixed clip shape"):
        exporters.export_tflite(dynamic, tmp_path / "x.tflite")
    with pytest.raises(exporters.ExportError, match="quantization"):
        exporters.export_tflite(streams["rgb"], tmp_path / "x.tflite", quantization="int4")


def test_depthwise_conv3d_exports_to_builtin_litert(tmp_path):
    # DepthwiseConv3D is what `inflate` turns MobileNet/EfficientNet depthwise
    # layers into; it must convert to builtins like the I3D layers do.
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    from i3d_keras.models import layers as i3d_layers

    inputs = keras.Input((FRAMES, 16, 16, 3), name="rgb")
    x = i3d_layers.DepthwiseConv3D((3, 3, 3), strides=(1, 2, 2), depth_multiplier=2,
                                   name="depthwise")(inputs)
    x = keras.layers.GlobalAveragePooling3D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x))
    rng = np.random.default_rng(5)
    model.get_layer("depthwise").bias.assign(rng.normal(size=6).astype("float32"))
    path = exporters.export_tflite(model, tmp_path / "depthwise.tflite")
    ops = exporters.tflite_builtin_ops(path)
    assert "DEPTHWISE_CONV_2D" in ops
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    clip = {"rgb": rng.uniform(-1, 1, (1, FRAMES, 16, 16, 3)).astype("float32")}
    report = exporters.verify_tflite(model, path, clip)
    assert report["max_abs_logit_diff"] <= 1e-4, report
