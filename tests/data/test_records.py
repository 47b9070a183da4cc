"""Tests for i3d_keras.data.records (SequenceExample shards, metadata)."""

import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.data import preprocessing, records


def _video(t=5, h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w, dtype=np.float32)[None, None, :, None]
    frames = np.clip(base + rng.normal(0, 5, (t, h, w, 3)), 0, 255).astype(np.uint8)
    flow = rng.uniform(-1, 1, (t, h, w, 2)).astype(np.float32)
    return frames, flow


def _write(tmp_path, flow_format="png", n=3):
    examples = []
    for i in range(n):
        frames, flow = _video(seed=i)
        examples.append(records.video_to_example(
            frames, i % 2, f"class{i % 2}", f"vid{i}", 25.0, flow=flow, split="train",
            flow_method="dis", flow_format=flow_format))
    return records.write_shards(examples, tmp_path, "toy_train", 2)


def test_roundtrip_rgb_and_png_flow(tmp_path):
    frames, flow = _video(seed=0)
    paths = _write(tmp_path)
    assert [p.name for p in paths] == ["toy_train-00000-of-00002.tfrecord",
                                       "toy_train-00001-of-00002.tfrecord"]
    got = records.read_examples(paths, with_rgb=True, with_flow=True)
    assert len(got) == 3
    first = next(g for g in got if g["video_id"] == b"vid0")
    assert first["label"] == 0 and first["label_name"] == b"class0"
    assert first["split"] == b"train" and first["flow_method"] == b"dis"
    assert (first["num_frames"], first["height"], first["width"]) == (5, 24, 32)
    assert first["fps"] == pytest.approx(25.0)
    assert first["rgb"].shape == (5, 24, 32, 3) and first["rgb"].dtype == np.uint8
    assert np.abs(first["rgb"].astype(float) - frames).mean() < 4  # JPEG q90
    assert first["flow"].shape == (5, 24, 32, 2) and first["flow"].dtype == np.float32
    # PNG is lossless: only the documented quantisation error remains.
    assert np.abs(first["flow"] - flow).max() <= preprocessing.FLOW_QUANT_MAX_ERROR + 1e-6


def test_jpeg_flow_is_lossier_but_bounded(tmp_path):
    frames, _ = _video(seed=0)
    yy, xx = np.mgrid[0:24, 0:32]
    flow = np.stack([np.sin(xx / 5.0), np.cos(yy / 7.0)], -1)[None].repeat(5, 0) * 0.5
    ex = records.video_to_example(frames, 0, "a", "v", flow=flow.astype(np.float32),
                                  flow_format="jpeg")
    paths = records.write_shards([ex], tmp_path, "j", 1)
    got = records.read_examples(paths, with_flow=True)[0]["flow"]
    err = np.abs(got - flow)
    assert err.mean() < 0.01 and err.max() < 0.1  # ~0.2 px mean, < 2 px max


def test_flow_image_channels_are_x_in_red_y_in_green():
    import cv2

    flow = np.zeros((2, 3, 2), np.float32)
    flow[..., 0], flow[..., 1] = 0.5, -0.5
    img = cv2.imdecode(np.frombuffer(records.encode_flow_image(flow), np.uint8),
                       cv2.IMREAD_COLOR)  # BGR
    assert (img[..., 2] == round(0.5 * 127) + 128).all()
    assert (img[..., 1] == round(-0.5 * 127) + 128).all()
    assert (img[..., 0] == 0).all()


def test_parse_decodes_in_graph(tmp_path):
    paths = _write(tmp_path, n=2)
    ds = tf.data.TFRecordDataset([str(p) for p in paths]).map(
        lambda s: records.parse_and_decode(s, True, True))
    spec = ds.element_spec
    assert spec["rgb"].shape.as_list() == [None, None, None, 3]
    assert spec["flow"].shape.as_list() == [None, None, None, 2]
    parsed = next(iter(tf.data.TFRecordDataset(str(paths[0])).map(
        records.parse_sequence_example)))
    assert parsed["rgb"].dtype == tf.string and "flow" not in parsed


def test_rgb_only_records_have_no_flow_method(tmp_path):
    frames, _ = _video()
    ex = records.video_to_example(frames, 1, "b", "v", flow_method="dis")
    got = records.read_examples(records.write_shards([ex], tmp_path, "r", 1))[0]
    assert got["flow_method"] == b"" and "flow" not in got


def test_shard_names_and_bad_arguments():
    assert records.shard_filename("ucf_train", 3, 10) == "ucf_train-00003-of-00010.tfrecord"
    with pytest.raises(ValueError, match="index"):
        records.shard_filename("x", 10, 10)
    frames, flow = _video()
    with pytest.raises(ValueError, match="aligned"):
        records.encode_video(frames, flow[:2])
    with pytest.raises(ValueError, match="uint8"):
        records.encode_video(frames.astype(np.float32))


def test_metadata_roundtrip(tmp_path):
    meta = {"classes": ["a", "b"], "counts": {"train": 3}}
    path = records.write_metadata(tmp_path, "toy", meta)
    assert path.name == "toy.metadata.json"
    assert records.read_metadata(path) == meta
    assert records.read_metadata(tmp_path) == meta
    with pytest.raises(FileNotFoundError):
        records.read_metadata(tmp_path / "nope.json")


def test_corrupt_and_truncated_shards_are_named(tmp_path):
    paths = _write(tmp_path)
    assert records.verify_shards(paths) == {str(paths[0]): 2, str(paths[1]): 1}
    data = bytearray(paths[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad-00000-of-00001.tfrecord"
    bad.write_bytes(bytes(data))
    with pytest.raises(records.CorruptShardError, match="bad-00000-of-00001") as info:
        records.verify_shards([paths[0], bad])
    assert "corrupt" in info.value.reason
    truncated = tmp_path / "trunc.tfrecord"
    truncated.write_bytes(paths[0].read_bytes()[:100])
    with pytest.raises(records.CorruptShardError, match="trunc.tfrecord"):
        records.verify_shards([truncated])
    with pytest.raises(records.CorruptShardError, match="does not exist"):
        records.verify_shards([tmp_path / "missing.tfrecord"])
