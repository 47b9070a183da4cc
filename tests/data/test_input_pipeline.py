"""Tests for i3d_keras.data.input_pipeline (tf.data from shards and from video files)."""

import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.data import input_pipeline as ip
from i3d_keras.data import records
from i3d_keras.data.video import write_video

T, H, W = 10, 20, 28


def _video(label, t=T):
    """Frame i has red = 20 * i and a left-to-right green ramp; flow x = +0.5,
    flow y = i / 20, so crops, flips and frame alignment can be checked."""
    frames = np.zeros((t, H, W, 3), np.uint8)
    frames[..., 0] = (np.arange(t) * 20)[:, None, None]
    frames[..., 1] = np.linspace(0, 250, W, dtype=np.uint8)[None, None, :]
    frames[..., 2] = 40 * label
    flow = np.zeros((t, H, W, 2), np.float32)
    flow[..., 0] = 0.5
    flow[..., 1] = (np.arange(t) / 20.0)[:, None, None]
    return frames, flow


@pytest.fixture
def shards(tmp_path):
    examples = []
    for i in range(6):
        frames, flow = _video(i % 3, t=T if i != 5 else 4)  # one short video (looped)
        examples.append(records.video_to_example(frames, i % 3, f"c{i % 3}", f"v{i}",
                                                 flow=flow, flow_method="dis",
                                                 jpeg_quality=100))
    return [str(p) for p in records.write_shards(examples, tmp_path, "toy_train", 3)]


def _frame_index(rgb):
    """Recovers frame indices from the red channel of [.., N, h, w, 3] in [-1, 1]."""
    red = (rgb[..., 0].mean(axis=(-1, -2)) + 1) * 127.5
    return np.round(red / 20).astype(int)


def test_training_both_streams_aligned(shards):
    ds = ip.build_dataset(shards, training=True, modality="both", num_frames=8, crop_size=16,
                          batch_size=2, seed=0)
    spec = ds.element_spec
    assert spec[0]["rgb"].shape.as_list() == [2, 8, 16, 16, 3]
    assert spec[0]["flow"].shape.as_list() == [2, 8, 16, 16, 2]
    seen_flips = set()
    for x, y in ds.repeat(4):
        rgb, flow = x["rgb"].numpy(), x["flow"].numpy()
        assert -1.0 <= rgb.min() and rgb.max() <= 1.0 and y.dtype == tf.int32
        idx = _frame_index(rgb)
        np.testing.assert_allclose(flow[..., 1].mean(axis=(-1, -2)), idx / 20.0, atol=0.01)
        for b in range(2):
            diffs = np.diff(idx[b]) % T
            assert set(diffs) <= {1} or idx[b].max() < 4  # contiguous or looped short video
            ramp_right = rgb[b, 0, 0, -1, 1] > rgb[b, 0, 0, 0, 1]
            flipped = not ramp_right
            seen_flips.add(flipped)
            # A flipped clip has its flow x negated: streams flip together.
            np.testing.assert_allclose(flow[b, ..., 0], -0.5 if flipped else 0.5, atol=0.01)
    assert seen_flips == {True, False}


def test_loops_short_videos(tmp_path):
    frames, _ = _video(0, t=4)
    path = records.write_shards([records.video_to_example(frames, 0, jpeg_quality=100)],
                                tmp_path, "s", 1)
    ds = ip.build_dataset([str(path[0])], training=False, num_frames=8, crop_size=16,
                          batch_size=1)
    x, _ = next(iter(ds))
    np.testing.assert_array_equal(_frame_index(x.numpy())[0], [0, 1, 2, 3, 0, 1, 2, 3])


def test_eval_modes_and_labels(shards):
    center = ip.build_dataset(shards, training=False, modality="flow", num_frames=4,
                              crop_size=16, batch_size=3)
    x, y = next(iter(center))
    assert x.shape == (3, 4, 16, 16, 2)
    a = [y.numpy() for _, y in center]
    b = [y.numpy() for _, y in center]
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))  # deterministic
    uniform = ip.build_dataset(shards, training=False, num_frames=4, crop_size=16,
                               batch_size=2, eval_sampling="uniform", num_clips=3,
                               label_mode="one_hot", num_classes=3)
    x, y = next(iter(uniform))
    assert x.shape == (2, 3, 4, 16, 16, 3) and y.shape == (2, 3) and y.dtype == tf.float32
    whole = ip.build_dataset(shards, training=False, num_frames=4, crop_size=None,
                             batch_size=1, eval_sampling="all")
    lengths = sorted(int(x.shape[1]) for x, _ in whole)
    assert lengths == [4, T, T, T, T, T]
    assert next(iter(whole))[0].shape[2:] == (H, W, 3)


def test_seeded_training_is_reproducible(shards):
    def run():
        ds = ip.build_dataset(shards, training=True, num_frames=4, crop_size=16, batch_size=2,
                              seed=7)
        return [x.numpy() for x, _ in ds]
    a, b = run(), run()
    assert len(a) == 3 and all(np.array_equal(u, v) for u, v in zip(a, b))


def test_bad_arguments_and_files(shards, tmp_path):
    with pytest.raises(FileNotFoundError, match="No TFRecord shards"):
        ip.build_dataset(str(tmp_path / "nothing-*.tfrecord"), training=True)
    with pytest.raises(ValueError, match="modality"):
        ip.build_dataset(shards, training=True, modality="depth")
    with pytest.raises(ValueError, match="num_classes"):
        ip.build_dataset(shards, training=True, label_mode="one_hot")
    with pytest.raises(ValueError, match="batch_size=1"):
        ip.build_dataset(shards, training=False, eval_sampling="all", batch_size=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the crop"):
        next(iter(ip.build_dataset(shards, training=False, crop_size=224, num_frames=2)))
    data = bytearray(open(shards[0], "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(data))
    with pytest.raises(records.CorruptShardError, match="bad.tfrecord"):
        ip.build_dataset([str(bad)], training=False, verify=True)


def test_load_split_uses_metadata(shards, tmp_path):
    records.write_metadata(tmp_path, "toy", {
        "classes": ["c0", "c1", "c2"], "num_classes": 3,
        "splits": {"train": {"file_pattern": records.shard_pattern("toy_train")}}})
    ds = ip.load_split(tmp_path, "train", num_frames=4, crop_size=16, batch_size=2,
                       label_mode="one_hot")
    x, y = next(iter(ds))
    assert x.shape == (2, 4, 16, 16, 3) and y.shape == (2, 3)
    with pytest.raises(ValueError, match="Split"):
        ip.load_split(tmp_path, "test")


def test_video_files_dataset(tmp_path):
    paths = []
    for i in range(3):
        frames, _ = _video(i)
        paths.append(write_video(tmp_path / f"v{i}.avi", frames, fps=25))
    (tmp_path / "bad.mp4").write_bytes(b"bad" * 10)
    ds = ip.video_files_dataset(paths + [tmp_path / "bad.mp4"], [0, 1, 2, 0], training=True,
                                modality="both", num_frames=6, crop_size=16, batch_size=1,
                                short_side=None, seed=0)
    batches = list(ds)
    assert len(batches) == 3  # the bad video is skipped
    x, y = batches[0]
    assert x["rgb"].shape == (1, 6, 16, 16, 3) and x["flow"].shape == (1, 6, 16, 16, 2)
    with pytest.raises(ValueError, match="same length"):
        ip.video_files_dataset(paths, [0], training=True)
