"""Video decoding with OpenCV, resampled and resized as in I3D.

Carreira & Zisserman (CVPR 2017) feed frames at 25 fps whose short side is
resized to 256 pixels (bilinear). `read_video` returns exactly that from any
file OpenCV's FFmpeg backend can read (MP4, AVI, MKV, WebM, GIF, ...).

This module imports only numpy, OpenCV and `i3d_keras.utils` (standard library
only), so that worker processes doing bulk decoding stay light.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from i3d_keras.utils import console, outputs, textfiles

PathLike = Union[str, os.PathLike]

#: File extensions treated as videos when scanning folders.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg",
                    ".flv", ".wmv", ".3gp", ".gif", ".ogv")

#: File extensions read as lists of video paths (one per line) by `find_videos`.
LIST_EXTENSIONS = (".txt", ".lst", ".list")

#: Frames with more pixels than this are rejected (a guard against corrupt
#: headers claiming absurd sizes; 8K UHD is 33 Mpx).
MAX_FRAME_PIXELS = 8192 * 8192


class VideoDecodeError(ValueError):
    """A video could not be decoded; names the file and the reason."""

    def __init__(self, path: PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot decode video '{self.path}': {reason}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.reason))


def find_videos(inputs: Sequence[PathLike], *, what: str = "VIDEO"
                ) -> Tuple[List[Path], Optional[Path]]:
    """Expands command-line inputs: video files, folders (searched
    recursively for `VIDEO_EXTENSIONS`) and lists of paths (`LIST_EXTENSIONS`,
    one path per line, relative to the list's folder).

    Any other file is taken as a video (a `.keras` given by mistake fails on
    its own, as a video OpenCV cannot open, without stopping the others).

    Args:
        inputs: what the user gave.
        what: how the messages name an input (`"VIDEO"`, `"--input"`).

    Returns:
        `(videos, root)`: root is the folder when a single folder was given.
        Paths that do not exist are kept (they fail later, item by item).

    Raises:
        i3d_keras.utils.outputs.OutputError: a list file that is not text
            (binary data, or not UTF-8): it is not read as a list of paths.
    """
    videos: List[Path] = []
    root = None
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            videos += found
            root = path if len(inputs) == 1 else None
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            try:
                text = textfiles.read_text_file(path)
            except textfiles.NotTextError as error:
                raise outputs.OutputError(
                    f"{what} {os.fspath(spec)!r} is a {path.suffix} file but not a text list of "
                    "video paths, one per line (it holds binary data or is not UTF-8). "
                    f"Received: a file of {error.size} bytes") from None
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            videos += [Path(ln) if Path(ln).is_absolute() else path.parent / ln
                       for ln in lines]
        else:
            videos.append(path)
    return videos, root


def video_info(path: PathLike) -> Dict[str, float]:
    """Returns the container's claimed fps, frame count, width and height.

    These come from the file header and may be approximate (frame counts of
    some containers are estimates); `read_video` does not rely on the count.

    Raises:
      VideoDecodeError: if the file is missing or OpenCV cannot open it.
    """
    cap = _with_decoder_messages(path, _open, path)
    try:
        return {
            "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            "num_frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        }
    finally:
        cap.release()


@contextlib.contextmanager
def opencv_path(path: PathLike) -> Iterator[str]:
    """A name of `path` that OpenCV can take, for as long as the block runs.

    OpenCV passes file names to FFmpeg as UTF-8 and crashes the process
    (a segmentation fault, in `cv2.VideoCapture`) on a name that is not: a
    Linux file name of other bytes (`b"clip\\xff.mp4"`, which Python holds
    with surrogates). Such a file is reached through a symbolic link of a
    plain name in a temporary folder (removed when the block ends; a capture
    opened inside keeps its file open). Other names are given as they are.

    Raises:
        VideoDecodeError: the name is not UTF-8 and no link can be made.
    """
    name = os.fspath(path)
    try:
        name.encode("utf-8")
        plain = True
    except UnicodeEncodeError:
        plain = False
    if plain:  # the caller's own errors pass through the `yield` untouched
        yield name
        return
    folder = tempfile.mkdtemp(prefix="i3d_keras-video-")
    suffix = "".join(c for c in Path(name).suffix if c.isascii() and c.isalnum())
    link = os.path.join(folder, "video" + ("." + suffix if suffix else ""))
    try:
        try:
            os.symlink(os.path.abspath(name), link)
        except OSError as error:
            raise VideoDecodeError(path, "its name is not valid UTF-8, which OpenCV cannot "
                                         f"take, and no link to it could be made ({error})") \
                from None
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _open(path: PathLike) -> "cv2.VideoCapture":
    p = Path(path)
    if not p.exists():
        raise VideoDecodeError(path, "file does not exist")
    if not p.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    with opencv_path(p) as name:
        cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            cap = cv2.VideoCapture(name)  # any other backend OpenCV has
    if not cap.isOpened():
        cap.release()
        raise VideoDecodeError(path, "OpenCV could not open it (unknown format or corrupt)")
    return cap


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    """Converts an OpenCV frame (gray, BGR or BGRA) to RGB uint8."""
    if frame.dtype != np.uint8:
        # 16-bit sources: keep the most significant byte.
        frame = (frame / (np.iinfo(frame.dtype).max / 255.0)).astype(np.uint8) \
            if np.issubdtype(frame.dtype, np.integer) else np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[-1] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[-1] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def resize_short_side_np(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Resizes one `[H, W, C]` image so min(H, W) == short_side (bilinear)."""
    h, w = frame.shape[:2]
    if min(h, w) == short_side:
        return frame
    scale = short_side / min(h, w)
    if h <= w:
        size = (max(1, int(round(w * scale))), short_side)
    else:
        size = (short_side, max(1, int(round(h * scale))))
    # INTER_LINEAR is bilinear, as in the paper; INTER_AREA would alias less
    # when shrinking a lot but is not what the released models saw.
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)


def read_video(path: PathLike, fps: Optional[float] = 25.0, short_side: Optional[int] = 256,
               start: Optional[float] = None, end: Optional[float] = None,
               max_frames: Optional[int] = None) -> np.ndarray:
    """Decodes a video to RGB frames at `fps`, short side `short_side`.

    Resampling uses nearest-frame timestamps: output frame k is the source frame
    whose timestamp j / source_fps is nearest to start + k / fps, so 30 fps
    sources drop frames and 12 fps sources repeat them. Decoding is sequential
    (robust to bad indexes); frames not needed are only grabbed, not converted.

    Args:
      path: video file (anything OpenCV's FFmpeg reads, GIF included).
      fps: output frame rate; None keeps every source frame.
      short_side: resize so the shorter side has this length (bilinear); None
        keeps the source size.
      start: clip start in seconds (None: 0).
      end: clip end in seconds, exclusive (None: end of video). An end past the
        end of the video is truncated to it.
      max_frames: stop after this many output frames (None: no limit).

    Returns:
      uint8 array `[T, H, W, 3]`, RGB.

    Raises:
      VideoDecodeError: missing, empty or unreadable file, no decodable frame,
        invalid [start, end], or a clip lying outside the video.
    """
    if fps is not None and not fps > 0:
        raise ValueError(f"`fps` must be positive or None. Received: fps={fps}")
    if short_side is not None and short_side < 1:
        raise ValueError(f"`short_side` must be >= 1 or None. Received: short_side={short_side}")
    start = 0.0 if start is None else float(start)
    if start < 0 or (end is not None and end <= start):
        raise VideoDecodeError(path, f"invalid clip bounds: expected 0 <= start < end. "
                                     f"Received: start={start}, end={end}")
    return _with_decoder_messages(path, _decode, path, fps, short_side, start, end, max_frames)


def _with_decoder_messages(path: PathLike, fn, *args):
    """Runs `fn(*args)` catching what FFmpeg and OpenCV print about the file:
    their complaint becomes part of a `VideoDecodeError`'s reason (e.g. "...
    (moov atom not found)"); the rest goes on to standard error as usual
    (without it, in a quiet tool: `i3d_keras.utils.console`)."""
    failure = None
    with console.capture_native_stderr() as caught:
        try:
            result = fn(*args)
        except VideoDecodeError as error:
            failure = error
    console.pass_through(caught.text)
    if failure is None:
        return result
    complaints = console.decoder_messages(caught.text)
    if complaints:
        said = "; ".join(complaints)
        said = said if len(said) <= 200 else said[:197] + "..."
        raise VideoDecodeError(failure.path, f"{failure.reason}; the decoder said: {said}") \
            from None
    raise failure


def source_fps(cap: "cv2.VideoCapture") -> float:
    """The container's frame rate, or 25 where it is missing or absurd."""
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if math.isfinite(fps) and 0 < fps < 1000 else 25.0


def resampled_frames(cap: "cv2.VideoCapture", path: PathLike, fps: Optional[float],
                     short_side: Optional[int], start: float = 0.0, end: Optional[float] = None,
                     max_frames: Optional[int] = None, state: Optional[Dict] = None):
    """Yields the RGB frames of an open capture at `fps`, short side `short_side`.

    The one decoding loop of the package (`read_video` collects it,
    `i3d_keras.data.streaming.VideoStream` streams it): output frame k is the
    source frame nearest to `start + k / fps`; frames not needed are grabbed,
    never converted. One frame is held at a time.

    Args:
      cap: an opened `cv2.VideoCapture` (released by the caller).
      path: the source's name, for errors.
      fps, short_side, start, end, max_frames: as in `read_video`.
      state: an optional dict that receives `"source_frames"` (frames grabbed
        so far), `"source_fps"` and `"exhausted"` (the source ended).

    Yields:
      uint8 `[H, W, 3]` RGB frames.

    Raises:
      VideoDecodeError: a frame larger than `MAX_FRAME_PIXELS`.
    """
    state = {} if state is None else state
    src_fps = source_fps(cap)
    out_fps = src_fps if fps is None else float(fps)
    state.update(source_frames=0, source_fps=src_fps, exhausted=False, emitted=0)
    next_k = 0  # index of the next output frame
    j = -1  # index of the last grabbed source frame
    last_frame = None
    while True:
        if max_frames is not None and next_k >= max_frames:
            return
        t_k = start + next_k / out_fps
        if end is not None and t_k >= end - 1e-9:
            return
        wanted = int(math.floor(t_k * src_fps + 0.5))  # nearest source frame
        if wanted <= j and last_frame is not None:
            # Upsampling: one source frame serves several outputs.
            next_k += 1
            state["emitted"] = next_k
            yield last_frame
            continue
        while j < wanted:  # skipped frames are grabbed, never converted
            if not cap.grab():
                state["exhausted"] = True
                return
            j += 1
            state["source_frames"] = j + 1
        ok, frame = cap.retrieve()
        if not ok or frame is None:
            state["exhausted"] = True
            return
        if frame.shape[0] * frame.shape[1] > MAX_FRAME_PIXELS:
            raise VideoDecodeError(path, f"frame too large: shape={frame.shape}")
        frame = _to_rgb(frame)
        if short_side is not None:
            frame = resize_short_side_np(frame, short_side)
        last_frame = frame
        next_k += 1
        state["emitted"] = next_k
        yield frame


def _decode(path: PathLike, fps: Optional[float], short_side: Optional[int], start: float,
            end: Optional[float], max_frames: Optional[int]) -> np.ndarray:
    cap = _open(path)
    state: Dict = {}
    try:
        frames = list(resampled_frames(cap, path, fps, short_side, start, end, max_frames,
                                       state))
    finally:
        cap.release()
    if not frames:
        n = state.get("source_frames", 0)
        if n == 0 or start == 0:
            raise VideoDecodeError(path, "no frames could be decoded (zero-frame or corrupt video)")
        raise VideoDecodeError(
            path, f"clip [{start}, {end}) s lies outside the video "
                  f"({n} frames at {state['source_fps']:g} fps = {n / state['source_fps']:.2f} s)")
    return np.stack(frames)


def write_video(path: PathLike, frames: np.ndarray, fps: float = 25.0,
                fourcc: Optional[str] = None) -> Path:
    """Writes RGB uint8 frames `[T, H, W, 3]` with cv2.VideoWriter.

    Mainly for tests and demos. The codec defaults by extension: "mp4v" for
    .mp4/.mov, "MJPG" for .avi, "VP80" for .webm. GIF writing is not supported
    by OpenCV's FFmpeg writer.

    Returns:
      The written path.

    Raises:
      ValueError: bad frames, or OpenCV could not open a writer.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError("`frames` must be uint8 [T, H, W, 3]. "
                         f"Received: shape={frames.shape}, dtype={frames.dtype}")
    path = Path(path)
    ext = path.suffix.lower()
    if fourcc is None:
        fourcc = {".avi": "MJPG", ".webm": "VP80", ".mkv": "MJPG"}.get(ext, "mp4v")
    h, w = frames.shape[1:3]
    with opencv_path(path) as name:
        writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if not writer.isOpened():
            raise ValueError(f"OpenCV could not open a writer for '{path}' with "
                             f"fourcc={fourcc!r}")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path
