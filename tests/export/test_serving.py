"""Tests for i3d_keras.export.serving: TF Serving requests against a real SavedModel."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.export import exporters, serving

SIZE, FRAMES, CLASSES = 32, 4, 6


def _stream(stream):
    """A cheap stand-in for an I3D stream ("any model with a layer named Logits"):
    the requests test the serving signature, which does not depend on I3D's layers."""
    channels = 3 if stream == "rgb" else 2
    inputs = keras.Input((FRAMES, SIZE, SIZE, channels), name=stream)
    pooled = keras.layers.GlobalAveragePooling3D(name="pool")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="Logits")(pooled),
                       name=f"{stream}_stream")


@pytest.fixture(scope="module")
def signature(tmp_path_factory):
    """The serving signature of an exported two-stream model, loaded back."""
    keras.utils.set_random_seed(0)
    fused = i3d_keras.TwoStreamI3D(_stream("rgb"), _stream("flow"))
    path = exporters.export_saved_model(fused, tmp_path_factory.mktemp("saved_models"), "i3d",
                                        image_size=SIZE)
    return tf.saved_model.load(str(path)).signatures["serving_default"]


@pytest.fixture
def inputs():
    rng = np.random.default_rng(4)
    return serving.request_inputs(
        rng.integers(0, 256, (FRAMES, 40, 48, 3), dtype=np.uint8),
        rng.uniform(-0.1, 0.1, (FRAMES, 40, 48, 2)).astype("float32"))


def _logits(signature, inputs):
    return signature(**{k: tf.constant(v) for k, v in inputs.items()})["logits"]


def test_requests_fit_the_signature(signature, inputs):
    serving.check_against_signature(inputs, signature)
    assert inputs["frames"].shape == (1, FRAMES, 40, 48, 3) and inputs["frames"].dtype == np.uint8
    assert _logits(signature, inputs).shape == (1, CLASSES)


def test_rest_payload_round_trips_through_json(signature, inputs):
    # Decoded with the signature's dtypes, as the server does.
    payload = json.loads(json.dumps(serving.rest_payload(inputs)))
    assert payload["signature_name"] == "serving_default"
    rest_inputs = serving.inputs_from_rest(payload, signature)
    np.testing.assert_allclose(signature(**rest_inputs)["logits"], _logits(signature, inputs),
                               rtol=1e-6)


def test_grpc_request_round_trips_as_a_protobuf(signature, inputs):
    pytest.importorskip("tensorflow_serving", reason="needs tensorflow-serving-api")
    from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415

    request = predict_pb2.PredictRequest.FromString(
        serving.grpc_request(inputs, "i3d").SerializeToString())
    assert request.model_spec.name == "i3d" and set(request.inputs) == {"frames", "flow"}
    np.testing.assert_allclose(signature(**serving.inputs_from_grpc(request))["logits"],
                               _logits(signature, inputs), rtol=1e-6)


def test_requests_that_do_not_fit_are_refused_before_sending(signature, inputs):
    with pytest.raises(ValueError, match="Expected inputs"):
        serving.check_against_signature({"frames": inputs["frames"]}, signature)
    with pytest.raises(ValueError, match="dtype"):
        serving.check_against_signature(
            {"frames": inputs["frames"].astype("float32"), "flow": inputs["flow"]}, signature)
