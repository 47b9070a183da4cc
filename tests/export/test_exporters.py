"""Tests for i3d_keras.export.exporters: SavedModel signatures and LiteRT builtin-only files.

Requests against an exported model: tests/export/test_serving.py.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.export import exporters, litert_memory

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
    with pytest.raises(exporters.ExportError, match="or overwrite=True to replace it") as error:
        exporters.export_saved_model(model, tmp_path, "flow", version=1, image_size=SIZE)
    assert "--overwrite" not in str(error.value)  # the API's words; the tool says its own
    exporters.export_saved_model(model, tmp_path, "flow", version=1, overwrite=True,
                                 image_size=SIZE)
    # No temporary folders are left behind.
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == ["1", "2"]
    assert 'name: "flow"' in exporters.models_config([("flow", "/models/flow")])
    # Readable by TF Serving's user as the user's other files are (was 0700, mkdtemp's).
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o777 & ~mask


def test_models_config_lists_every_exported_model_and_keeps_an_edited_one(tmp_path):
    """It listed only the first model exported: the guide's several models were not served."""
    for name in ("i3d", "rgb"):
        (tmp_path / name / "1").mkdir(parents=True)
        path, written = exporters.update_models_config(tmp_path, name)
        assert written
    assert path.read_text() == exporters.models_config([("i3d", "/models/i3d"),
                                                        ("rgb", "/models/rgb")])
    assert exporters.update_models_config(tmp_path, "rgb") == (path, False)  # listed already
    path.write_text(path.read_text().replace("/models/", "/srv/models/"))  # the user's own
    edited = path.read_text()
    (tmp_path / "flow" / "1").mkdir(parents=True)
    assert exporters.update_models_config(tmp_path, "flow") == (path, False)
    assert path.read_text() == edited


@pytest.mark.parametrize("name", ["../escaped", "", ".", "..", "a/b"])
def test_a_model_name_is_one_folder_under_the_base_folder(tmp_path, name):
    with pytest.raises(exporters.ExportError, match="Expected `name` to be one folder name"):
        exporters.version_dir(tmp_path / "base", name)
    assert exporters.version_dir(tmp_path, "i3d", 3) == tmp_path / "i3d" / "3"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("quantization,tolerance", [
    ("float32", 1e-4), ("float16", 1e-2), ("dynamic_int8", 0.1), ("int8", 0.1)])
def test_tflite_builtin_only_runs_whole_in_xnnpack(streams, clip, tmp_path, quantization,
                                                   tolerance, truncated_i3d):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    # The fusion model in float32; for the quantised variants (the same graph,
    # quantised by the converter) I3D up to Mixed_3c and a classifier, which
    # converts in a third of the time.
    if quantization == "float32":
        model, inputs = i3d_keras.TwoStreamI3D(streams["rgb"], streams["flow"]), clip
    else:
        model = truncated_i3d(CLASSES, frames=FRAMES, image_size=SIZE)
        inputs = {"rgb": clip["rgb"]}
    calibration = {}
    if quantization == "int8":  # clips of the test clip's distribution
        rng = np.random.default_rng(7)
        calibration["representative_dataset"] = [
            rng.uniform(-1, 1, (FRAMES, SIZE, SIZE, 3)).astype("float32") for _ in range(4)]
    path = exporters.export_tflite(model, tmp_path / f"i3d_{quantization}.tflite",
                                   quantization=quantization, **calibration)
    ops = exporters.tflite_builtin_ops(path)
    # The 4-D graph: Conv3D as CONV_2D whatever the model's implementation.
    assert "CONV_2D" in ops and "MAX_POOL_2D" in ops and "CONV_3D" not in ops
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"], ops
    delegation = exporters.litert_delegation(path)
    if quantization != "dynamic_int8":  # its int8 weights: XNNPACK's choice by version
        assert delegation["partitions"] == 1 and delegation["outside"] == {}, delegation
    report = exporters.verify_tflite(model, path, inputs)
    scale = max(np.abs(exporters._logits_fn(model)[0](inputs).numpy()).max(), 1e-3)
    assert report["max_abs_logit_diff"] <= tolerance * scale, (report, scale)


def test_tflite_int8_tensor_types_and_int8_io(tmp_path, clip, truncated_i3d):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    model = truncated_i3d(CLASSES, frames=FRAMES, image_size=SIZE)
    rng = np.random.default_rng(3)
    train = tf.data.Dataset.from_tensor_slices(
        (rng.uniform(-1, 1, (6, FRAMES, SIZE, SIZE, 3)).astype("float32"), np.zeros(6))
    ).batch(3)
    paths = {io: exporters.export_tflite(model, tmp_path / f"int8_{io}.tflite",
                                         quantization="int8", representative_dataset=train,
                                         int8_io=io)
             for io in (False, True)}
    logits = {}
    for io, path in paths.items():
        interpreter = exporters.litert_interpreter(path)
        (detail,) = interpreter.get_input_details()
        (out,) = interpreter.get_output_details()
        expected = np.int8 if io else np.float32
        assert detail["dtype"] == expected and out["dtype"] == expected
        tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
        convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
        assert convs
        for op in convs:  # int8 activations and weights, int32 biases
            x, w, b = (tensors[i]["dtype"] for i in op["inputs"])
            assert (x, w, b, tensors[op["outputs"][0]]["dtype"]) == (
                np.int8, np.int8, np.int32, np.int8)
        logits[io] = exporters.run_litert(interpreter, {"rgb": clip["rgb"]})
    # The same integer computation: int8 output is the float output rounded
    # to the logits' quantisation step.
    step = exporters.litert_interpreter(paths[True]).get_output_details()[0]["quantization"][0]
    np.testing.assert_allclose(logits[True], logits[False], atol=1.01 * step)


def _video_folder(folder, count=2, frames=12):
    from i3d_keras.data import video  # noqa: PLC0415

    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(count):
        video.write_video(folder / f"v{i}.avi",
                          rng.integers(0, 256, (frames, 40, 48, 3), dtype=np.uint8))
    return folder


def test_tflite_int8_calibrated_on_a_folder_of_videos_by_the_tool(tmp_path, truncated_i3d):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    model = truncated_i3d(CLASSES, frames=FRAMES, image_size=SIZE)
    keras_file = tmp_path / "rgb.keras"
    model.save(keras_file)
    videos = _video_folder(tmp_path / "videos")
    tool = Path(__file__).resolve().parents[2] / "tools" / "export.py"
    output = tmp_path / "rgb_int8.tflite"
    run = subprocess.run([sys.executable, str(tool), "--format", "tflite", "--rgb_model",
                          str(keras_file), "--quantization", "int8", "--calibration_data",
                          str(videos), "--calibration_clips", "3", "--output", str(output)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "XNNPACK partitions: 1, operators outside XNNPACK: none" in run.stdout
    arena = litert_memory.litert_memory(output)["arena_mb"]
    assert f"; activation arena {arena:.1f} MB" in run.stdout
    interpreter = exporters.litert_interpreter(output)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32  # float in, float out
    assert json.loads(run.stdout.strip().splitlines()[-1])["top1_agreement"] in (0.0, 1.0)
    # Bad input: a usage error before any model loads, the file left alone.
    empty = tmp_path / "empty"
    empty.mkdir()
    for flags, message in (
            (["--calibration_data", str(empty)],
             "Expected at least one calibration clip. Received: 0 clips from"),
            ([], "--quantization int8 needs --calibration_data"),
            (["--calibration_data", str(tmp_path / "missing")], "no such folder")):
        bad = subprocess.run([sys.executable, str(tool), "--format", "tflite", "--rgb_model",
                              str(keras_file), "--quantization", "int8", "--output",
                              str(tmp_path / "bad.tflite"), *flags],
                             capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path / "bad.tflite").exists()


def test_tflite_bad_calibration_data_is_a_clear_error(tmp_path, truncated_i3d):
    model = truncated_i3d(CLASSES, frames=FRAMES, image_size=SIZE)
    out = tmp_path / "x.tflite"
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, FRAMES, SIZE, SIZE, 3), "float32"))
    with pytest.raises(exporters.ExportError,
                       match="Expected at least one calibration clip. Received: 0 clips from"):
        exporters.export_tflite(model, out, quantization="int8", representative_dataset=empty)
    (tmp_path / "no_videos").mkdir()
    with pytest.raises(exporters.ExportError, match="Received: 0 clips from '.*no_videos'"):
        exporters.export_tflite(model, out, quantization="int8",
                                representative_dataset=tmp_path / "no_videos")
    with pytest.raises(exporters.ExportError, match=r"Received: shape=\(4, 16, 16, 3\)"):
        exporters.export_tflite(model, out, quantization="int8",
                                representative_dataset=[np.zeros((4, 16, 16, 3))])
    with pytest.raises(exporters.ExportError, match="Received: representative_dataset=None"):
        exporters.export_tflite(model, out, quantization="int8")
    with pytest.raises(exporters.ExportError, match="Received: quantization='float16'"):
        exporters.export_tflite(model, out, quantization="float16",
                                representative_dataset=[np.zeros((FRAMES, SIZE, SIZE, 3))])
    with pytest.raises(exporters.ExportError, match="Received: graph='5d'"):
        exporters.export_tflite(model, out, graph="5d")
    assert not out.exists()


@pytest.mark.parametrize("name", ["c3d", "two_stream_2d", "3d_fused", "convnet_pooling",
                                  "convnet_lstm"])
def test_comparison_architectures_export_whole_to_xnnpack(tmp_path, name, rng):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    from i3d_keras.models import baselines  # noqa: PLC0415

    # 3D-Fused with a narrow fusion conv (the paper's 512 x 2048 x 27 weights
    # only add conversion time).
    extra = {"fusion_filters": 16} if name == "3d_fused" else {}
    model = baselines.build_architecture(name, CLASSES, frames=FRAMES + 4, image_size=SIZE,
                                         **extra)
    path = exporters.export_tflite(model, tmp_path / f"{name}.tflite")
    delegation = exporters.litert_delegation(path)
    assert delegation["partitions"] == 1 and delegation["outside"] == {}, delegation
    inputs = {t.name.split(":")[0]: rng.uniform(-1, 1, (1, *t.shape[1:])).astype("float32")
              for t in model.inputs}
    report = exporters.verify_tflite(model, path, inputs)
    assert report["max_abs_logit_diff"] <= 1e-4 * max(
        np.abs(exporters._logits_fn(model)[0](inputs).numpy()).max(), 1.0), report


def test_i3d_exports_64_frame_clips_and_the_keras_graph(tmp_path, rng):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    model = i3d_keras.InceptionI3D(CLASSES, frames=None, image_size=SIZE)
    clip = {"rgb": rng.uniform(-1, 1, (1, 64, SIZE, SIZE, 3)).astype("float32")}
    path = exporters.export_tflite(model, tmp_path / "i3d_64.tflite", frames=64)
    assert exporters.litert_interpreter(path).get_input_details()[0]["shape"].tolist() == [
        1, 64, SIZE, SIZE, 3]
    assert exporters.litert_delegation(path)["partitions"] == 1
    assert exporters.verify_tflite(model, path, clip)["max_abs_logit_diff"] <= 1e-4
    # The Keras layers as they are (the conversion before the 4-D graph): the
    # same logits, in no fewer partitions.
    keras_path = exporters.export_tflite(model, tmp_path / "keras.tflite", frames=64,
                                         graph="keras")
    assert exporters.verify_tflite(model, keras_path, clip)["max_abs_logit_diff"] <= 1e-4
    assert (exporters.litert_delegation(keras_path)["partitions"]
            >= exporters.litert_delegation(path)["partitions"])


def test_int8_frames_over_224_pixels_run_whole_in_xnnpack(tmp_path, rng):
    """At 256 pixels I3D's 7 x 7 head average no longer covers the map: it is
    a depthwise convolution, which XNNPACK runs in int8 (no AVERAGE_POOL_2D)."""
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    model = i3d_keras.InceptionI3D(CLASSES, frames=None, image_size=None)
    clips = [rng.uniform(-1, 1, (4, 256, 256, 3)).astype("float32") for _ in range(2)]
    path = exporters.export_tflite(model, tmp_path / "int8_256.tflite", frames=4,
                                   image_size=256, quantization="int8",
                                   representative_dataset=clips)
    assert "AVERAGE_POOL_2D" not in exporters.tflite_builtin_ops(path)
    assert exporters.litert_delegation(path)["partitions"] == 1
    clip = {"rgb": clips[0][None]}
    assert np.isfinite(exporters.run_litert(exporters.litert_interpreter(path), clip)).all()
    # The same head in float32: the model's logits.
    floats = exporters.export_tflite(model, tmp_path / "f32_256.tflite", frames=4,
                                     image_size=256)
    scale = max(np.abs(exporters._logits_fn(model)[0](clip).numpy()).max(), 1e-3)
    assert exporters.verify_tflite(model, floats, clip)["max_abs_logit_diff"] <= 1e-4 * scale


def test_a_model_fixed_to_one_clip_shape_exports_for_another(streams, tmp_path, rng):
    """A model trained on 4 x 32 x 32 clips (its input fixed to them) exports
    LiteRT files and SavedModels for other clips: the same weights, rebuilt."""
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    model = streams["rgb"]
    assert model.inputs[0].shape == (None, FRAMES, SIZE, SIZE, 3)
    path = exporters.export_tflite(model, tmp_path / "long.tflite", frames=2 * FRAMES,
                                   image_size=48)
    clip = {"rgb": rng.uniform(-1, 1, (1, 2 * FRAMES, 48, 48, 3)).astype("float32")}
    assert exporters.verify_tflite(model, path, clip)["max_abs_logit_diff"] <= 1e-4
    saved = exporters.export_saved_model(model, tmp_path / "sm", "i3d", image_size=48)
    signature = tf.saved_model.load(str(saved)).signatures["preprocessed"]
    # Any clip length: a whole video classified at once, as by the Keras model.
    assert signature.structured_input_signature[1]["rgb"].shape.as_list() == [
        None, None, 48, 48, 3]
    for frames in (FRAMES, 3 * FRAMES):
        long_clip = rng.uniform(-1, 1, (1, frames, 48, 48, 3)).astype("float32")
        served = signature(rgb=tf.constant(long_clip))["logits"].numpy()
        rebuilt = exporters._for_clips(model, frames, 48, 48)
        np.testing.assert_allclose(served, rebuilt(long_clip), atol=1e-4)


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
