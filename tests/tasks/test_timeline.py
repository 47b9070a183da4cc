"""Tests of i3d_keras.tasks.timeline: window predictions as CSV, a PNG and a video."""

import csv

import numpy as np
import pytest

from i3d_keras.data import video
from i3d_keras.tasks import timeline

NAMES = ["walking", "running", "jumping", "clapping hands", "a rather long class name x"]


def fake_result(seconds, window=64, stride=32, fps=25.0, seed=0, name="clip.mp4"):
    """A `predict_windows` result of a video of `seconds`, with a 'running' event."""
    rng = np.random.default_rng(seed)
    windows = []
    for index, start in enumerate(range(0, int(seconds * fps) - window + 1, stride)):
        logits = rng.normal(size=len(NAMES))
        if 0.4 < start / (seconds * fps) < 0.6:
            logits[1] += 6  # "running" in the middle of the video
        probs = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(-probs)[:3]
        windows.append({"index": index, "start_frame": start, "end_frame": start + window,
                        "start": start / fps, "end": (start + window) / fps,
                        "top_k": [{"class": NAMES[i], "index": int(i),
                                   "probability": float(probs[i])} for i in order],
                        "probabilities": [float(p) for p in probs]})
    return {"video": name, "ok": True, "windows": windows}


def test_format_time():
    assert timeline.format_time(0) == "0:00"
    assert timeline.format_time(59.6) == "1:00"
    assert timeline.format_time(3600) == "1:00:00"
    assert timeline.format_time(61.25, tenths=True) == "1:01.2"


def test_csv_has_a_row_per_window_and_rank(tmp_path):
    result = fake_result(10)
    path = timeline.write_csv([result, {"video": "failed.mp4", "ok": False}],
                              tmp_path / "w.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(timeline.CSV_FIELDS)
    assert len(rows) == 3 * len(result["windows"])
    assert rows[0]["rank"] == "1" and float(rows[3]["start"]) == pytest.approx(32 / 25)
    assert rows[0]["class"] == result["windows"][0]["top_k"][0]["class"]


@pytest.mark.parametrize("seconds", [30, 3600])
def test_timeline_png_for_half_a_minute_and_an_hour(seconds, tmp_path):
    import matplotlib.image

    result = fake_result(seconds)
    assert timeline.timeline_classes(result, 2)[0] == 1  # the event's class comes first
    path = timeline.plot_timeline(result, tmp_path / "timeline.png")
    image = matplotlib.image.imread(path)
    assert image.shape[1] >= 1000 and image.shape[0] >= 200
    assert image[..., :3].std() > 0.05  # something is drawn
    with pytest.raises(ValueError, match="Received: 0 windows"):
        timeline.plot_timeline({"video": "x", "windows": []}, tmp_path / "none.png")


def test_annotated_video_has_the_input_rate_size_and_the_labels(tmp_path):
    frames = np.full((40, 72, 96, 3), 30, np.uint8)
    source = video.write_video(tmp_path / "in.avi", frames, fps=20)
    result = fake_result(2, window=16, stride=16, fps=25.0)  # windows up to 1.92 s
    out = timeline.annotate_video(source, result, tmp_path / "out.avi")
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(20)
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 72)
    cap.release()
    written = video.read_video(out, fps=None, short_side=None)
    assert len(written) == 40
    # Text is drawn in the top-left corner while a window covers the frame.
    assert written[5, :30, :80].max() > 150 and written[5, 50:, 80:].max() < 60
    assert written[39, :30, :80].max() < 60  # 1.95 s: after the last window
