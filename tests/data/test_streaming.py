"""Tests of i3d_keras.data.streaming: videos read as the work needs them."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from i3d_keras.data import flow as flow_lib
from i3d_keras.data import streaming, video
from i3d_keras.tasks import inference

ROOT = Path(__file__).resolve().parents[2]


def moving_square(frames, size=(48, 64), seed=0):
    """A bright square moving right over noise: real motion for the flow."""
    rng = np.random.default_rng(seed)
    clip = rng.integers(0, 60, (frames, *size, 3), dtype=np.uint8)
    for t in range(frames):
        x = (4 + 2 * t) % (size[1] - 12)
        clip[t, 10:22, x:x + 12] = (250, 200, 20)
    return clip


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("videos") / "square.avi"
    return video.write_video(path, moving_square(30), fps=30)  # resampled to 25 fps


def test_windows_are_extract_features_windows():
    for n in range(0, 14):
        for window in range(1, 6):
            for stride in range(1, 8):
                got = list(streaming.sliding_windows(range(n), window, stride))
                assert [s for s, _ in got] == (inference.window_starts(n, window, stride)
                                               if n else [])
                for start, items in got:  # looped when the stream is shorter than a window
                    assert items == [(start + i) % n for i in range(window)]
    with pytest.raises(ValueError, match="Received: stride=0"):
        list(streaming.sliding_windows(range(3), 2, 0))


def test_a_stream_gives_the_frames_read_video_gives(clip_file):
    stream = streaming.VideoStream(clip_file, fps=25, short_side=40)
    streamed = np.stack(list(stream))
    np.testing.assert_array_equal(streamed, video.read_video(clip_file, fps=25, short_side=40))
    assert stream.frames_read == len(streamed) == 25 and stream.broken is None
    assert stream.source_fps == pytest.approx(30) and stream.duration == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="read once"):
        next(iter(stream))


def test_flow_fields_are_compute_flow(clip_file):
    frames = video.read_video(clip_file, fps=25, short_side=48)
    streamed = np.stack(list(streaming.flow_fields(iter(frames), "dis")))
    np.testing.assert_allclose(streamed, flow_lib.compute_flow(frames, "dis"), atol=1e-6)
    one = np.stack(list(streaming.flow_fields(iter(frames[:1]), "dis")))
    np.testing.assert_array_equal(one, flow_lib.compute_flow(frames[:1], "dis"))
    assert list(streaming.flow_fields(iter([]), "dis")) == []


def test_streamed_features_equal_the_in_memory_ones(clip_file):
    import i3d_keras

    models = {s: i3d_keras.InceptionI3D(3, s, frames=None, image_size=32) for s in
              ("rgb", "flow")}
    feature_models = {s: i3d_keras.endpoint_model(m, "Mixed_5c") for s, m in models.items()}
    calls = {s: (lambda x, m=m: inference.tf.reduce_mean(m(x, training=False), axis=[1, 2, 3]))
             for s, m in feature_models.items()}
    inputs = inference.load_video_inputs(clip_file, ("rgb", "flow"), image_size=32,
                                         flow_method="dis", short_side=40)
    for window, stride in ((8, 4), (8, 8), (4, 9), (64, None)):
        expected = inference._video_features(inputs, calls, window, stride, 3)  # noqa: SLF001
        got, broken = inference.stream_features(clip_file, calls, window=window, stride=stride,
                                                batch_size=3, image_size=32, flow_method="dis",
                                                short_side=40)
        assert broken is None and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_video_that_breaks_in_the_middle_keeps_what_came_before(tmp_path):
    whole = video.write_video(tmp_path / "whole.avi", moving_square(100), fps=25)
    data = whole.read_bytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(data[: len(data) // 2])  # cut in the middle: the index is lost too
    stream = streaming.VideoStream(broken, short_side=None)
    frames = list(stream)
    assert 20 <= len(frames) <= 60
    assert stream.broken and "the video broke at 0:0" in stream.broken
    assert "of the 100 its header claims" in stream.broken
    # Every frame before the break is intact (the one at the cut may be half a frame).
    np.testing.assert_array_equal(np.stack(frames[:-1]),
                                  video.read_video(whole, short_side=None)[:len(frames) - 1])
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(video.VideoDecodeError, match="file is empty"):
        list(streaming.VideoStream(empty))


def test_live_sources_and_one_that_cannot_be_opened():
    assert streaming.is_live_source(0) and streaming.is_live_source("1")
    assert streaming.is_live_source("rtsp://127.0.0.1:1/x")
    assert not streaming.is_live_source("clip.mp4")
    with pytest.raises(video.VideoDecodeError, match="cannot open the stream"):
        list(streaming.VideoStream("http://127.0.0.1:9/none.mp4"))


_PEAK = textwrap.dedent("""
    import resource, sys
    import tensorflow as tf
    from i3d_keras.tasks import inference
    calls = {"rgb": lambda x: tf.reduce_mean(x, axis=[1, 2, 3])[:, None]}
    features, broken = inference.stream_features(sys.argv[1], calls, window=32, stride=16,
                                                 batch_size=2)
    print(features.shape[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_peak_memory_does_not_grow_with_the_video(tmp_path):
    """A 2-minute video streams in the memory of a 12-second one (in a child
    process, whose peak is its own)."""
    def write(name, seconds):
        path = tmp_path / name
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        import cv2

        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (128, 96))
        for t in range(25 * seconds):
            writer.write(np.roll(base, t, axis=1))
        writer.release()
        return path

    peaks = {}
    for name, seconds in (("short.avi", 12), ("long.avi", 120)):
        run = subprocess.run([sys.executable, "-c", _PEAK, str(write(name, seconds))],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        windows, peak_kb = map(int, run.stdout.split()[-2:])
        assert windows == (25 * seconds - 32) // 16 + 1
        peaks[name] = peak_kb / 1024
    print(f"peak RSS (MB): {peaks}")    # Holding the long video would take 3000 x 341x256x3 = 785 MB more.
    assert peaks["long.avi"] <= 1.3 * peaks["short.avi"] + 100, peaks
