"""Tests for i3d_keras.data.video (OpenCV decoding, 25 fps, short side 256)."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from i3d_keras.data.video import VideoDecodeError, read_video, video_info, write_video


def _numbered_video(path, n, fps, h=32, w=48):
    """Frame i is a flat grey of value 8 * i, so decoded frames reveal their index."""
    frames = np.repeat((np.arange(n, dtype=np.uint8) * 8)[:, None, None, None], 3, 3)
    frames = np.broadcast_to(frames, (n, h, w, 3)).copy()
    return write_video(path, frames, fps=fps)


def _indices(frames):
    return np.round(frames[:, :, :, 0].mean(axis=(1, 2)) / 8).astype(int)


def test_downsamples_30fps_to_25_with_nearest_frames(tmp_path):
    path = _numbered_video(tmp_path / "v.avi", 30, 30)
    frames = read_video(path, short_side=None)
    assert frames.dtype == np.uint8 and frames.shape == (25, 32, 48, 3)
    expected = np.floor(np.arange(25) * 30 / 25 + 0.5).astype(int)
    np.testing.assert_array_equal(_indices(frames), expected)


def test_upsamples_low_fps_by_repeating(tmp_path):
    path = _numbered_video(tmp_path / "v.avi", 10, 10)
    frames = read_video(path, short_side=None)
    idx = _indices(frames)
    assert len(idx) == 24
    np.testing.assert_array_equal(idx[:6], [0, 0, 1, 1, 2, 2])


def test_short_side_resize_and_native_fps(tmp_path):
    path = _numbered_video(tmp_path / "v.mp4", 5, 25, h=40, w=60)
    assert read_video(path, short_side=20).shape == (5, 20, 30, 3)
    assert read_video(path, fps=None, short_side=None).shape == (5, 40, 60, 3)
    info = video_info(path)
    assert info["width"] == 60 and info["height"] == 40 and info["fps"] == pytest.approx(25)


def test_start_end_cut_and_outside_clip(tmp_path):
    path = _numbered_video(tmp_path / "v.avi", 25, 25)
    frames = read_video(path, short_side=None, start=0.4, end=0.6)
    np.testing.assert_array_equal(_indices(frames), [10, 11, 12, 13, 14])
    assert len(read_video(path, short_side=None, start=0.8, end=5.0)) == 5  # end truncated
    with pytest.raises(VideoDecodeError, match="outside the video"):
        read_video(path, start=3.0, end=4.0)
    with pytest.raises(VideoDecodeError, match="start < end"):
        read_video(path, start=0.5, end=0.5)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(VideoDecodeError, match="does not exist") as info:
        read_video(tmp_path / "missing.mp4")
    assert "missing.mp4" in str(info.value)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 50)
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    good = _numbered_video(tmp_path / "good.mp4", 20, 25)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(VideoDecodeError):
        read_video(truncated)
    with pytest.raises(VideoDecodeError, match="directory|regular file"):
        read_video(tmp_path)


def test_errors_survive_pickling_between_processes():
    err = pickle.loads(pickle.dumps(VideoDecodeError("a.mp4", "why")))
    assert err.path == "a.mp4" and err.reason == "why" and "a.mp4" in str(err)


def test_grayscale_source_gives_rgb(tmp_path):
    import cv2

    path = str(tmp_path / "gray.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 24), False)
    assert writer.isOpened()
    for i in range(4):
        writer.write(np.full((24, 32), 60 * i, np.uint8))
    writer.release()
    frames = read_video(path, short_side=None)
    assert frames.shape == (4, 24, 32, 3)
    assert np.abs(frames[..., 0].astype(int) - frames[..., 2]).max() <= 2


def test_shared_real_videos(shared_data):
    videos = shared_data / "videos"
    gif = read_video(videos / "v_CricketShot_g04_c01_rgb.gif")
    assert gif.shape == (79, 256, 256, 3)  # 25 fps GIF, 224 px upscaled to 256
    mp4 = read_video(videos / "arm_wrestling.mp4")  # 280 frames at 28 fps = 10 s
    assert mp4.shape == (250, 256, 340, 3)
    clip = read_video(videos / "cleaning_pool.mp4", start=1.0, end=2.0, short_side=128)
    assert clip.shape == (25, 128, 170, 3)


def test_file_names_that_are_not_utf8(tmp_path):
    """OpenCV crashed the process (a segmentation fault) on such a name, ending
    a whole batch; it is read and written through a link of a plain name."""
    import os
    import sys

    if sys.platform != "linux":
        pytest.skip("file names of arbitrary bytes are a Linux file system's")
    name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/clip\xff.mp4")
    written = _numbered_video(name, 5, 25)
    assert os.path.exists(os.fsencode(str(written)))
    frames = read_video(name, fps=None, short_side=None)
    assert frames.shape[0] == 5
    assert video_info(name)["width"] == 48
    assert not [p for p in os.listdir(os.path.dirname(__import__("tempfile").mkdtemp()))
                if p.startswith("i3d_keras-video-")]  # the links are gone


def test_find_videos_lists_and_binary_files(tmp_path):
    from i3d_keras.data.video import find_videos
    from i3d_keras.utils.outputs import OutputError

    (tmp_path / "v").mkdir()
    _numbered_video(tmp_path / "v" / "a.mp4", 2, 25)
    (tmp_path / "v" / "notes.md").write_text("not a video\n")
    listing = tmp_path / "list.lst"
    listing.write_text("v/a.mp4\n\n/abs/b.avi\n")
    assert find_videos([tmp_path / "v"]) == ([tmp_path / "v" / "a.mp4"], tmp_path / "v")
    assert find_videos([listing, "model.keras"]) == (
        [tmp_path / "v" / "a.mp4", Path("/abs/b.avi"), Path("model.keras")], None)
    # A binary file named .txt was read as 943,434 "videos" of garbage.
    blob = tmp_path / "blob.txt"
    blob.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(OutputError, match=r"--input '.*blob.txt' is a .txt file but not a "
                                          r"text list .* Received: a file of 1024 bytes"):
        find_videos([blob], what="--input")


def test_opencv_path_lets_the_callers_own_errors_through(tmp_path):
    import os

    from i3d_keras.data.video import opencv_path

    # An error raised in the block (even a UnicodeEncodeError) is the caller's,
    # not a reason to retry with a link.
    with pytest.raises(UnicodeEncodeError):
        with opencv_path(tmp_path / "clip.mp4"):
            "\udcff".encode("utf-8")
    if os.name == "posix":
        with pytest.raises(KeyError, match="mine"):
            with opencv_path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/clip\xff.mp4")) as name:
                assert os.path.basename(name) == "video.mp4"
                raise KeyError("mine")
