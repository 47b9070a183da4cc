"""Calibration clips for full-integer (int8) LiteRT files.

Post-training integer quantisation runs the float model on a representative
set of inputs and records each tensor's range, from which the int8 scales and
zero points are set (Jacob et al., "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference", CVPR 2018). For
I3D the inputs are clips: `calibration_clips` takes them from a folder of
videos (decoded at 25 fps, short side resized, centre-cropped and scaled as
the paper's test protocol does; flow computed with OpenCV for flow streams),
from a prepared dataset's training split (TFRecords), from a `tf.data.Dataset` of clips (batched or not, with or without labels, as
`i3d_keras.data.motion_dataset.motion_datasets` yields them), or from any
iterable of clips.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(the test protocol: short side 256, centre crop 224, values in [-1, 1]).

Example:

>>> clips = calibration_clips("videos/", {"rgb": (16, 224, 224, 3)})  # doctest: +SKIP
>>> clips[0]["rgb"].shape  # doctest: +SKIP
(1, 16, 224, 224, 3)
"""

import json
import os
from pathlib import Path

import numpy as np

from i3d_keras.data import flow as flow_lib
from i3d_keras.data import video as video_lib

#: Clips used when no number is given. Ranges are the minima and maxima seen,
#: so too few clips leave outliers to saturate: the motion model (8 x 32 x 32
#: clips) agreed with its float self on 98.0% / 98.5% / 99.5% / 99.5% of 200
#: validation clips calibrated on 8 / 32 / 128 / 512 training clips, its
#: largest logit error 5.8 / 4.7 / 0.63 / 0.36 (logits up to 15).
DEFAULT_CALIBRATION_CLIPS = 128

#: Files a folder of videos is read from (OpenCV's FFmpeg decodes them).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".gif", ".mpg", ".mpeg", ".m4v")

#: The paper's ratio of the resized short side to the crop (256 / 224).
_SHORT_SIDE_RATIO = 256 / 224


class CalibrationError(ValueError):
    """Calibration data that cannot be used (none, or clips of the wrong shape)."""


def video_files(folder):
    """The video files of a folder (not its subfolders), sorted by name.

    Raises:
        CalibrationError: `folder` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"Expected a folder of videos for calibration. "
                               f"Received: {str(folder)!r} (not a folder)")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


#: `i3d_keras.data.records.METADATA_SUFFIX`, here without importing TensorFlow
#: (`tools/export.py` checks its flags before loading it).
_METADATA_SUFFIX = ".metadata.json"


def dataset_metadata(folder):
    """The metadata of a folder made by `tools/prepare_dataset.py` (or the
    motion dataset), or None for any other folder.

    Raises:
        CalibrationError: the folder holds several datasets, or their
            metadata cannot be read.
    """
    found = sorted(Path(folder).glob(f"*{_METADATA_SUFFIX}")) if Path(folder).is_dir() else []
    if not found:
        return None
    if len(found) > 1:
        raise CalibrationError(f"Expected one dataset in {str(folder)!r} to calibrate on. "
                               f"Received: {', '.join(p.name for p in found)}")
    try:
        return json.loads(found[0].read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CalibrationError(f"Cannot read {str(found[0])!r}: {error}") from None


def calibration_split(metadata):
    """The split a prepared dataset is calibrated on: "train", else its only one.

    Raises:
        CalibrationError: no training split among several.
    """
    splits = sorted(metadata.get("splits") or {})
    if "train" in splits or len(splits) == 1:
        return "train" if "train" in splits else splits[0]
    raise CalibrationError(f"Expected a 'train' split (or a single split) to calibrate on. "
                           f"Received: splits {splits}")


def check_calibration_folder(folder, flow=False):
    """Checks a folder to calibrate on, before any work: a prepared dataset
    (its training split, with flow for a flow stream) or a folder of videos.

    Raises:
        CalibrationError: neither, or a dataset that cannot calibrate.
    """
    metadata = dataset_metadata(folder)
    if metadata is None:
        check_video_folder(folder)
        return
    calibration_split(metadata)
    if flow and not metadata.get("flow"):
        raise CalibrationError(f"Expected a dataset with flow to calibrate a flow stream. "
                               f"Received: {str(folder)!r} (prepared without flow)")


def check_video_folder(folder):
    """The folder's video files; a `CalibrationError` when it has none.

    Example:

    >>> check_video_folder("/tmp")  # doctest: +SKIP
    Traceback (most recent call last):
    CalibrationError: Expected at least one calibration clip. Received: 0 clips from '/tmp' ...
    """
    files = video_files(folder)
    if not files:
        raise CalibrationError(f"Expected at least one calibration clip. Received: 0 clips "
                               f"from {str(folder)!r} (no video files: "
                               f"{', '.join(VIDEO_EXTENSIONS)})")
    return files


def clip_starts(num_video_frames, clip_length, count, phase=0.0):
    """First frames of `count` clips spread evenly over a video.

    Args:
        num_video_frames: the video's length.
        clip_length: frames per clip (a shorter video is looped, as the paper
            loops short videos).
        count: clips wanted.
        phase: shift of every start by this fraction of the spacing, in
            [0, 1): clips at phase 0.5 lie between those at phase 0 (held-out
            clips of the same videos).

    Returns:
        A list of `count` ints.

    Example:

    >>> clip_starts(100, 16, 3), clip_starts(100, 16, 3, phase=0.5)
    ([0, 28, 56], [14, 42, 70])
    """
    room = max(num_video_frames - clip_length, 0)
    step = (room + 1) / count
    return [min(int((k + phase) * step), room) for k in range(count)]


def _short_side(image_size):
    return max(int(image_size), int(round(image_size * _SHORT_SIDE_RATIO)))


def _center_crop(frames, size):
    from i3d_keras.data import streaming  # noqa: PLC0415

    try:
        return streaming.center_crop_np(frames, size)
    except ValueError as error:
        raise CalibrationError(str(error)) from None


def video_calibration_clips(folder, clip_shapes, num_clips=DEFAULT_CALIBRATION_CLIPS, *,
                            flow_method="tvl1", phase=0.0):
    """Clips from a folder of videos, spread over the videos and over time.

    Every video is decoded at 25 fps with its short side resized to
    `256 / 224` times the crop (256 for 224-pixel crops), and gives about
    `num_clips / videos` clips of the exported length, evenly spaced
    (`clip_starts`), centre-cropped; RGB is scaled to [-1, 1], flow (for
    flow streams) computed on the resized frames with `flow_method`
    (`i3d_keras.data.flow.compute_flow`), then cropped.

    Args:
        folder: a folder of videos (`VIDEO_EXTENSIONS`).
        clip_shapes: `{"rgb": (T, S, S, 3), "flow": (T, S, S, 2)}`: the
            streams and the exported clip shape.
        num_clips: clips in all.
        flow_method: `"tvl1"` (the paper's), `"dis"` or `"farneback"`.
        phase: see `clip_starts` (0.5: clips between those of phase 0).

    Returns:
        A list of `{stream: float32 [1, T, S, S, C]}`.

    Raises:
        CalibrationError: no video in the folder.
        i3d_keras.data.video.VideoDecodeError: a video that cannot be read.
    """
    files = check_video_folder(folder)
    (frames_per_clip, size) = next(iter(clip_shapes.values()))[:2]
    clips = []
    estimator = flow_lib.create_flow_estimator(flow_method) if "flow" in clip_shapes else None
    for i, path in enumerate(files):
        count = num_clips // len(files) + (1 if i < num_clips % len(files) else 0)
        if count == 0:
            continue
        frames = video_lib.read_video(path, fps=25.0, short_side=_short_side(size))
        for start in clip_starts(len(frames), frames_per_clip, count, phase):
            indices = (start + np.arange(frames_per_clip)) % len(frames)
            clip = {}
            if "rgb" in clip_shapes:
                rgb = _center_crop(frames[indices], size).astype(np.float32)
                clip["rgb"] = (rgb * (2.0 / 255.0) - 1.0)[None]
            if "flow" in clip_shapes:
                following = np.concatenate([indices, [min(indices[-1] + 1, len(frames) - 1)]])
                flow = flow_lib.compute_flow(frames[following], estimator=estimator)[:-1]
                clip["flow"] = _center_crop(flow, size)[None].astype(np.float32)
            clips.append(clip)
    return clips


def _as_clips(element, names):
    """`[{stream: [1, T, H, W, C]}, ...]` from one dataset element or array."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        element = element[0]  # (inputs, labels[, weights])
    if isinstance(element, dict):
        arrays = {k: np.asarray(element[k], np.float32) for k in names if k in element}
        missing = [k for k in names if k not in arrays]
        if missing:
            raise CalibrationError(f"Expected calibration clips for the streams {names}. "
                                   f"Received: clips with {sorted(element)}")
    else:
        if len(names) != 1:
            raise CalibrationError(f"Expected calibration clips as dicts {{'rgb', 'flow'}} for "
                                   f"a two-stream model. Received: {type(element).__name__}")
        arrays = {names[0]: np.asarray(element, np.float32)}
    batched = {k: v if v.ndim == 5 else v[None] for k, v in arrays.items()}
    count = len(next(iter(batched.values())))
    return [{k: v[i:i + 1] for k, v in batched.items()} for i in range(count)]


def _describe(source):
    if isinstance(source, (str, os.PathLike)):
        return repr(str(source))
    return f"a {type(source).__module__}.{type(source).__name__}"


def dataset_clips(folder, clip_shapes, split=None):
    """Clips of a prepared dataset's split (TFRecords and `NAME.metadata.json`):
    one centre clip of the exported length per video, centre-cropped, in the
    shards' order (their videos shuffled across classes), as the evaluation
    pipeline reads them.

    Args:
        folder: the dataset's folder.
        clip_shapes: `{"rgb": (T, H, W, 3), "flow": (T, H, W, 2)}`.
        split: default `calibration_split` ("train", else the only split).

    Raises:
        CalibrationError: see `check_calibration_folder`.
    """
    from i3d_keras.data import input_pipeline  # noqa: PLC0415 (TensorFlow)

    check_calibration_folder(folder, flow="flow" in clip_shapes)
    split = split or calibration_split(dataset_metadata(folder))
    frames, height, width = next(iter(clip_shapes.values()))[:3]
    modality = "both" if len(clip_shapes) == 2 else next(iter(clip_shapes))
    return input_pipeline.load_split(folder, split, training=False, modality=modality,
                                     num_frames=frames, crop_size=(height, width),
                                     batch_size=None)


def calibration_clips(source, clip_shapes, num_clips=DEFAULT_CALIBRATION_CLIPS, *,
                      flow_method="tvl1"):
    """Up to `num_clips` calibration clips of the exported shape.

    Args:
        source: a folder of videos (`video_calibration_clips`), a folder
            made by `tools/prepare_dataset.py` (its training clips:
            `dataset_clips`), a `tf.data.Dataset` or any iterable of clips: arrays `[T, H, W, C]`
            or batches `[B, T, H, W, C]`, dicts `{"rgb", "flow"}` of those,
            or `(inputs, labels)` pairs; or a function returning such an
            iterable (the LiteRT converter's `representative_dataset`).
        clip_shapes: `{"rgb": (T, H, W, 3), "flow": (T, H, W, 2)}`.
        num_clips: the most clips used.
        flow_method: how a folder's videos get their flow.

    Returns:
        A list of `{stream: float32 [1, T, H, W, C]}`.

    Raises:
        CalibrationError: no clip, or clips of another shape than exported.

    Example:

    >>> train, _ = motion_datasets(num_train=64, num_frames=8, size=32)
    >>> len(calibration_clips(train, {"rgb": (8, 32, 32, 3)}, num_clips=16))
    16
    """
    if not isinstance(num_clips, int) or num_clips < 1:
        raise CalibrationError(f"Expected a positive number of calibration clips. "
                               f"Received: num_clips={num_clips!r}")
    names = sorted(clip_shapes)
    described = _describe(source)
    if isinstance(source, (str, os.PathLike)) and dataset_metadata(source) is not None:
        source = dataset_clips(source, clip_shapes)
    if isinstance(source, (str, os.PathLike)):
        clips = video_calibration_clips(source, clip_shapes, num_clips, flow_method=flow_method)
    else:
        if callable(source) and not hasattr(source, "__iter__"):
            source = source()
        clips = []
        for element in source:
            clips.extend(_as_clips(element, names))
            if len(clips) >= num_clips:
                break
        clips = clips[:num_clips]
    if not clips:
        raise CalibrationError(f"Expected at least one calibration clip. Received: 0 clips "
                               f"from {described}")
    for clip in clips:
        for name, shape in clip_shapes.items():
            if tuple(clip[name].shape[1:]) != tuple(shape):
                raise CalibrationError(
                    f"Expected {name!r} calibration clips of shape {tuple(shape)} (the exported "
                    f"clip). Received: shape={tuple(clip[name].shape[1:])}")
    return clips


__all__ = ["DEFAULT_CALIBRATION_CLIPS", "VIDEO_EXTENSIONS", "CalibrationError",
           "calibration_clips", "calibration_split", "check_calibration_folder",
           "check_video_folder", "clip_starts", "dataset_clips", "dataset_metadata",
           "video_calibration_clips", "video_files"]
