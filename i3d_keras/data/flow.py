"""Optical flow for the I3D flow stream (Carreira & Zisserman, CVPR 2017).

The paper computes TV-L1 flow on grayscale frames, truncates it to [-20, 20]
pixels and rescales it to [-1, 1]; the flow network sees the two channels
(horizontal x, vertical y). `compute_flow` does exactly that with OpenCV's
`cv2.optflow.DualTVL1OpticalFlow` (default parameters), or with a faster
method.

Frame/flow alignment: for T frames there are T - 1 flow fields; field t is
the motion from frame t to frame t + 1 (forward flow, stored at frame t's
pixels). We repeat the last field so that flow has T entries and flow[t] is
aligned with rgb[t] -- the two streams can then be sampled with the same
frame indices. A single-frame video gets one all-zero field.

Speed/quality trade-off, measured with `tools/benchmark_data.py` on a
340x256 clip (`arm_wrestling.mp4` of the shared test videos), one OpenCV
thread, median seconds per frame pair, on this project's 2-core CPU while other
jobs were running (load ~4; the issue measured TV-L1 at ~0.9 s on an idle
core). Quality: correlation of our flow with the TV-L1 flow DeepMind released
for `v_CricketShot_g04_c01` (frames 30->31, 224x224), x / y channels:

  ===========  ===========  ===========  ======================================
  method       s/pair       corr x / y   notes
  ===========  ===========  ===========  ======================================
  "tvl1"       2.68         0.93 / 0.71  the paper's method; sharp; the default
  "farneback"  0.027        0.79 / 0.60  polynomial expansion; blurry edges
  "dis"        0.014        0.83 / 0.59  DIS medium preset; noisier, ~190x
                                         faster than TV-L1
  ===========  ===========  ===========  ======================================

A 10 s Kinetics clip (250 pairs) costs ~4-11 minutes of one core with TV-L1
versus ~4 s with DIS. A model should be evaluated on the flow method it was
trained on (the released I3D flow weights expect TV-L1).

Storage: flow is quantised to uint8 codes with `quantize_flow_np` (same formula
as `i3d_keras.data.preprocessing.quantize_flow`): code = round(f * 127) + 128 for
normalised flow f; the worst-case error is 1/254 normalised = 0.079 px.

This module itself imports only numpy and OpenCV (no TensorFlow) so that worker
processes stay light.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from i3d_keras.data import parallel
from i3d_keras.data.video import read_video
from i3d_keras.utils import outputs

#: The record of the settings that made a folder's flow files (`extract_flow`).
FLOW_SETTINGS_FILE = "flow_settings.json"

PathLike = Union[str, os.PathLike]

FLOW_METHODS = ("tvl1", "dis", "farneback")

#: Flow is clipped to +-FLOW_BOUND pixels, then divided by it (paper: 20).
FLOW_BOUND = 20.0

#: Quantisation constants (must match i3d_keras.data.preprocessing).
FLOW_QUANT_SCALE = 127.0
FLOW_QUANT_ZERO = 128.0
FLOW_QUANT_MAX_ERROR = 0.5 / FLOW_QUANT_SCALE

#: Suffix of the per-video flow files written by `extract_flow`.
FLOW_FILE_SUFFIX = ".flow.npz"

FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def create_flow_estimator(method: str = "tvl1") -> FlowFn:
    """Returns fn(prev_gray, next_gray) -> float32 [H, W, 2] flow in pixels.

    Args:
      method: "tvl1" (paper; `cv2.optflow.DualTVL1OpticalFlow_create()` with
        OpenCV's defaults), "dis" (`cv2.DISOpticalFlow`, medium preset) or
        "farneback" (`cv2.calcOpticalFlowFarneback`, pyr_scale 0.5, 3 levels,
        window 15, 3 iterations, poly_n 5, poly_sigma 1.2).

    Raises:
      ValueError: unknown method.
    """
    if method == "tvl1":
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda prev, nxt: tvl1.calc(prev, nxt, None)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda prev, nxt: dis.calc(prev, nxt, None)
    if method == "farneback":
        return lambda prev, nxt: cv2.calcOpticalFlowFarneback(
            prev, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"`method` must be one of {FLOW_METHODS}. Received: method={method!r}")


def _gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.shape[-1] == 1:
        return frame[..., 0]
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def compute_flow(frames: np.ndarray, method: str = "tvl1", bound: float = FLOW_BOUND,
                 estimator: Optional[FlowFn] = None) -> np.ndarray:
    """Computes normalised optical flow, aligned frame by frame with `frames`.

    Args:
      frames: uint8 `[T, H, W, 3]` RGB (or `[T, H, W]` grayscale) frames, T >= 1.
        The paper computes flow at the 256 short-side resolution.
      method: "tvl1", "dis" or "farneback" (see module docstring for speed).
      bound: clip to [-bound, bound] pixels, then divide by bound.
      estimator: optional prebuilt `create_flow_estimator(method)` (reuse it
        across videos; building TV-L1 is cheap but not free).

    Returns:
      float32 `[T, H, W, 2]` in [-1, 1]; channel 0 is x (horizontal, positive
      to the right), channel 1 is y (positive downwards). flow[t] is the motion
      from frame t to t + 1; flow[T - 1] repeats flow[T - 2].

    Raises:
      ValueError: frames of the wrong shape or dtype.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or frames.shape[0] < 1 or frames.dtype != np.uint8:
        raise ValueError("`frames` must be uint8 [T, H, W, 3] or [T, H, W] with T >= 1. "
                         f"Received: shape={frames.shape}, dtype={frames.dtype}")
    fn = estimator or create_flow_estimator(method)
    t, h, w = frames.shape[:3]
    out = np.zeros((t, h, w, 2), np.float32)
    prev = _gray(frames[0])
    for i in range(1, t):
        nxt = _gray(frames[i])
        out[i - 1] = fn(prev, nxt)
        prev = nxt
    if t > 1:
        out[t - 1] = out[t - 2]
    np.clip(out, -bound, bound, out=out)
    out /= bound
    return out


def quantize_flow_np(flow: np.ndarray) -> np.ndarray:
    """Numpy twin of `preprocessing.quantize_flow`: [-1, 1] float -> uint8 codes."""
    flow = np.clip(np.asarray(flow, np.float32), -1.0, 1.0)
    return (np.round(flow * FLOW_QUANT_SCALE) + FLOW_QUANT_ZERO).astype(np.uint8)


def dequantize_flow_np(codes: np.ndarray) -> np.ndarray:
    """Numpy twin of `preprocessing.dequantize_flow`: uint8 codes -> [-1, 1]."""
    flow = (np.asarray(codes, np.float32) - FLOW_QUANT_ZERO) / FLOW_QUANT_SCALE
    return np.maximum(flow, -1.0)


def save_flow(path: PathLike, flow: np.ndarray, **metadata) -> Path:
    """Writes normalised flow `[T, H, W, 2]` as quantised uint8 in a .npz.

    Written to a temporary file first and renamed, so a file that exists is
    complete (what makes `extract_flow` resumable).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    meta = {k: np.asarray(v) for k, v in metadata.items()}
    with open(tmp, "wb") as f:
        np.savez_compressed(f, flow=quantize_flow_np(flow), **meta)
    os.replace(tmp, path)
    return path


def load_flow(path: PathLike) -> np.ndarray:
    """Reads a `save_flow` file back as float32 `[T, H, W, 2]` in [-1, 1]."""
    with np.load(path) as data:
        return dequantize_flow_np(data["flow"])


def _is_complete(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return "flow.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def flow_output_path(video: PathLike, output_dir: PathLike,
                     root: Optional[PathLike] = None) -> Path:
    """Where `extract_flow` writes a video's flow.

    The video's path relative to `root` (or just its file name) is kept, so
    class folders survive and same-named videos in different folders do not
    collide: root/a/x.mp4 -> output_dir/a/x.mp4.flow.npz.
    """
    out = parallel.mirrored_output_path(video, output_dir, root)
    return out.with_name(out.name + FLOW_FILE_SUFFIX)


def _extract_one(args: Tuple[str, str, str, Optional[float], Optional[int], int]) -> Dict:
    video, out, method, fps, short_side, threads = args
    if threads:
        cv2.setNumThreads(threads)
    t0 = time.monotonic()
    frames = read_video(video, fps=fps, short_side=short_side)
    flow = compute_flow(frames, method=method)
    save_flow(out, flow, method=method, fps=fps if fps else 0.0, bound=FLOW_BOUND)
    return {"video": video, "output": out, "num_frames": int(frames.shape[0]),
            "seconds": time.monotonic() - t0}


def extract_flow(videos: Sequence[PathLike], output_dir: PathLike, method: str = "tvl1",
                 root: Optional[PathLike] = None, num_workers: int = 0,
                 fps: Optional[float] = 25.0, short_side: Optional[int] = 256,
                 overwrite: bool = False, progress: bool = True,
                 mp_context: Optional[str] = "spawn") -> Dict[str, list]:
    """Computes and stores flow for many videos, one worker process per core.

    Resumable: a video whose output file already exists and is complete is
    skipped (outputs are written to a temporary name and renamed). The
    settings that change the flow (method, fps, short side) are recorded in
    the folder (`FLOW_SETTINGS_FILE`); a rerun with others is refused before
    any work unless `overwrite`, which recomputes everything. Inputs from
    different folders keep their paths under their common folder; two inputs
    that would share an output are refused. A video that fails is reported
    and skipped; the others continue.

    Args:
      videos: video paths.
      output_dir: where `<relative path>.flow.npz` files go (`flow_output_path`).
      method: "tvl1", "dis" or "farneback".
      root: common root of `videos`, to keep their relative folders (default:
        the deepest folder holding them all).
      num_workers: processes; 0 = one per core, 1 = in this process.
      fps: decode frame rate (paper: 25).
      short_side: decode short side (paper: 256).
      overwrite: recompute existing outputs.
      progress: print a progress line with ETA to stderr.
      mp_context: multiprocessing start method.

    Returns:
      `{"converted": [output paths], "skipped": [existing outputs],
        "failed": [(video, reason)]}`.

    Raises:
      ValueError: a bad method, fps, short side or worker count.
      outputs.OutputError: `output_dir` is a file, two inputs would share an
        output, or the folder holds flow made with other settings.
    """
    if method not in FLOW_METHODS:
        raise ValueError(f"`method` must be one of {FLOW_METHODS}. Received: method={method!r}")
    if fps is not None and not fps > 0:
        raise ValueError(f"`fps` must be > 0 or None. Received: fps={fps}")
    if short_side is not None and short_side < 1:
        raise ValueError(f"`short_side` must be >= 1 or None. Received: short_side={short_side}")
    if num_workers < 0:
        raise ValueError(f"`num_workers` must be >= 0 (0: one per core). "
                         f"Received: num_workers={num_workers}")
    outputs.check_output_dir(output_dir, inputs=videos)
    videos = list(dict.fromkeys(Path(v) for v in videos))
    if root is None and len(videos) > 1:
        root = outputs.common_root(videos)
    pairs = [(v, flow_output_path(v, output_dir, root)) for v in videos]
    outputs.unique_outputs(pairs)
    record = outputs.SettingsRecord(output_dir, FLOW_SETTINGS_FILE)
    settings = {"method": method, "fps": fps, "short_side": short_side,
                "bound": FLOW_BOUND}
    if record.check(settings, has_outputs=any(out.exists() for _, out in pairs),
                    overwrite=overwrite) == "recompute":
        overwrite = True
    num_workers = num_workers or parallel.default_num_workers()
    report: Dict[str, list] = {"converted": [], "skipped": [], "failed": []}
    todo = []
    for v, out in pairs:
        if not overwrite and _is_complete(out):
            report["skipped"].append(str(out))
        else:
            # Each worker uses one OpenCV thread: parallelism is across videos.
            todo.append((str(v), str(out), method, fps, short_side,
                         1 if num_workers > 1 else 0))
    bar = parallel.Progress(len(todo) + len(report["skipped"]), desc=f"flow[{method}]",
                            enabled=progress)
    bar.update(len(report["skipped"]), skipped=len(report["skipped"]))
    for i, result, error in parallel.parallel_map(_extract_one, todo, num_workers, mp_context):
        if error is None:
            report["converted"].append(result["output"])
            bar.update(1)
        else:
            report["failed"].append((todo[i][0], error))
            bar.update(1, failed=1)
    bar.close()
    return report
