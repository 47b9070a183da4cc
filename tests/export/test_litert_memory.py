"""Tests for i3d_keras.export.litert_memory: the weights and activation arena of LiteRT files."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.export import exporters
from i3d_keras.export.litert_memory import ALIGNMENT, litert_memory, plan_arena

SIZE, FRAMES, CLASSES = 32, 4, 6


def _convert(model, path):
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def _litert_arena_bytes(path):
    """The span of LiteRT's own arena: every activation's address, reference kernels only."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: PLC0415

    interpreter = Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {t for op in interpreter._get_ops_details() for t in op["outputs"] if t >= 0}
    tensors |= {d["index"] for d in interpreter.get_input_details()}
    spans = []
    for index in tensors:
        array = interpreter.tensor(index)()
        start = array.__array_interface__["data"][0]
        spans.append((start, start + array.nbytes))
    return max(end for _, end in spans) - min(start for start, _ in spans)


def test_plan_never_lets_tensors_alive_together_share_bytes(rng):
    sizes = {t: int(rng.integers(1, 5000)) for t in range(60)}
    lifetimes = {}
    for t in sizes:
        first = int(rng.integers(-1, 40))
        lifetimes[t] = (first, first + int(rng.integers(0, 8)))
    arena, offsets = plan_arena(sizes, lifetimes)
    for a in sizes:
        assert offsets[a] % ALIGNMENT == 0
        for b in sizes:
            together = (a != b and lifetimes[a][0] <= lifetimes[b][1]
                        and lifetimes[b][0] <= lifetimes[a][1])
            if together:
                assert (offsets[a] + sizes[a] <= offsets[b]
                        or offsets[b] + sizes[b] <= offsets[a]), (a, b)
    live = max(sum(n for t, n in sizes.items() if lifetimes[t][0] <= step <= lifetimes[t][1])
               for step in range(-1, 48))
    assert live <= arena <= sum(-(-n // ALIGNMENT) * ALIGNMENT for n in sizes.values())
    # A chain reuses bytes: each tensor only overlaps its neighbours.
    chain, _ = plan_arena({t: 1024 for t in range(10)}, {t: (t, t + 1) for t in range(10)})
    assert chain == 2 * 1024


def test_plan_needs_every_lifetime():
    with pytest.raises(ValueError, match=r"Received none for: \['b'\]"):
        plan_arena({"a": 1, "b": 2}, {"a": (0, 1)})


@pytest.mark.parametrize("graph", ["branches", "reshapes"])
def test_arena_is_litert_own_arena(tmp_path, graph):
    """Without kernel scratch (no im2col), the plan is LiteRT's arena, byte for byte."""
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    if graph == "branches":  # Inception-like blocks: 1x1 convolutions, pools, concat, pad
        x = inputs = keras.Input((24, 24, 6), batch_size=3)
        for i in range(3):
            branches = [keras.layers.Conv2D(8, 1, activation="relu", name=f"a{i}")(x),
                        keras.layers.Conv2D(12, 1, activation="relu", name=f"b{i}")(x),
                        keras.layers.Conv2D(4, 1, name=f"c{i}")(
                            keras.layers.MaxPooling2D(3, 1, padding="same", name=f"p{i}")(x))]
            x = keras.layers.ZeroPadding2D(1, name=f"pad{i}")(
                keras.layers.Concatenate(name=f"cat{i}")(branches))
            x = keras.layers.MaxPooling2D(2, name=f"down{i}")(x) if i == 0 else x
        outputs = keras.layers.Dense(5, name="logits")(
            keras.layers.GlobalAveragePooling2D(name="mean")(x))
    else:  # a reshape whose input nothing else reads, between element-wise operators
        inputs = keras.Input((32, 32, 8), batch_size=1)
        x = keras.layers.Concatenate(name="cat")([
            keras.layers.MaxPooling2D(3, 1, padding="same", name="pool")(inputs),
            keras.layers.ReLU(name="relu")(inputs)])
        x = keras.layers.Activation("tanh", name="tanh")(keras.layers.MaxPooling2D(2)(x))
        x = keras.layers.Reshape((16 * 16, 16), name="reshape")(x)
        outputs = keras.layers.Add(name="add")([x, keras.layers.ReLU(name="relu2")(x)])
    path = _convert(keras.Model(inputs, outputs), tmp_path / f"{graph}.tflite")
    memory = litert_memory(path)
    assert memory["arena_mb"] * 1e6 == pytest.approx(_litert_arena_bytes(path), abs=0.5)
    assert memory["peak_live_mb"] <= memory["arena_mb"]


def test_i3d_files_weights_and_arena_by_quantization(tmp_path, rng, truncated_i3d):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    model = truncated_i3d(CLASSES, frames=None, image_size=SIZE)
    clips = [rng.uniform(-1, 1, (FRAMES, SIZE, SIZE, 3)).astype("float32") for _ in range(2)]
    memory = {}
    for quantization in ("float32", "float16", "int8"):
        extra = {"representative_dataset": clips} if quantization == "int8" else {}
        path = exporters.export_tflite(model, tmp_path / f"{quantization}.tflite",
                                       quantization=quantization, frames=FRAMES, **extra)
        memory[quantization] = litert_memory(path)
    memory["long"] = litert_memory(exporters.export_tflite(
        model, tmp_path / "long.tflite", frames=4 * FRAMES))
    weights = model.count_params() * 4 / 1e6  # BatchNorm folds into fewer, so at most this
    f32, f16, int8 = memory["float32"], memory["float16"], memory["int8"]
    assert 0.9 * weights <= f32["weights_mb"] <= weights
    # float16 stores half the bytes and unpacks float32 kernels on loading,
    # outside the activations.
    assert f16["weights_mb"] == pytest.approx(f32["weights_mb"] / 2, rel=0.02)
    assert f16["unpacked_weights_mb"] == pytest.approx(f32["weights_mb"], rel=0.02)
    assert f16["arena_mb"] == f32["arena_mb"] and f32["unpacked_weights_mb"] == 0
    # int8 activations take a byte each; the float input is kept beside them.
    float_input_mb = FRAMES * SIZE * SIZE * 3 * 4 / 1e6
    assert f32["arena_mb"] / 4 < int8["arena_mb"] <= f32["arena_mb"] / 4 + float_input_mb
    assert int8["weights_mb"] == pytest.approx(f32["weights_mb"] / 4, rel=0.1)
    # Activations grow with the clip, weights do not.
    assert memory["long"]["arena_mb"] == pytest.approx(4 * f32["arena_mb"], rel=0.1)
    assert memory["long"]["weights_mb"] == pytest.approx(f32["weights_mb"], rel=1e-3)


def test_not_a_litert_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 not a flatbuffer")
    with pytest.raises(ValueError, match=r"Expected a LiteRT \(.tflite\) file. Received: '"):
        litert_memory(path)

