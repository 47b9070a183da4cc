"""Tests for i3d_keras.export.calibration: int8 calibration clips from videos and datasets.

The int8 files calibrated on them: tests/export/test_exporters.py.
"""

import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.data import video
from i3d_keras.export import calibration

SHAPES = {"rgb": (6, 32, 32, 3)}


@pytest.fixture
def video_folder(tmp_path):
    """Two short videos of moving gradients (a folder of videos, as users give)."""
    rng = np.random.default_rng(0)
    for name, frames in (("a.avi", 20), ("b.avi", 9)):
        clip = rng.integers(0, 256, (frames, 40, 56, 3), dtype=np.uint8)
        video.write_video(tmp_path / name, clip)
    (tmp_path / "notes.txt").write_text("not a video")
    return tmp_path


def test_clip_starts_spread_over_the_video():
    assert calibration.clip_starts(100, 16, 3) == [0, 28, 56]
    assert calibration.clip_starts(100, 16, 3, phase=0.5) == [14, 42, 70]
    assert calibration.clip_starts(10, 16, 2) == [0, 0]  # a short video is looped from 0
    assert max(calibration.clip_starts(50, 16, 7, phase=0.9)) <= 34


def test_clips_from_a_folder_of_videos(video_folder):
    clips = calibration.calibration_clips(video_folder, SHAPES, num_clips=5)
    assert len(clips) == 5  # 3 from the first video, 2 from the second
    for clip in clips:
        assert set(clip) == {"rgb"} and clip["rgb"].shape == (1, 6, 32, 32, 3)
        assert clip["rgb"].dtype == np.float32
        assert -1.0 <= clip["rgb"].min() and clip["rgb"].max() <= 1.0
    # Held-out clips (phase 0.5) lie between the calibration ones.
    held_out = calibration.video_calibration_clips(video_folder, SHAPES, 5, phase=0.5)
    assert not np.array_equal(held_out[0]["rgb"], clips[0]["rgb"])


def test_flow_clips_from_a_folder_of_videos(video_folder):
    shapes = {"rgb": (4, 32, 32, 3), "flow": (4, 32, 32, 2)}
    (clip,) = calibration.calibration_clips(video_folder, shapes, num_clips=1,
                                            flow_method="dis")
    assert clip["flow"].shape == (1, 4, 32, 32, 2) and clip["rgb"].shape == (1, 4, 32, 32, 3)
    assert np.abs(clip["flow"]).max() <= 1.0 and np.abs(clip["flow"]).max() > 0


def test_clips_from_a_tf_data_dataset_of_batches_with_labels(rng):
    x = rng.uniform(-1, 1, (10, 6, 32, 32, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.arange(10))).batch(4)
    clips = calibration.calibration_clips(dataset, SHAPES, num_clips=6)
    assert len(clips) == 6
    np.testing.assert_array_equal(clips[5]["rgb"][0], x[5])
    # Unbatched dict clips, from a function (the converter's representative_dataset).
    both = {"rgb": (6, 32, 32, 3), "flow": (6, 32, 32, 2)}
    dicts = tf.data.Dataset.from_tensor_slices(
        {"rgb": x, "flow": rng.uniform(-1, 1, (10, 6, 32, 32, 2)).astype("float32")})
    clips = calibration.calibration_clips(lambda: dicts, both, num_clips=3)
    assert len(clips) == 3 and clips[0]["flow"].shape == (1, 6, 32, 32, 2)


def test_clips_from_a_prepared_dataset_training_split(tmp_path):
    from i3d_keras.data import motion_dataset, records  # noqa: PLC0415

    folder = tmp_path / "motion"
    motion_dataset.write_motion_dataset(folder, num_train=12, num_val=4, num_frames=8, size=32)
    calibration.check_calibration_folder(folder)  # a dataset, not a folder of videos
    shapes = {"rgb": (6, 32, 32, 3), "flow": (6, 32, 32, 2)}
    clips = calibration.calibration_clips(folder, shapes, num_clips=5)
    assert len(clips) == 5 and clips[0]["flow"].shape == (1, 6, 32, 32, 2)
    # The training split's centre clips, in the shards' order: frames 1-6 of
    # each 8-frame video, scaled to [-1, 1] (by hand from the decoded records).
    shards = sorted(folder.glob("motion_train-*.tfrecord"))
    videos = records.read_examples(shards, with_rgb=True, with_flow=True)
    for clip, video in zip(clips, videos):
        np.testing.assert_allclose(clip["rgb"][0], video["rgb"][1:7] / 127.5 - 1.0, atol=1e-6)
        assert clip["flow"][0].shape == video["flow"][1:7].shape
    assert len(calibration.calibration_clips(folder, {"rgb": (6, 32, 32, 3)}, 50)) == 12
    rgb_only = tmp_path / "rgb_only"
    motion_dataset.write_motion_dataset(rgb_only, num_train=2, num_val=1, num_frames=8, size=32,
                                        with_flow=False)
    with pytest.raises(calibration.CalibrationError, match="prepared without flow"):
        calibration.calibration_clips(rgb_only, shapes)
    with pytest.raises(calibration.CalibrationError, match="prepared without flow"):
        calibration.check_calibration_folder(rgb_only, flow=True)  # before any work
    # A dataset of one split (folder per class: "all") calibrates on it; several
    # splits without "train", or several datasets in one folder, are refused.
    assert calibration.calibration_split({"splits": {"all": {}}}) == "all"
    with pytest.raises(calibration.CalibrationError, match=r"Received: splits \['test', 'val'\]"):
        calibration.calibration_split({"splits": {"val": {}, "test": {}}})
    motion_dataset.write_motion_dataset(rgb_only, num_train=2, num_val=1, num_frames=8, size=32,
                                        with_flow=False, name="other")
    with pytest.raises(calibration.CalibrationError, match="Expected one dataset"):
        calibration.check_calibration_folder(rgb_only)


def test_bad_calibration_data_says_what_is_wrong(tmp_path, rng):
    with pytest.raises(calibration.CalibrationError,
                       match=r"Expected at least one calibration clip\. Received: 0 clips from "
                             r"'.*' \(no video files"):
        calibration.calibration_clips(tmp_path, SHAPES)
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 6, 32, 32, 3), "float32"))
    with pytest.raises(calibration.CalibrationError,
                       match="Received: 0 clips from a tensorflow.*Dataset"):
        calibration.calibration_clips(empty, SHAPES)
    with pytest.raises(calibration.CalibrationError,
                       match=r"shape \(6, 32, 32, 3\) \(the exported clip\)\. Received: "
                             r"shape=\(8, 32, 32, 3\)"):
        calibration.calibration_clips([np.zeros((8, 32, 32, 3))], SHAPES)
    with pytest.raises(calibration.CalibrationError, match=r"Received: clips with \['rgb'\]"):
        calibration.calibration_clips([{"rgb": np.zeros((6, 32, 32, 3))}],
                                      {**SHAPES, "flow": (6, 32, 32, 2)})
    with pytest.raises(calibration.CalibrationError, match="Received: num_clips=0"):
        calibration.calibration_clips([np.zeros((6, 32, 32, 3))], SHAPES, num_clips=0)
    with pytest.raises(calibration.CalibrationError, match="not a folder"):
        calibration.calibration_clips(tmp_path / "missing", SHAPES)


def test_clips_from_the_shared_real_videos(shared_data):
    shapes = {"rgb": (16, 224, 224, 3)}
    clips = calibration.calibration_clips(shared_data / "videos", shapes, num_clips=4)
    # One clip from each of the four files (the cricket shot's flow GIF decodes as
    # a grey RGB video: what a folder holds is what calibrates).
    assert len(clips) == 4
    assert clips[0]["rgb"].std() > 0.3  # arm_wrestling.mp4: real footage, not a flat frame
