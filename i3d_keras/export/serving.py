"""Requests for TF Serving: REST (JSON) and gRPC (`PredictRequest`) from video clips.

A SavedModel written by `i3d_keras.export.exporters.export_saved_model` serves raw decoded
frames (`serving_default`: uint8 `frames` and, for two-stream models, float32
`flow`) and preprocessed clips (`preprocessed`). This module builds the request
payloads for those signatures, checks them against a SavedModel's signature
(names, dtypes, shapes) and sends them.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.
"""

import json
import urllib.request

import numpy as np
import tensorflow as tf

REST_PORT = 8501
GRPC_PORT = 8500


def request_inputs(frames=None, flow=None):
    """The `serving_default` inputs for one clip, batched.

    Args:
        frames: uint8 `[frames, height, width, 3]` (RGB) or with a batch axis.
        flow: float32 `[frames, height, width, 2]` in [-1, 1], or with a batch axis.

    Returns:
        `{"frames": uint8 [1, T, H, W, 3], "flow": float32 [1, T, H, W, 2]}` (the given ones).
    """
    inputs = {}
    if frames is not None:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8:
            raise ValueError(f"Expected uint8 frames. Received: dtype={frames.dtype}")
        inputs["frames"] = frames[None] if frames.ndim == 4 else frames
    if flow is not None:
        inputs["flow"] = np.asarray(flow, np.float32)
        inputs["flow"] = inputs["flow"][None] if inputs["flow"].ndim == 4 else inputs["flow"]
    if not inputs:
        raise ValueError("Expected frames and/or flow. Received: neither")
    return inputs


def rest_payload(inputs, signature_name="serving_default"):
    """The JSON body of a REST `:predict` request (columnar "inputs" format)."""
    return {"signature_name": signature_name,
            "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}


def grpc_request(inputs, model_name, signature_name="serving_default", version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for `inputs`."""
    from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415 (optional extra)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def inputs_from_rest(payload, signature):
    """Decodes a REST payload's inputs with the dtypes of `signature` (as the server does)."""
    specs = signature.structured_input_signature[1]
    return {k: tf.constant(v, dtype=specs[k].dtype) for k, v in payload["inputs"].items()}


def inputs_from_grpc(request):
    """Decodes a `PredictRequest`'s tensors (as the server does)."""
    return {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}


def check_against_signature(inputs, signature):
    """Raises ValueError unless `inputs` fit the signature's names, dtypes and shapes."""
    specs = signature.structured_input_signature[1]
    if set(inputs) != set(specs):
        raise ValueError(f"Expected inputs {sorted(specs)}. Received: {sorted(inputs)}")
    for key, spec in specs.items():
        value = tf.convert_to_tensor(inputs[key])
        if value.dtype != spec.dtype:
            raise ValueError(f"Expected {key!r} of dtype {spec.dtype.name}. "
                             f"Received: dtype={value.dtype.name}")
        if not spec.shape.is_compatible_with(value.shape):
            raise ValueError(f"Expected {key!r} of shape {spec.shape}. "
                             f"Received: shape={tuple(value.shape)}")


def send_rest(payload, model_name, host="localhost", port=REST_PORT, timeout=60):
    """POSTs a REST payload to TF Serving; returns the decoded JSON answer."""
    url = f"http://{host}:{port}/v1/models/{model_name}:predict"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def send_grpc(request, host="localhost", port=GRPC_PORT, timeout=60):
    """Sends a `PredictRequest` over gRPC; returns {output name: numpy array}."""
    import grpc  # noqa: PLC0415
    from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(f"{host}:{port}", options=[
            ("grpc.max_send_message_length", 512 << 20)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


__all__ = [
    "check_against_signature", "grpc_request", "inputs_from_grpc", "inputs_from_rest",
    "request_inputs", "rest_payload", "send_grpc", "send_rest",
]
