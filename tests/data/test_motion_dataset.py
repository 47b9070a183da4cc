"""Tests for i3d_keras.data.motion_dataset (procedural classes that differ only in time)."""

import numpy as np
import pytest

from i3d_keras.data import input_pipeline, records
from i3d_keras.data import motion_dataset as md


def test_shapes_balance_and_determinism():
    a = md.generate_motion_clips(40, seed=3, with_flow=True)
    assert a.frames.shape == (40, md.DEFAULT_NUM_FRAMES, md.DEFAULT_SIZE, md.DEFAULT_SIZE, 3)
    assert a.frames.dtype == np.uint8 and a.labels.dtype == np.int32
    assert a.flow.shape == (40, md.DEFAULT_NUM_FRAMES, 32, 32, 2) and np.abs(a.flow).max() <= 1.0
    np.testing.assert_array_equal(np.bincount(a.labels), [4] * 10)
    b = md.generate_motion_clips(40, seed=3, with_flow=True)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.flow, b.flow)
    c = md.generate_motion_clips(40, seed=4)
    assert not np.array_equal(a.frames, c.frames)
    assert md.generate_motion_clips(3, num_frames=8, size=48).frames.shape == (3, 8, 48, 48, 3)
    with pytest.raises(ValueError, match="num_frames"):
        md.generate_motion_clips(2, num_frames=1)


def test_reversed_classes_are_exact_time_reversals():
    """Odd classes are their pair's generator played backwards, so the frames of
    a clip (as a multiset) cannot tell the two classes of a pair apart."""
    forward = md._sample_states(np.random.default_rng(5), np.array([0, 2, 4, 6, 8]), 16, 32)
    backward = md._sample_states(np.random.default_rng(5), np.array([1, 3, 5, 7, 9]), 16, 32)
    for key in forward:
        np.testing.assert_array_equal(backward[key], forward[key][:, ::-1])
    # Rendered: same static content, so time-averaged frames agree up to noise
    # while frame-by-frame the clips differ.
    fr_f, _ = md._render_chunk(np.random.default_rng(1), forward, 32, False)
    fr_b, _ = md._render_chunk(np.random.default_rng(1), backward, 32, False)
    mean_gap = np.abs(fr_f.astype(float).mean(1) - fr_b.astype(float).mean(1)).mean()
    frame_gap = np.abs(fr_f.astype(float) - fr_b.astype(float)).mean()
    assert mean_gap < 3.0 and frame_gap > 2 * mean_gap


def test_analytic_flow_matches_the_motion():
    clips = md.generate_motion_clips(50, seed=0, with_flow=True)
    yy, xx = np.mgrid[0:32, 0:32] + 0.5

    def moving(i):
        f = clips.flow[i, :-1]
        return f[np.abs(f).sum(-1) > 1e-3]  # float round-off is not motion

    for i, label in enumerate(clips.labels):
        name = md.CLASSES[label]
        f = moving(i)
        if name.startswith("move"):
            axis = 0 if name in ("move_left", "move_right") else 1
            sign = -1 if name in ("move_left", "move_up") else 1
            assert sign * f[:, axis].mean() > 0.01, name
        elif name in ("square_then_disc", "disc_then_square"):
            assert len(f) == 0  # appearance change only, no motion
        elif name.startswith("rotate"):
            fl = clips.flow[i, 0]
            mask = np.abs(fl).sum(-1) > 1e-3
            # Curl sign around the object's centre: clockwise on screen (y down) > 0.
            cx, cy = xx[mask].mean(), yy[mask].mean()
            curl = ((xx[mask] - cx) * fl[mask][:, 1] - (yy[mask] - cy) * fl[mask][:, 0]).mean()
            assert (curl > 0) == (name == "rotate_clockwise"), name


def test_dis_flow_option_runs():
    clips = md.generate_motion_clips(2, num_frames=4, seed=0, with_flow=True, flow_method="dis")
    assert clips.flow.shape == (2, 4, 32, 32, 2)
    with pytest.raises(ValueError, match="flow_method"):
        md.generate_motion_clips(2, with_flow=True, flow_method="magic")


def test_records_use_the_real_dataset_format(tmp_path):
    meta_path = md.write_motion_dataset(tmp_path, num_train=20, num_val=10, seed=1,
                                        clips_per_shard=8)
    meta = records.read_metadata(meta_path)
    assert meta["classes"] == list(md.CLASSES) and meta["counts"] == {"train": 20, "val": 10}
    assert meta["flow"]["method"] == "analytic"
    shards = sorted(tmp_path.glob("motion_train-*.tfrecord"))
    assert len(shards) == 3
    got = records.read_examples(shards, with_rgb=True, with_flow=True)
    t = md.DEFAULT_NUM_FRAMES  # the training recipe's clip length
    assert t == 8 and meta["preprocessing"]["num_frames"] == t
    assert len(got) == 20 and got[0]["rgb"].shape == (t, 32, 32, 3)
    assert got[0]["flow"].shape == (t, 32, 32, 2)
    ds = input_pipeline.load_split(tmp_path, "train", modality="both", num_frames=t,
                                   crop_size=None, flip=False, batch_size=4)
    x, y = next(iter(ds))
    assert x["rgb"].shape == (4, t, 32, 32, 3) and x["flow"].shape == (4, t, 32, 32, 2)
    val = input_pipeline.load_split(tmp_path, "val", num_frames=t, crop_size=None,
                                    batch_size=5)
    assert sum(int(y.shape[0]) for _, y in val) == 10


def test_motion_datasets_ready_for_fit():
    train, val = md.motion_datasets(num_train=30, num_val=12, batch_size=8, seed=0)
    x, y = next(iter(train))
    assert x.shape == (8, md.DEFAULT_NUM_FRAMES, 32, 32, 3) and x.dtype == np.float32
    assert -1.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert y.dtype == np.int32
    assert sum(1 for _ in train) == 3  # 30 // 8, last partial batch dropped
    assert sum(int(y.shape[0]) for _, y in val) == 12
    two, _ = md.motion_datasets(num_train=8, num_val=4, batch_size=4, modality="both",
                                label_mode="one_hot")
    x, y = next(iter(two))
    assert set(x) == {"rgb", "flow"} and y.shape == (4, 10)
