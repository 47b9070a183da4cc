"""Videos read as the work needs them: frames, flow and sliding windows in
bounded memory, from files, cameras and network streams.

`read_video` returns a whole video as one array: right for a 10-second
Kinetics clip, impossible for an hour (25 fps x 3600 s of 340x256 frames is
23 GB). Here a video is a stream: `VideoStream` decodes, resamples (25 fps)
and resizes (short side 256) one frame at a time with the same decoding loop
as `read_video` (`video.resampled_frames`); `model_inputs` turns frames into
the paper's test inputs (centre crop, RGB in [-1, 1], TV-L1 flow of each
frame pair computed once, as the frames arrive) and `sliding_windows` groups
them into the windows a model sees, holding only one window's frames. Memory
is bounded by the window, the stride and the batch, whatever the length of
the video (Carreira & Zisserman, CVPR 2017, for the preprocessing).

A source that breaks in the middle (a truncated file) ends the stream early:
`VideoStream.broken` says where, and what came before is kept. Cameras
(`source=0`) and network streams (`rtsp://`, `http(s)://`, ... as OpenCV's
FFmpeg backend reads them) are sources like files (`VideoStream.live`).

Example:

>>> stream = VideoStream("lecture.mp4")  # doctest: +SKIP
>>> inputs = model_inputs(stream, ("rgb",), crop=224)  # doctest: +SKIP
>>> for start, window in sliding_windows(inputs, window=64, stride=32):  # doctest: +SKIP
...     clip = np.stack([frame["rgb"] for frame in window])  # [64, 224, 224, 3]
"""

from __future__ import annotations

import collections
import os
import re
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import cv2
import numpy as np

from i3d_keras.data import flow as flow_lib
from i3d_keras.data import video
from i3d_keras.utils import console

PathLike = Union[str, os.PathLike]
Item = TypeVar("Item")

#: Sources that are read as live streams, not files.
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: A file that ends before this share of the frames its header claims broke.
_BROKEN_SHARE = 0.98


def is_live_source(source) -> bool:
    """Whether `source` is a camera index (`0`, `"0"`) or a stream URL."""
    if isinstance(source, int):
        return True
    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    return text.isdigit() or bool(_URL.match(text))


class VideoStream:
    """The frames of a video file, camera or stream, decoded as they are read.

    Iterating yields RGB uint8 frames `[H, W, 3]` at `fps` with short side
    `short_side`, one at a time (`video.resampled_frames`, the decoding of
    `read_video`). It can be iterated once.

    Args:
        source: a video file, a camera index (`0`) or a stream URL.
        fps: output frame rate (the paper: 25); None keeps the source's.
        short_side: resize so the shorter side has this length (the paper:
            256); None keeps the source size.
        max_frames: stop after this many frames.

    Attributes:
        live: a camera or stream rather than a file.
        source_fps: the source's frame rate (25 where it does not say).
        duration: the length in seconds the file's header claims (None for
            live sources or when unknown).
        frames_read: frames yielded so far; `frames_read / fps` is the position.
        broken: None, or where and how the source broke before its end.

    Raises:
        VideoDecodeError: (when iteration starts) a source that cannot be
            opened or has no decodable frame.

    Example:

    >>> stream = VideoStream(0)  # the first camera  # doctest: +SKIP
    >>> first = next(iter(stream))  # doctest: +SKIP
    """

    def __init__(self, source, *, fps: Optional[float] = 25.0,
                 short_side: Optional[int] = 256, max_frames: Optional[int] = None):
        if fps is not None and not fps > 0:
            raise ValueError(f"`fps` must be positive or None. Received: fps={fps}")
        if short_side is not None and short_side < 1:
            raise ValueError(f"`short_side` must be >= 1 or None. Received: "
                             f"short_side={short_side}")
        self.source = source
        self.live = is_live_source(source)
        self.fps = fps
        self.short_side = short_side
        self.max_frames = max_frames
        self.source_fps: Optional[float] = None
        self.duration: Optional[float] = None
        self.claimed_frames = 0
        self.frames_read = 0
        self.broken: Optional[str] = None
        self._state: Dict = {}
        self._started = False

    @property
    def name(self) -> str:
        return str(self.source)

    @property
    def output_fps(self) -> float:
        return float(self.fps or self.source_fps or 25.0)

    @property
    def position(self) -> float:
        """Seconds of video read so far."""
        return self.frames_read / self.output_fps

    def _open(self) -> "cv2.VideoCapture":
        if not self.live:
            return video._open(self.source)  # noqa: SLF001 (the package's one opener)
        text = str(self.source)
        target = int(text) if text.isdigit() else text
        cap = cv2.VideoCapture(target) if isinstance(target, int) else \
            cv2.VideoCapture(target, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            what = f"camera {target}" if isinstance(target, int) else "the stream"
            raise video.VideoDecodeError(
                text, f"cannot open {what} (no such device, address unreachable or format "
                      "not supported by OpenCV's FFmpeg backend)")
        return cap

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"A VideoStream is read once. Received: a second iteration of "
                               f"{self.name!r}")
        self._started = True
        with console.capture_native_stderr() as caught:
            try:
                cap = self._open()
            except video.VideoDecodeError as error:
                failure = error
            else:
                failure = None
        console.pass_through(caught.text)
        if failure is not None:
            complaints = console.decoder_messages(caught.text)
            if complaints:
                raise video.VideoDecodeError(
                    failure.path, f"{failure.reason}; the decoder said: "
                                  f"{'; '.join(complaints)[:200]}") from None
            raise failure
        try:
            self.source_fps = video.source_fps(cap)
            if not self.live:
                self.claimed_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                if self.claimed_frames > 0:
                    self.duration = self.claimed_frames / self.source_fps
            frames = video.resampled_frames(cap, self.name, self.fps, self.short_side,
                                            max_frames=self.max_frames, state=self._state)
            for frame in frames:
                self.frames_read += 1
                yield frame
        finally:
            cap.release()
        if self.frames_read == 0:
            raise video.VideoDecodeError(
                self.name, "no frames could be decoded (zero-frame or corrupt video)")
        self._check_end()

    def _check_end(self) -> None:
        """Sets `broken` when a file ended well before the frames it claims."""
        if self.live or not self._state.get("exhausted") or self.claimed_frames <= 0:
            return
        read = self._state.get("source_frames", 0)
        if read < _BROKEN_SHARE * self.claimed_frames - 1:
            self.broken = (f"the video broke at {_clock(read / self.source_fps)} (source "
                           f"frame {read} of the {self.claimed_frames} its header claims); "
                           "the rest could not be decoded")


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:04.1f}" if hours else f"{minutes}:{rest:04.1f}"


def center_crop_np(frames: np.ndarray, size) -> np.ndarray:
    """The centre `size` (int or `(h, w)`) crop of a frame `[H, W, C]` or of
    every frame of `[..., H, W, C]` (numpy; the package's one centre crop of
    arrays).

    Raises:
        ValueError: frames smaller than the crop.

    Example:

    >>> center_crop_np(np.zeros((5, 256, 340, 3)), 224).shape
    (5, 224, 224, 3)
    """
    h, w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    height, width = frames.shape[-3:-1]
    if height < h or width < w:
        raise ValueError(f"Expected frames of at least {h}x{w} for the centre crop. "
                         f"Received: frames of {height}x{width}")
    top, left = (height - h) // 2, (width - w) // 2
    return frames[..., top:top + h, left:left + w, :]


def flow_fields(frames: Iterable[np.ndarray], method: str = "tvl1", *, estimator=None
                ) -> Iterator[np.ndarray]:
    """Yields the normalised flow of each frame as frames arrive (one behind).

    The same fields as `flow.compute_flow` over the whole video: field t is
    the motion from frame t to t + 1, clipped to `bound` pixels and scaled to
    [-1, 1]; the last frame repeats the field before it (zeros for a
    one-frame video). Each pair is computed once, however the windows overlap.

    Args:
        frames: uint8 `[H, W, 3]` frames.
        method, estimator: as in `flow.compute_flow`.

    Yields:
        float32 `[H, W, 2]`.
    """
    fn = estimator or flow_lib.create_flow_estimator(method)
    previous, last = None, None
    for frame in frames:
        if previous is not None:
            last = _field(fn, previous, frame)
            yield last
        previous = frame
    if previous is not None:
        yield last if last is not None else np.zeros((*previous.shape[:2], 2), np.float32)


def model_inputs(frames: Iterable[np.ndarray], streams: Sequence[str] = ("rgb",), *,
                 crop=224, flow_method: str = "tvl1", estimator=None, needed=None
                 ) -> Iterator[Optional[Dict[str, np.ndarray]]]:
    """The paper's test inputs, frame by frame: `{"rgb": ..., "flow": ...}`.

    RGB is the centre crop, kept as uint8 (4x smaller than float; `to_clip`
    scales it to [-1, 1]); flow is computed on the whole resized frame, then
    cropped (as the paper, and `inference.load_video_inputs`, do).

    Args:
        frames: uint8 `[H, W, 3]` frames (e.g. a `VideoStream`).
        streams: "rgb" and/or "flow".
        crop: crop size, int or `(h, w)`.
        flow_method, estimator: see `flow_fields`.
        needed: optional `fn(index) -> bool`; frames it rejects (the gaps
            between windows, `in_some_window`) yield None and cost no flow.

    Yields:
        `{"rgb": uint8 [h, w, 3], "flow": float32 [h, w, 2]}` (the asked streams).
    """
    streams = tuple(streams)
    if "flow" not in streams:
        for index, frame in enumerate(frames):
            yield {"rgb": center_crop_np(frame, crop)} \
                if needed is None or needed(index) else None
        return
    fn = estimator or flow_lib.create_flow_estimator(flow_method)
    previous, previous_field = None, None
    for index, frame in enumerate(frames):
        # Field t (frame t -> t + 1) is known when frame t + 1 arrives.
        if previous is not None:
            field = None
            if needed is None or needed(index - 1):
                field = _field(fn, previous[1], frame)
            elif needed(index):  # the next frame's field may repeat this one at the end
                field = previous_field
            yield _item(previous[1], field, streams, crop) \
                if needed is None or needed(index - 1) else None
            previous_field = field
        previous = (index, frame)
    if previous is not None:
        last_field = previous_field if previous_field is not None else \
            np.zeros((*previous[1].shape[:2], 2), np.float32)
        yield _item(previous[1], last_field, streams, crop) \
            if needed is None or needed(previous[0]) else None


def _field(fn, frame, following, bound: float = flow_lib.FLOW_BOUND) -> np.ndarray:
    gray, nxt = flow_lib._gray(frame), flow_lib._gray(following)  # noqa: SLF001
    return np.clip(np.asarray(fn(gray, nxt), np.float32), -bound, bound) / bound


def _item(frame, field, streams, crop) -> Dict[str, np.ndarray]:
    item = {"flow": center_crop_np(field, crop)}
    if "rgb" in streams:
        item["rgb"] = center_crop_np(frame, crop)
    return item


def in_some_window(window: int, stride: Optional[int] = None):
    """`fn(index) -> bool`: whether an item lies in a window of
    `sliding_windows(items, window, stride)` (False in the gaps of a stride
    larger than the window)."""
    stride = window if stride is None else stride
    return lambda index: index % stride < window


def to_clip(items: Sequence[Dict[str, np.ndarray]], stream: str) -> np.ndarray:
    """Stacks one window's items of a stream: float32 `[T, h, w, C]` (RGB in [-1, 1])."""
    clip = np.stack([item[stream] for item in items])
    if stream == "rgb":
        return clip.astype(np.float32) * (2.0 / 255.0) - 1.0
    return clip.astype(np.float32, copy=False)


def sliding_windows(items: Iterable[Item], window: int, stride: Optional[int] = None, *,
                    tail: bool = False) -> Iterator[Tuple[int, List[Item]]]:
    """Groups a stream into windows, holding at most one window of items.

    Window i covers items `[i * stride, i * stride + window)`; items after the
    last whole window are not covered (`inference.window_starts`); a stream
    shorter than one window gives one window of its items looped (`i % n`),
    as `extract_features` pads; an empty stream gives none. A stride larger
    than the window leaves gaps, whose items are read and dropped.

    Args:
        items: any iterable (frames, `model_inputs` dicts).
        window: items per window, >= 1.
        stride: items between window starts, >= 1 (default: `window`).
        tail: (with `stride == window` only) the items after the last whole
            window form a last, shorter window, and a stream shorter than one
            window is one short window, not looped: every item is in exactly
            one window (`inference.predict_windows`' whole-video chunks).

    Yields:
        `(start, items)`: the first item's index and a list of `window` items.

    Example:

    >>> [(s, w) for s, w in sliding_windows(range(7), window=3, stride=2)]
    [(0, [0, 1, 2]), (2, [2, 3, 4]), (4, [4, 5, 6])]
    >>> list(sliding_windows(range(2), window=3))
    [(0, [0, 1, 0])]
    >>> list(sliding_windows(range(7), window=3, tail=True))
    [(0, [0, 1, 2]), (3, [3, 4, 5]), (6, [6])]
    """
    if window < 1:
        raise ValueError(f"`window` must be >= 1. Received: window={window}")
    stride = window if stride is None else stride
    if stride < 1:
        raise ValueError(f"`stride` must be >= 1. Received: stride={stride}")
    if tail and stride != window:
        raise ValueError(f"`tail` needs `stride == window`. Received: window={window}, "
                         f"stride={stride}")
    held: collections.deque = collections.deque(maxlen=window)
    next_start, count, emitted = 0, 0, False
    for index, item in enumerate(items):
        count = index + 1
        if index < next_start:  # a gap between windows (stride > window)
            continue
        held.append(item)
        if index == next_start + window - 1:
            yield next_start, list(held)
            emitted = True
            next_start += stride
            while len(held) > max(0, window - stride):  # keep the overlap only
                held.popleft()
    if tail and held:
        yield next_start, list(held)
    elif not emitted and count:
        looped = list(held)
        yield 0, [looped[i % len(looped)] for i in range(window)]


class StreamProgress:
    """A progress line for one video: position, length, real-time factor.

    `update()` after each frame read; the line is rewritten in place on a
    terminal (at most 5 times a second), and printed at most every `interval`
    seconds elsewhere (logs). The real-time factor is seconds of video per
    second of work: above 1, faster than the video plays.

    Example:

    >>> progress = StreamProgress(VideoStream("talk.mp4"), "features")  # doctest: +SKIP
    """

    def __init__(self, stream: VideoStream, desc: str = "", *, stream_out=None,
                 interval: float = 10.0, enabled: bool = True):
        import sys  # noqa: PLC0415

        self.stream = stream
        self.desc = desc
        self.out = sys.stderr if stream_out is None else stream_out
        self.enabled = enabled
        self.interval = interval
        self._tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._last = time.monotonic()  # the first line after `interval`

    def realtime_factor(self) -> Optional[float]:
        elapsed = time.monotonic() - self._start
        return self.stream.position / elapsed if elapsed > 0 and self.stream.frames_read else None

    def line(self) -> str:
        length = f"/{_clock(self.stream.duration)}" if self.stream.duration else ""
        factor = self.realtime_factor()
        speed = "?" if factor is None else f"{factor:.2f}x real time"
        eta = ""
        if factor and self.stream.duration:
            eta = f" | ETA {_clock(max(0.0, self.stream.duration - self.stream.position) / factor)}"
        return (f"{self.desc}{' ' if self.desc else ''}{Path(self.stream.name).name} "
                f"{_clock(self.stream.position)}{length} | {speed}{eta}")

    def update(self) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < (0.2 if self._tty else self.interval):
            return
        self._last = now
        self.out.write(("\r" + self.line() + "\x1b[K") if self._tty else self.line() + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.enabled and self._tty:
            self.out.write("\r\x1b[K")
            self.out.flush()


__all__ = ["StreamProgress", "VideoStream", "center_crop_np", "flow_fields",
           "in_some_window", "is_live_source", "model_inputs", "sliding_windows", "to_clip"]
