"""Tests for i3d_keras.models.i3d: the I3D network, endpoints and the fusion model."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.models import i3d as i3d_model

SMALL = dict(frames=8, image_size=32)


def _trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def tiny_rgb():
    return i3d_keras.InceptionI3D(num_classes=5, stream="rgb", **SMALL)


@pytest.fixture(scope="module")
def tiny_flow():
    return i3d_keras.InceptionI3D(num_classes=5, stream="flow", **SMALL)


def test_parameter_counts_equal_deepmind_checkpoints():
    rgb = i3d_keras.InceptionI3D(num_classes=400, stream="rgb")
    flow = i3d_keras.InceptionI3D(num_classes=400, stream="flow")
    assert _trainable_count(rgb) == 12_689_984
    assert _trainable_count(flow) == 12_668_032
    # BatchNorm moving statistics: 2 per BN channel, non-trainable.
    assert rgb.count_params() - _trainable_count(rgb) == 14_560
    kinetics600 = i3d_keras.InceptionI3D(num_classes=600)
    assert _trainable_count(kinetics600) == 12_689_984 + 200 * 1025


def test_layer_names_follow_deepmind_scopes(tiny_rgb):
    names = {layer.name for layer in tiny_rgb.layers}
    for expected in [
        "Conv3d_1a_7x7_conv_3d",
        "Conv3d_1a_7x7_batch_norm",
        "Mixed_4b_Branch_1_Conv3d_0b_3x3_conv_3d",
        "Mixed_5b_Branch_2_Conv3d_0a_3x3_conv_3d",  # DeepMind's name, kept.
        "Mixed_5c_Branch_2_Conv3d_0b_3x3_conv_3d",
        "Mixed_3b_Branch_3_MaxPool3d_0a_3x3",
        "Logits_Conv3d_0c_1x1_conv_3d",
    ]:
        assert expected in names
    assert all(e in names for e in i3d_keras.ENDPOINTS[:-1])
    # No auto-named layers: every name is derived from DeepMind's scopes.
    assert not [n for n in names if n.split("_")[0] in ("conv3d", "batch", "activation", "dense")]
    bn = tiny_rgb.get_layer("Conv3d_1a_7x7_batch_norm")
    assert bn.center and not bn.scale and bn.epsilon == 1e-3
    assert not tiny_rgb.get_layer("Conv3d_1a_7x7_conv_3d").use_bias
    assert tiny_rgb.get_layer("Logits_Conv3d_0c_1x1_conv_3d").use_bias


# Endpoint shapes, (frames, size) -> the expected shape at some endpoints.
@pytest.mark.parametrize(
    "frames,size,expected",
    [
        (8, 32, {"Conv3d_1a_7x7": (4, 16, 16, 64), "MaxPool3d_3a_3x3": (4, 4, 4, 192),
                 "Mixed_3c": (4, 4, 4, 480), "MaxPool3d_4a_3x3": (2, 2, 2, 480),
                 "Mixed_4f": (2, 2, 2, 832), "Mixed_5c": (1, 1, 1, 1024)}),
        (9, 64, {"Conv3d_1a_7x7": (5, 32, 32, 64), "MaxPool3d_2a_3x3": (5, 16, 16, 64),
                 "Mixed_3b": (5, 8, 8, 256), "Mixed_4b": (3, 4, 4, 512),
                 "Mixed_5b": (2, 2, 2, 832), "Mixed_5c": (2, 2, 2, 1024)}),
        (3, 48, {"Conv3d_1a_7x7": (2, 24, 24, 64), "Mixed_4e": (1, 3, 3, 528),
                 "Mixed_5c": (1, 2, 2, 1024)}),
    ],
)
def test_endpoint_shapes(frames, size, expected):
    model = i3d_keras.InceptionI3D(num_classes=7, frames=frames, image_size=size)
    features = i3d_keras.endpoint_model(model, list(expected))
    out = features(np.zeros([1, frames, size, size, 3], "float32"))
    for name, shape in expected.items():
        assert tuple(out[name].shape[1:]) == shape, name
    assert model(np.zeros([2, frames, size, size, 3], "float32")).shape == (2, 7)


def test_paper_size_shapes_symbolically():
    model = i3d_keras.InceptionI3D(frames=64)
    assert model.get_layer("Mixed_5c").output.shape == (None, 8, 7, 7, 1024)
    assert model.get_layer("Logits_AvgPool3d").output.shape == (None, 7, 1, 1, 1024)
    assert model.output.shape == (None, 400)


@pytest.mark.parametrize("final_endpoint", ["Conv3d_2c_3x3", "Mixed_4c", "Mixed_5c", "Predictions"])
def test_final_endpoint_builds_up_to_it(final_endpoint):
    model = i3d_keras.InceptionI3D(5, final_endpoint=final_endpoint, **SMALL)
    assert model.layers[-1].name == final_endpoint
    index = i3d_keras.ENDPOINTS.index(final_endpoint)
    later = {e for e in i3d_keras.ENDPOINTS[index + 1:]}
    assert not later & {layer.name for layer in model.layers}
    if final_endpoint == "Predictions":
        out = model(np.random.default_rng(0).normal(size=(2, 8, 32, 32, 3)).astype("float32"))
        np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)


def test_pooled_feature_shares_weights(tiny_rgb, rng):
    x = rng.uniform(-1, 1, size=(2, 8, 32, 32, 3)).astype("float32")
    features = i3d_keras.endpoint_model(tiny_rgb, "Mixed_5c", pooled=True)
    assert features.output.shape == (None, 1024)
    full = i3d_keras.endpoint_model(tiny_rgb, "Mixed_5c")(x)
    np.testing.assert_allclose(features(x), np.mean(full, axis=(1, 2, 3)), rtol=1e-5, atol=1e-6)
    # Same layer objects: changing the model's weights changes the features.
    assert features.get_layer("Mixed_5c_Branch_0_Conv3d_0a_1x1_conv_3d") is tiny_rgb.get_layer(
        "Mixed_5c_Branch_0_Conv3d_0a_1x1_conv_3d"
    )
    all_endpoints = i3d_keras.endpoint_model(tiny_rgb)
    assert list(all_endpoints.output) == list(i3d_keras.ENDPOINTS[:-1])


def test_logits_are_time_mean_of_per_position_logits(tiny_rgb, rng):
    # Logits = mean over time (and space) of the 1x1x1 conv of the pooled features.
    x = rng.uniform(-1, 1, size=(1, 8, 32, 32, 3)).astype("float32")
    pooled = keras.Model(tiny_rgb.inputs, tiny_rgb.get_layer("Logits_AvgPool3d").output)(x)
    conv = tiny_rgb.get_layer("Logits_Conv3d_0c_1x1_conv_3d")
    kernel, bias = conv.kernel.numpy()[0, 0, 0], conv.bias.numpy()
    expected = (np.asarray(pooled) @ kernel + bias).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(tiny_rgb(x), expected, rtol=1e-4, atol=1e-5)


def test_adaptive_head_and_dynamic_shapes(rng):
    dynamic = i3d_keras.InceptionI3D(6, frames=None, image_size=None)
    assert dynamic.input_shape == (None, None, None, None, 3)
    for shape in [(1, 4, 40, 40, 3), (1, 12, 72, 96, 3)]:
        out = dynamic(rng.uniform(-1, 1, size=shape).astype("float32"))
        assert out.shape == (1, 6) and np.all(np.isfinite(out))
    static = i3d_keras.InceptionI3D(6, frames=4, image_size=40)
    static.set_weights(dynamic.get_weights())
    x = rng.uniform(-1, 1, size=(1, 4, 40, 40, 3)).astype("float32")
    np.testing.assert_allclose(static(x), dynamic(x), rtol=1e-4, atol=1e-5)


def test_jit_compiled_evaluate_with_unknown_batch_equals_eager(tiny_rgb, rng):
    # Regression: the adaptive head crashed XLA, or made Keras' jit-compiled
    # evaluate report loss 0, when the batch size was unknown (validation
    # datasets that keep their last partial batch).
    model = keras.models.clone_model(tiny_rgb)
    model.set_weights(tiny_rgb.get_weights())
    x = rng.uniform(-1, 1, size=(3,) + tiny_rgb.input_shape[1:]).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.array([0, 1, 2]))).batch(2)
    results = []
    for jit in (False, True):
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=jit)
        results.append(model.evaluate(data, verbose=0))
    assert results[0] > 0
    np.testing.assert_allclose(results[1], results[0], rtol=1e-4)


def test_keras_load_model_after_plain_package_import(tiny_rgb, tmp_path):
    # A fresh interpreter, as a user's: `import i3d_keras` must register the
    # custom layers that `keras.models.load_model` looks up by name.
    import subprocess
    import sys

    path = tmp_path / "rgb.keras"
    tiny_rgb.save(path)
    code = ("import sys, i3d_keras, keras; "
            "m = keras.models.load_model(sys.argv[1]); print(m.output.shape)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(None, 5)" in result.stdout


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"Received: frames=4"):
        i3d_keras.InceptionI3D(frames=4, image_size=224, adaptive_head=False)
    with pytest.raises(ValueError, match=r"height=64, width=64"):
        i3d_keras.InceptionI3D(frames=16, image_size=64, adaptive_head=False)
    with pytest.raises(ValueError, match="stream"):
        i3d_keras.InceptionI3D(stream="depth")
    with pytest.raises(ValueError, match="final_endpoint"):
        i3d_keras.InceptionI3D(final_endpoint="Mixed_6a")
    with pytest.raises(ValueError, match="frames"):
        i3d_keras.InceptionI3D(frames=0)
    # The paper's head at the paper's sizes is accepted.
    i3d_keras.InceptionI3D(5, frames=9, image_size=224, adaptive_head=False, final_endpoint="Logits")


def test_bad_clips_raise_value_errors_naming_shapes(tiny_rgb):
    with pytest.raises(ValueError, match=r"expected shape=\(None, 8, 32, 32, 3\)"):
        tiny_rgb(np.zeros([1, 8, 32, 32, 2], "float32"))
    with pytest.raises(ValueError, match=r"expected shape"):
        tiny_rgb(np.zeros([8, 32, 32, 3], "float32"))


def test_fusion_logits_are_sum_of_stream_logits(tiny_rgb, tiny_flow, rng):
    fused = i3d_keras.TwoStreamI3D(tiny_rgb, tiny_flow)
    rgb = rng.uniform(-1, 1, size=(2, 8, 32, 32, 3)).astype("float32")
    flow = rng.uniform(-1, 1, size=(2, 8, 32, 32, 2)).astype("float32")
    out = fused({"rgb": rgb, "flow": flow})
    expected = tiny_rgb(rgb) + tiny_flow(flow)
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(expected), rtol=1e-5, atol=1e-6)
    # Weights are shared, not copied.
    rgb_kernel = tiny_rgb.get_layer("Conv3d_1a_7x7_conv_3d").kernel
    assert any(w is rgb_kernel for w in fused.weights)
    weighted = i3d_keras.TwoStreamI3D(tiny_rgb, tiny_flow, stream_weights=(1.0, 0.5))
    np.testing.assert_allclose(
        weighted({"rgb": rgb, "flow": flow})["logits"],
        tiny_rgb(rgb) + 0.5 * tiny_flow(flow), rtol=1e-5, atol=1e-5,
    )


def test_fusion_with_single_stream_and_errors(tiny_rgb, rng):
    single = i3d_keras.TwoStreamI3D(tiny_rgb)
    assert [t.name for t in single.inputs] == ["rgb"]
    rgb = rng.uniform(-1, 1, size=(1, 8, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(single({"rgb": rgb})["logits"], tiny_rgb(rgb), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least one stream"):
        i3d_keras.TwoStreamI3D()
    other = i3d_keras.InceptionI3D(3, "flow", **SMALL)
    with pytest.raises(ValueError, match="same number of classes"):
        i3d_keras.TwoStreamI3D(tiny_rgb, other)
    with pytest.raises(ValueError, match="Logits"):
        i3d_keras.TwoStreamI3D(i3d_keras.InceptionI3D(final_endpoint="Mixed_3b", **SMALL))


def test_fusion_accepts_prediction_streams(rng):
    rgb = i3d_keras.InceptionI3D(4, final_endpoint="Predictions", **SMALL)
    fused = i3d_keras.TwoStreamI3D(rgb)
    x = rng.uniform(-1, 1, size=(1, 8, 32, 32, 3)).astype("float32")
    logits = keras.Model(rgb.inputs, rgb.get_layer("Logits").output)(x)
    np.testing.assert_allclose(fused({"rgb": x})["logits"], logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["rgb", "flow", "fusion"])
def test_save_load_round_trip_safe_mode(kind, tiny_rgb, tiny_flow, tmp_path, rng):
    model = {"rgb": tiny_rgb, "flow": tiny_flow}.get(kind) or i3d_keras.TwoStreamI3D(tiny_rgb, tiny_flow)
    # Non-trivial BatchNorm statistics so that the round trip is a real check.
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape) * 0.1)
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, size=layer.moving_variance.shape))
    inputs = {
        "rgb": rng.uniform(-1, 1, size=(2, 8, 32, 32, 3)).astype("float32"),
        "flow": rng.uniform(-1, 1, size=(2, 8, 32, 32, 2)).astype("float32"),
    }
    x = inputs if kind == "fusion" else inputs[kind]
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)  # safe_mode=True by default
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), loaded(x), model(x)
    )
    # Same architecture (json: Keras stores some shapes as lists after loading).
    assert json.dumps(loaded.get_config()) == json.dumps(model.get_config())


def test_streams_train_on_their_own(rng):
    model = i3d_keras.InceptionI3D(3, "flow", frames=4, image_size=32)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = rng.uniform(-1, 1, size=(4, 4, 32, 32, 2)).astype("float32")
    y = np.array([0, 1, 2, 0])
    before = model.get_layer("Conv3d_1a_7x7_conv_3d").kernel.numpy().copy()
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(before, model.get_layer("Conv3d_1a_7x7_conv_3d").kernel.numpy())


def test_architecture_table_matches_issue_channels():
    mixed = {name: args for name, kind, args in i3d_model.ARCHITECTURE if kind == "mixed"}
    assert mixed["Mixed_4e"] == (112, 144, 288, 32, 64, 64)
    assert mixed["Mixed_5c"] == (384, 192, 384, 48, 128, 128)
    out_channels = {name: c[0] + c[2] + c[4] + c[5] for name, c in mixed.items()}
    assert out_channels == {"Mixed_3b": 256, "Mixed_3c": 480, "Mixed_4b": 512, "Mixed_4c": 512,
                            "Mixed_4d": 512, "Mixed_4e": 528, "Mixed_4f": 832, "Mixed_5b": 832,
                            "Mixed_5c": 1024}


def test_conv_implementations_compute_the_same_network(rng):
    # The default on CPUs ("auto" -> 2D convolutions) against TF's Conv3D.
    models = {impl: i3d_keras.InceptionI3D(5, "rgb", conv_implementation=impl, dropout_rate=0.0,
                                           **SMALL)
              for impl in ("conv2d", "conv3d")}
    reference = models["conv3d"]
    for layer in reference.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape) * 0.1)
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, size=layer.moving_variance.shape))
    models["conv2d"].set_weights(reference.get_weights())
    assert [w.path for w in models["conv2d"].weights] == [w.path for w in reference.weights]
    x = tf.constant(rng.uniform(-1, 1, size=(2, 8, 32, 32, 3)).astype("float32"))
    y = tf.constant([1, 3])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    results = {}
    for impl, model in models.items():
        # Inference-mode BatchNorm: with batch statistics over the last
        # layers' few positions, rounding differences get amplified.
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        grads = tape.gradient(loss, model.trainable_variables)
        results[impl] = (model(x).numpy(), [g.numpy() for g in grads])
    (logits, grads), (expected_logits, expected_grads) = results["conv2d"], results["conv3d"]
    assert np.max(np.abs(logits - expected_logits)) <= 1e-5 * np.max(np.abs(expected_logits))
    for g, e, v in zip(grads, expected_grads, reference.trainable_variables):
        # Rounding differences pass through ~60 layers of backward pass. A
        # ReLU input or max-pool tie within rounding of its kink would route
        # gradients differently; conftest seeds the weights so that this
        # network has none (1 in 8 seeds had one: 0.6% on the stem kernel).
        assert np.max(np.abs(g - e)) <= 1e-4 * np.max(np.abs(e)) + 1e-7, v.path
