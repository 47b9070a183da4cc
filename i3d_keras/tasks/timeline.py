"""What happens when: window predictions as a table, a picture and a video.

`inference.predict_windows` classifies a long video window by window; this
module shows the result: `write_csv` (a row per window and rank),
`plot_timeline` (the probabilities of the top classes over the video's time,
a heat map readable for 30 seconds and for an hour alike) and
`annotate_video` (the video with the current window's top classes drawn on
each frame, at the input's frame rate and size, as mmaction2's long-video
demo does). Every output is written atomically (`i3d_keras.utils.outputs`).

Example:

>>> result = predict_windows("match.mp4", predictor, window=64)  # doctest: +SKIP
>>> plot_timeline(result, "timeline.png")  # doctest: +SKIP
>>> annotate_video("match.mp4", result, "annotated.mp4")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from i3d_keras.utils import outputs, plotting

PathLike = Union[str, os.PathLike]

CSV_FIELDS = ("video", "window", "start", "end", "rank", "class", "index", "probability")


def format_time(seconds: float, hours: Optional[bool] = None, tenths: bool = False) -> str:
    """`"1:05"` (m:ss) or `"1:02:05"` (h:mm:ss when `hours`, or past an hour);
    with `tenths`, `"1:05.2"`.

    Example:

    >>> format_time(65), format_time(3725), format_time(5, hours=True), format_time(2.56, tenths=True)
    ('1:05', '1:02:05', '0:00:05', '0:02.6')
    """
    seconds = max(0.0, seconds)
    whole = int(seconds) if tenths else int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    text = f"{h}:{m:02d}:{s:02d}" if (hours or (hours is None and h)) else f"{m}:{s:02d}"
    if tenths:
        text += f".{min(9, int(round((seconds - whole) * 10)))}"
    return text


def write_csv(results: Sequence[Dict], path: PathLike) -> Path:
    """Writes a row per window and rank of `predict_windows` results.

    Columns `CSV_FIELDS`: video, window index, start and end (seconds), rank
    (1 = most probable), class name, class index, probability.
    """
    with outputs.atomic_open(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for result in results:
            for window in result.get("windows", []):
                for rank, item in enumerate(window["top_k"], 1):
                    writer.writerow([result["video"], window["index"],
                                     f"{window['start']:.3f}", f"{window['end']:.3f}", rank,
                                     item["class"], item["index"],
                                     f"{item['probability']:.6f}"])
    return Path(path)


def timeline_classes(result: Dict, count: int = 8) -> List[int]:
    """The classes worth a row: the `count` highest peaks over the windows."""
    probs = np.asarray([w["probabilities"] for w in result["windows"]])
    peaks = probs.max(axis=0)
    return [int(i) for i in np.argsort(-peaks, kind="stable")[:count]]


def plot_timeline(result: Dict, path: PathLike, *, classes: Optional[Sequence[int]] = None,
                  count: int = 8, class_names: Optional[Sequence[str]] = None,
                  title: Optional[str] = None) -> Path:
    """A PNG of the top classes' probabilities over the video's time.

    A heat map: a row per class (the `count` highest peaks unless `classes`
    is given), time on the x axis in m:ss (h:mm:ss past an hour), each window
    drawn from its start for one stride (so overlapping windows do not hide
    each other), gaps between windows left blank.

    Args:
        result: a `predict_windows` result with windows.
        path: the PNG to write.
        classes: class indices to show (default: `timeline_classes`).
        count: rows when `classes` is None.
        class_names: names per index (default: the windows' own).
        title: the plot's title (default: the video's file name).

    Returns:
        The written path.

    Raises:
        ValueError: a result without windows.
    """
    windows = result.get("windows") or []
    if not windows:
        raise ValueError(f"Expected a result with windows (predict_windows(..., window=N)). "
                         f"Received: {len(windows)} windows for {result.get('video')!r}")
    classes = list(classes) if classes is not None else timeline_classes(result, count)
    names = {}
    for w in windows:
        for item in w["top_k"]:
            names[item["index"]] = item["class"]
    label = [class_names[i] if class_names else names.get(i, str(i)) for i in classes]
    starts = np.asarray([w["start"] for w in windows])
    ends = np.asarray([w["end"] for w in windows])
    step = float(np.median(np.diff(starts))) if len(starts) > 1 else float(ends[0] - starts[0])
    step = min(step, float(np.median(ends - starts)))  # a stride above the window: gaps
    duration = float(ends.max())
    columns = max(1, min(4000, int(np.ceil(duration / max(step, 1e-6)))))
    grid = np.full((len(classes), columns), np.nan)
    probs = np.asarray([w["probabilities"] for w in windows])[:, classes]
    for n, (start, row) in enumerate(zip(starts, probs)):
        stop = ends[n] if n == len(starts) - 1 else start + step  # the last one to its end
        lo = int(round(start / duration * columns))
        hi = max(lo + 1, int(round(stop / duration * columns)))
        grid[:, lo:min(hi, columns)] = row[:, None]
    plt = plotting.pyplot()
    height = 1.2 + 0.38 * len(classes)
    fig, ax = plt.subplots(figsize=(11, height), dpi=100)
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#dddddd")
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=1,
                      extent=(0, duration, len(classes) - 0.5, -0.5))
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels([n if len(n) <= 32 else n[:31] + "…" for n in label], fontsize=9)
    hours = duration >= 3600
    ticks = _time_ticks(duration)
    ax.set_xticks(ticks)
    ax.set_xticklabels([format_time(t, hours) for t in ticks], fontsize=8)
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (m:ss)" if not hours else "time (h:mm:ss)")
    ax.set_title(title or f"{Path(str(result['video'])).name}: top classes per window "
                 f"({len(windows)} windows)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="probability")
    fig.tight_layout()
    path = Path(path)
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _time_ticks(duration: float) -> List[float]:
    """About 8 ticks at round steps (1 s ... 1 h)."""
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
    step = next((s for s in steps if duration / s <= 10), steps[-1])
    return list(np.arange(0, duration + 1e-9, step))


def annotate_video(source: PathLike, result: Dict, path: PathLike, *, top: int = 3,
                   fourcc: Optional[str] = None) -> Path:
    """Writes `source` with the current window's top classes drawn on each frame.

    Frames are read and written one at a time at the source's own frame rate
    and size (`streaming.VideoStream(fps=None, short_side=None)`); a frame
    shows the latest window that covers its time, nothing in gaps.

    Args:
        source: the video file the result came from.
        result: its `predict_windows` result (with windows).
        path: the output video (.mp4: "mp4v"; .avi: "MJPG").
        top: classes drawn per frame.
        fourcc: the codec (default by extension).

    Returns:
        The written path.

    Raises:
        ValueError: no windows, or OpenCV cannot write `path`.
        VideoDecodeError: the source cannot be read.
    """
    import cv2  # noqa: PLC0415

    from i3d_keras.data import streaming, video  # noqa: PLC0415

    windows = result.get("windows") or []
    if not windows:
        raise ValueError("Expected a result with windows to draw. Received: none")
    stream = streaming.VideoStream(source, fps=None, short_side=None)
    path = Path(path)
    fourcc = fourcc or {".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}.get(
        path.suffix.lower(), "mp4v")
    writer = None
    current = 0
    with outputs.atomic_path(path) as tmp, video.opencv_path(tmp) as name:
        try:
            for i, frame in enumerate(stream):
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*fourcc),
                                             float(stream.source_fps), (w, h))
                    if not writer.isOpened():
                        raise ValueError(f"OpenCV could not write '{path}' with fourcc "
                                         f"{fourcc!r}")
                t = i / stream.source_fps
                while current + 1 < len(windows) and windows[current + 1]["start"] <= t:
                    current += 1
                window = windows[current]
                shown = window if window["start"] <= t < window["end"] else None
                writer.write(cv2.cvtColor(_draw(frame, shown, top), cv2.COLOR_RGB2BGR))
        finally:
            if writer is not None:
                writer.release()
    return path


def _draw(frame: np.ndarray, window: Optional[Dict], top: int) -> np.ndarray:
    import cv2  # noqa: PLC0415

    if window is None:
        return frame
    frame = frame.copy()
    h, w = frame.shape[:2]
    scale = max(0.35, min(1.0, w / 900))
    line = int(26 * scale) + 4
    lines = [f"{item['probability']:5.1%} {item['class']}" for item in window["top_k"][:top]]
    box_w = min(w, int(max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
                          for t in lines)) + 12)
    box = frame[:line * len(lines) + 8, :box_w]
    box[:] = (box * 0.35).astype(frame.dtype)  # a dark band keeps the text readable
    for n, text in enumerate(lines):
        cv2.putText(frame, text, (6, line * (n + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return frame


__all__ = ["CSV_FIELDS", "annotate_video", "format_time", "plot_timeline", "timeline_classes",
           "write_csv"]
