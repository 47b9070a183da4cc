"""Tests for i3d_keras.export.litert_metadata: what a LiteRT file keeps besides its graph."""

import numpy as np
import pytest

import i3d_keras
from i3d_keras.export import exporters, litert_metadata

SIZE, FRAMES, CLASSES = 32, 4, 3
NAMES = ["archery", "bowling", "cooking"]


@pytest.fixture(scope="module")
def rgb_model():
    return i3d_keras.InceptionI3D(CLASSES, frames=FRAMES, image_size=SIZE)


def test_export_keeps_names_streams_and_clip_shape(rgb_model, tmp_path):
    path = exporters.export_tflite(rgb_model, tmp_path / "rgb.tflite", class_names=NAMES)
    meta = litert_metadata.read_metadata(path)
    assert meta["class_names"] == NAMES and meta["num_classes"] == CLASSES
    assert meta["streams"] == ["rgb"] and meta["frames"] == FRAMES
    assert meta["image_size"] == [SIZE, SIZE] and meta["quantization"] == "float32"
    # Without names the rest is kept; the converter's own metadata stays beside.
    bare = exporters.export_tflite(rgb_model, tmp_path / "bare.tflite")
    assert litert_metadata.read_metadata(bare)["class_names"] is None
    with pytest.raises(exporters.ExportError, match="Expected 3 class names.*Received: 2"):
        exporters.export_tflite(rgb_model, tmp_path / "two.tflite", class_names=NAMES[:2])
    assert not (tmp_path / "two.tflite").exists()


def test_metadata_changes_nothing_the_interpreter_computes(rgb_model, tmp_path, rng):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    path = exporters.export_tflite(rgb_model, tmp_path / "rgb.tflite")
    flatbuffer = path.read_bytes()
    again = litert_metadata.add_metadata(flatbuffer, {"class_names": ["a", "b", "c"]})
    (tmp_path / "again.tflite").write_bytes(again)
    # Replaced, not added twice; other entries (the converter's) kept.
    assert litert_metadata.read_metadata(tmp_path / "again.tflite")["class_names"] == [
        "a", "b", "c"]
    clip = {"rgb": rng.uniform(-1, 1, (1, FRAMES, SIZE, SIZE, 3)).astype("float32")}
    np.testing.assert_array_equal(
        exporters.run_litert(exporters.litert_interpreter(path), clip),
        exporters.run_litert(exporters.litert_interpreter(tmp_path / "again.tflite"), clip))


def test_files_without_or_with_broken_metadata(tmp_path):
    assert litert_metadata.read_metadata(_bare_litert_file(tmp_path)) is None
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError, match=r"Expected a LiteRT \(.tflite\) file"):
        litert_metadata.read_metadata(junk)


def _bare_litert_file(tmp_path):
    """A LiteRT file straight from TensorFlow's converter (no i3d_keras entry)."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    inputs = keras.Input((4,), batch_size=1)
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "plain.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path
