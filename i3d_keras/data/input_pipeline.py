"""tf.data input pipelines for I3D training and evaluation.

From TFRecord shards (`i3d_keras.data.records`) the pipeline follows the paper
(Carreira & Zisserman, CVPR 2017, Section 4):

  * training: N frames from a random start (videos shorter than N are looped),
    one random `crop_size` crop and a random left-right flip shared by all
    frames (and by RGB and flow, whose x is negated when flipped);
  * evaluation: a centre clip, K evenly spaced clips, or the whole video, with
    a centre crop;
  * RGB scaled to [-1, 1]; flow is already in [-1, 1].

Only the sampled frames are decoded (JPEG/PNG decoding happens in the graph
after sampling), shards are read with parallel interleave, and every stage
uses AUTOTUNE parallelism with prefetching.

Elements are `(inputs, label)`: `inputs` is a float32 tensor
`[batch, N, crop, crop, C]` (C = 3 for "rgb", 2 for "flow"), or for "both" a
dict {"rgb": ..., "flow": ...} whose streams are aligned frame by frame;
"uniform" evaluation adds a clip axis: `[batch, K, N, crop, crop, C]`.
Labels are int32 `[batch]` ("sparse", the default) or float32
`[batch, num_classes]` ("one_hot").

`video_files_dataset` builds the same elements straight from video files
(OpenCV in a Python generator) for quick starts without conversion.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from i3d_keras.data import preprocessing, records
from i3d_keras.data import flow as flow_lib
from i3d_keras.data.video import VideoDecodeError, read_video

PathLike = Union[str, os.PathLike]
MODALITIES = ("rgb", "flow", "both")
EVAL_SAMPLING = ("center", "uniform", "all")
LABEL_MODES = ("sparse", "one_hot")

AUTOTUNE = tf.data.AUTOTUNE


def _resolve_files(files: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    out: List[str] = []
    for f in files:
        f = str(f)
        matched = sorted(tf.io.gfile.glob(f)) if any(c in f for c in "*?[") else [f]
        out += matched
    missing = [f for f in out if not tf.io.gfile.exists(f)]
    if not out or missing:
        raise FileNotFoundError(
            f"No TFRecord shards found. Received: files={files!r}"
            + (f" (missing: {missing[:3]})" if missing else ""))
    return out


def _check_args(modality, num_frames, eval_sampling, label_mode, num_classes, batch_size,
                training):
    if modality not in MODALITIES:
        raise ValueError(f"`modality` must be one of {MODALITIES}. Received: {modality!r}")
    if num_frames < 1:
        raise ValueError(f"`num_frames` must be >= 1. Received: num_frames={num_frames}")
    if eval_sampling not in EVAL_SAMPLING:
        raise ValueError(f"`eval_sampling` must be one of {EVAL_SAMPLING}. "
                         f"Received: {eval_sampling!r}")
    if label_mode not in LABEL_MODES:
        raise ValueError(f"`label_mode` must be one of {LABEL_MODES}. Received: {label_mode!r}")
    if label_mode == "one_hot" and not num_classes:
        raise ValueError("`label_mode='one_hot'` needs `num_classes`. "
                         f"Received: num_classes={num_classes}")
    if not training and eval_sampling == "all" and batch_size and batch_size > 1:
        raise ValueError("Whole-video evaluation (`eval_sampling='all'`) gives clips of "
                         "different lengths: use batch_size=1. "
                         f"Received: batch_size={batch_size}")


def _make_clip(get_rgb: Optional[Callable], get_flow: Optional[Callable], num_video_frames,
               *, training: bool, num_frames: int, crop_size, eval_sampling: str,
               num_clips: int, flip: bool, seed) -> Dict[str, tf.Tensor]:
    """Samples indices, fetches frames through get_rgb/get_flow(flat_indices),
    then crops / flips / scales identically for both streams."""
    mode = "random" if training else eval_sampling
    indices = preprocessing.sample_frame_indices(
        num_video_frames, num_frames, mode, num_clips if mode == "uniform" else 1, seed)
    flat = tf.reshape(indices, [-1])
    streams = {}
    if get_rgb is not None:
        streams["rgb"] = get_rgb(flat)
    if get_flow is not None:
        streams["flow"] = get_flow(flat)
    ref = next(iter(streams.values()))
    shape = tf.shape(ref)
    if crop_size is not None:
        ch, cw = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
        if training:
            top, left = preprocessing.random_crop_offsets(shape[1], shape[2], crop_size, seed)
        else:
            top, left = (shape[1] - ch) // 2, (shape[2] - cw) // 2
        check = tf.debugging.assert_equal(
            tf.logical_and(shape[1] >= ch, shape[2] >= cw), True,
            message=f"frames are smaller than the crop size {crop_size}")
        with tf.control_dependencies([check]):
            streams = {k: preprocessing.crop(v, top, left, crop_size) for k, v in streams.items()}
    if training and flip:
        seed2 = None if seed is None else preprocessing._stateless_seed(seed)
        do_flip = preprocessing._uniform_int(2, seed2, 3) > 0
        streams = {k: preprocessing.random_flip_left_right(v, k == "flow", flip=do_flip)
                   for k, v in streams.items()}
    out = {}
    for k, v in streams.items():
        v = preprocessing.scale_rgb(v) if k == "rgb" else tf.cast(v, tf.float32)
        channels = 3 if k == "rgb" else 2
        if isinstance(crop_size, int):
            hw = [crop_size, crop_size]
        elif crop_size is not None:
            hw = list(crop_size)
        else:
            hw = [None, None]
        if mode == "uniform":
            v = tf.reshape(v, tf.concat([[num_clips, num_frames], tf.shape(v)[1:]], 0))
            v = tf.ensure_shape(v, [num_clips, num_frames] + hw + [channels])
        elif mode == "all":
            v = tf.ensure_shape(v, [None] + hw + [channels])
        else:
            v = tf.ensure_shape(v, [num_frames] + hw + [channels])
        out[k] = v
    return out


def _finish(features: Dict[str, tf.Tensor], label, modality, label_mode, num_classes):
    label = tf.cast(label, tf.int32)
    if label_mode == "one_hot":
        label = tf.one_hot(label, num_classes, dtype=tf.float32)
    inputs = features if modality == "both" else features[modality]
    return inputs, label


def build_dataset(files: Union[PathLike, Sequence[PathLike]], training: bool,
                  modality: str = "rgb", num_frames: int = 64, crop_size=224,
                  batch_size: Optional[int] = 8, eval_sampling: str = "center",
                  num_clips: int = 1, label_mode: str = "sparse",
                  num_classes: Optional[int] = None, flip: bool = True,
                  shuffle_buffer: int = 64, seed: Optional[int] = None,
                  deterministic: Optional[bool] = None, repeat: bool = False,
                  drop_remainder: Optional[bool] = None, cycle_length: int = 8,
                  verify: bool = False) -> tf.data.Dataset:
    """Builds the training or evaluation dataset from TFRecord shards.

    Args:
      files: a glob pattern, a shard path, or a list of them.
      training: random clip, crop and flip (True) or evaluation sampling.
      modality: "rgb", "flow" or "both" (two-stream, aligned).
      num_frames: N, frames per clip (paper: 64 for training).
      crop_size: int or (h, w) crop (paper: 224); None keeps full frames
        (they must then all have the same size to batch).
      batch_size: clips per batch; None leaves the dataset unbatched.
      eval_sampling: evaluation only: "center", "uniform" (K = num_clips
        clips) or "all" (the whole video, batch_size 1).
      num_clips: K for "uniform".
      label_mode: "sparse" (int32) or "one_hot" (needs num_classes).
      num_classes: number of classes, for one-hot labels.
      flip: random left-right flips in training. Disable for data whose labels
        depend on direction (e.g. the built-in motion dataset).
      shuffle_buffer: training shuffle buffer, in videos.
      seed: makes file order, shuffling, sampling, crops and flips
        reproducible (stateless random ops seeded per element).
      deterministic: element order; default: True for evaluation or when a
        seed is given, else False (faster).
      repeat: repeat forever (training with steps_per_epoch).
      drop_remainder: drop the last partial batch (default: training).
      cycle_length: shards read concurrently.
      verify: read every shard once first, raising `records.CorruptShardError`
        naming a corrupt file (TensorFlow's read errors do not name it).

    Returns:
      A `tf.data.Dataset` of (inputs, labels); see the module docstring.
    """
    _check_args(modality, num_frames, eval_sampling, label_mode, num_classes, batch_size,
                training)
    paths = _resolve_files(files)
    if verify:
        records.verify_shards(paths)
    if deterministic is None:
        deterministic = (not training) or seed is not None
    with_rgb = modality in ("rgb", "both")
    with_flow = modality in ("flow", "both")

    ds = tf.data.Dataset.from_tensor_slices(paths)
    if training:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(paths)),
                       num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if seed is not None:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed)))
    else:
        ds = ds.map(lambda s: (s, tf.constant(-1, tf.int64)))
    use_seed = seed is not None

    def _process(serialized, element_seed):
        parsed = records.parse_sequence_example(serialized, with_rgb, with_flow)
        n = tf.shape(parsed["rgb" if with_rgb else "flow"])[0]
        get_rgb = (lambda idx: records.decode_rgb(tf.gather(parsed["rgb"], idx))) \
            if with_rgb else None
        get_flow = (lambda idx: records.decode_flow(tf.gather(parsed["flow"], idx))) \
            if with_flow else None
        feats = _make_clip(get_rgb, get_flow, n, training=training, num_frames=num_frames,
                           crop_size=crop_size, eval_sampling=eval_sampling,
                           num_clips=num_clips, flip=flip,
                           seed=tf.stack([element_seed, tf.constant(7, tf.int64)])
                           if use_seed else None)
        return _finish(feats, parsed["label"], modality, label_mode, num_classes)

    ds = ds.map(_process, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if batch_size:
        drop = training if drop_remainder is None else drop_remainder
        ds = ds.batch(batch_size, drop_remainder=drop)
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)


def load_split(directory: PathLike, split: str, training: Optional[bool] = None,
               **kwargs) -> tf.data.Dataset:
    """`build_dataset` for one split of a `prepare_dataset` output folder.

    Reads `NAME.metadata.json` for the shard pattern and the number of classes.

    Args:
      directory: the folder holding the shards and the metadata file.
      split: "train", "test", "val", ... as in the metadata.
      training: default: split == "train".
      **kwargs: passed to `build_dataset`.
    """
    meta = records.read_metadata(directory)
    if split not in meta["splits"]:
        raise ValueError(f"Split must be one of {sorted(meta['splits'])}. "
                         f"Received: split={split!r}")
    pattern = str(Path(directory) / meta["splits"][split]["file_pattern"])
    kwargs.setdefault("num_classes", meta["num_classes"])
    return build_dataset(pattern, split == "train" if training is None else training, **kwargs)


def video_files_dataset(paths: Sequence[PathLike], labels: Sequence[int], training: bool,
                        modality: str = "rgb", num_frames: int = 64, crop_size=224,
                        batch_size: Optional[int] = 8, eval_sampling: str = "center",
                        num_clips: int = 1, label_mode: str = "sparse",
                        num_classes: Optional[int] = None, flip: bool = True,
                        fps: Optional[float] = 25.0, short_side: Optional[int] = 256,
                        flow_method: str = "dis", seed: Optional[int] = None
                        ) -> tf.data.Dataset:
    """The same clips as `build_dataset`, decoded from video files on the fly.

    For quick starts: videos are decoded with OpenCV (`read_video`) in a Python
    generator, which holds the GIL and decodes every frame, so this is much
    slower than TFRecords. Flow (modality "flow"/"both") is computed on the
    fly with `flow_method` (DIS by default: TV-L1 would take ~1 s per frame).
    A video that cannot be decoded is logged and skipped.

    Args:
      paths: video files.
      labels: their integer labels.
      training: as in `build_dataset`, and so are `modality`, `num_frames`,
        `crop_size`, `batch_size`, `eval_sampling`, `num_clips`, `label_mode`,
        `num_classes`, `flip` and `seed`.
      fps: decode frame rate.
      short_side: decode short side.
      flow_method: "dis", "farneback" or "tvl1".
    """
    _check_args(modality, num_frames, eval_sampling, label_mode, num_classes, batch_size,
                training)
    if len(paths) != len(labels):
        raise ValueError(f"`paths` and `labels` must have the same length. "
                         f"Received: {len(paths)} paths, {len(labels)} labels")
    if not len(paths):
        raise ValueError("`paths` is empty")
    with_rgb = modality in ("rgb", "both")
    with_flow = modality in ("flow", "both")
    items = [(str(p), int(l)) for p, l in zip(paths, labels)]
    epoch = [0]

    def _gen():
        order = list(range(len(items)))
        if training:
            random.Random(None if seed is None else seed + epoch[0]).shuffle(order)
            epoch[0] += 1
        for i in order:
            path, label = items[i]
            try:
                frames = read_video(path, fps=fps, short_side=short_side)
            except VideoDecodeError as e:
                logging.warning("Skipping video: %s", e)
                continue
            flow = flow_lib.compute_flow(frames, flow_method) if with_flow else \
                np.zeros((0, 0, 0, 2), np.float32)
            yield (frames if with_rgb else np.zeros((0, 0, 0, 3), np.uint8)), flow, label

    ds = tf.data.Dataset.from_generator(_gen, output_signature=(
        tf.TensorSpec([None, None, None, 3], tf.uint8),
        tf.TensorSpec([None, None, None, 2], tf.float32),
        tf.TensorSpec([], tf.int32)))
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed if seed is not None else 0)))
    use_seed = seed is not None

    def _process(video, element_seed):
        rgb, flw, label = video
        n = tf.shape(rgb if with_rgb else flw)[0]
        feats = _make_clip(
            (lambda idx: tf.gather(rgb, idx)) if with_rgb else None,
            (lambda idx: tf.gather(flw, idx)) if with_flow else None, n,
            training=training, num_frames=num_frames, crop_size=crop_size,
            eval_sampling=eval_sampling, num_clips=num_clips, flip=flip,
            seed=tf.stack([element_seed, tf.constant(7, tf.int64)]) if use_seed else None)
        return _finish(feats, label, modality, label_mode, num_classes)

    ds = ds.map(_process, num_parallel_calls=AUTOTUNE, deterministic=True)
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(AUTOTUNE)
