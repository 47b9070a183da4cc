"""Evaluation of I3D stream and two-stream models on prepared TFRecord shards.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017. The paper tests on the centre 224x224
crop of whole videos and fuses the two streams by adding their logits
(Section 2.5 and 4); common alternatives are K clips x 1 or 3 crops averaged.

Protocols (`PROTOCOLS`):

* `"center"`: one clip of `num_frames` frames from the middle of the video
  (short videos looped), centre crop;
* `"clips"`: `num_clips` (K) evenly spaced clips x `num_crops` crops (1: centre;
  3: left/centre/right along the long side of landscape frames,
  top/centre/bottom of portrait ones), logits averaged over the K x crops views;
* `"whole"`: every frame of the video in one clip (the paper's test setting),
  centre crop (or 3 crops averaged).

Views are averaged as logits: the I3D head itself averages logits over time,
so averaging clips is the nearest thing to one longer clip. Streams are fused
by a weighted sum of logits (default weights 1: the paper's sum).

Videos come from prepared shards, one example (a whole clip of a dataset,
seconds long) at a time: the "clips" and "whole" protocols need every frame
of that one video, nothing more. Long videos (minutes to hours) are not
dataset examples; classify them window by window with
`i3d_keras.tasks.inference.predict_windows`, which streams them.

Metrics (`compute_metrics`): top-1 and top-5 accuracy, mean class accuracy
(mean over the classes present of per-class recall, as reported for UCF101 /
HMDB51 / Kinetics), per-class accuracy and the confusion matrix (rows: true
class, columns: predicted). `evaluate` writes a JSON report and a
confusion-matrix PNG (`plot_confusion_matrix`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from i3d_keras.data import input_pipeline, parallel, records
from i3d_keras.utils import outputs, plotting
from i3d_keras.tasks import inference

PathLike = Union[str, os.PathLike]

PROTOCOLS = ("center", "clips", "whole")
_EVAL_SAMPLING = {"center": "center", "clips": "uniform", "whole": "all"}
DEFAULT_NUM_FRAMES = 64
REPORT_NAME = "evaluation.json"
CONFUSION_NAME = "confusion_matrix.png"


class EvaluationError(ValueError):
    """An evaluation that cannot run: missing shards, mismatched classes, ..."""


# ----------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------

def _not_a_folder(path: Path) -> str:
    """Why `path` is not a dataset folder: a file in it was named, or nothing is there."""
    return "a file: pass the folder that holds it" if path.exists() else "no such folder"


def confusion_matrix(predictions, labels, num_classes: int) -> np.ndarray:
    """Counts `[num_classes, num_classes]`: row = true class, column = predicted.

    Example:

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2)
    array([[1, 1],
           [0, 1]])
    """
    predictions = np.asarray(predictions, np.int64).reshape(-1)
    labels = np.asarray(labels, np.int64).reshape(-1)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def top_k_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose label is among the `k` highest scores.

    Ties are broken by class index (lower first), as `np.argsort(kind="stable")`.

    Example:

    >>> top_k_accuracy([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]], [2, 0], k=2)
    1.0
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if not len(labels):
        return float("nan")
    k = min(k, scores.shape[-1])
    top = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def compute_metrics(scores, labels, num_classes: Optional[int] = None,
                    class_names: Optional[Sequence[str]] = None) -> Dict:
    """Classification metrics of video-level scores.

    Reference: Carreira & Zisserman, CVPR 2017 (top-1 / top-5 on Kinetics,
    accuracy on UCF101 / HMDB51).

    Args:
        scores: `[num_videos, num_classes]` logits or probabilities (only
            their order matters).
        labels: `[num_videos]` true class indices.
        num_classes: default: `scores.shape[-1]`.
        class_names: optional names for the per-class list.

    Returns:
        A dict: `num_videos`, `top1`, `top5` (top-min(5, classes)),
        `mean_class_accuracy` (mean over the classes with videos of their
        recall), `per_class` (list of `{"index", "class", "videos",
        "accuracy"}`; accuracy None for a class without videos),
        `confusion_matrix` (np.int64 `[C, C]`, rows true, columns predicted),
        and `most_confused` (the 10 largest off-diagonal cells).

    Raises:
        EvaluationError: shapes that do not fit, or labels outside [0, C).

    Example:

    >>> m = compute_metrics([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]], [0, 1, 1])
    >>> m["top1"], m["mean_class_accuracy"]
    (0.6666666666666666, 0.75)
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise EvaluationError(f"Expected scores [num_videos, num_classes] and labels "
                              f"[num_videos]. Received: scores {scores.shape}, labels "
                              f"{labels.shape}")
    num_classes = num_classes or scores.shape[-1]
    if scores.shape[-1] != num_classes:
        raise EvaluationError(f"Expected {num_classes} scores per video. Received: "
                              f"{scores.shape[-1]}")
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise EvaluationError(f"Expected labels in [0, {num_classes}). Received: "
                              f"label {int(bad[0])} ({bad.size} such videos; -1 means unlabelled)")
    predictions = np.argmax(scores, axis=-1) if len(labels) else np.zeros(0, np.int64)
    cm = confusion_matrix(predictions, labels, num_classes)
    counts = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(cm) / counts
    present = counts > 0
    names = list(class_names) if class_names is not None else [str(i) for i in
                                                               range(num_classes)]
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:10]
    most_confused = [
        {"true": names[i], "predicted": names[j], "count": int(off[i, j])}
        for i, j in zip(*np.unravel_index(flat, off.shape)) if off[i, j] > 0]
    return {
        "num_videos": int(len(labels)),
        "top1": top_k_accuracy(scores, labels, 1),
        "top5": top_k_accuracy(scores, labels, 5),
        "mean_class_accuracy": float(np.mean(per_class[present])) if present.any()
        else float("nan"),
        "per_class": [{"index": i, "class": names[i], "videos": int(counts[i]),
                       "accuracy": float(per_class[i]) if present[i] else None}
                      for i in range(num_classes)],
        "confusion_matrix": cm,
        "most_confused": most_confused,
    }


def plot_confusion_matrix(cm, class_names: Optional[Sequence[str]], path: PathLike,
                          title: str = "Confusion matrix", normalize: bool = True) -> Path:
    """Writes a confusion-matrix PNG readable from 10 to 400 classes.

    Cells are coloured by row-normalised rate (the recall of each true class)
    when `normalize`, so rare classes stay visible. The figure grows with the
    class count (about 0.12 inch per class above 40 classes) and the tick
    labels shrink to fit, every class keeping its name; counts are written in
    the cells up to 25 classes.

    Args:
        cm: `[C, C]` counts, rows true, columns predicted.
        class_names: names for the axes (default: indices).
        path: the PNG to write.
        title: figure title.
        normalize: colour by row fraction instead of counts.

    Returns:
        The written path.

    Example:

    >>> plot_confusion_matrix(np.eye(10, dtype=int), None, "/tmp/cm.png")  # doctest: +SKIP
    """
    plt = plotting.pyplot()

    cm = np.asarray(cm)
    n = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(n))]
    rows = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shown = np.where(rows > 0, cm / np.maximum(rows, 1), 0.0) if normalize else cm
    side = max(6.0, min(0.12 * n, 60.0) + 3.0)
    longest = max((len(s) for s in names), default=1)
    cell = (side - 1.2) / max(n, 1)  # inches per class on the axes
    font = float(np.clip(cell * 72 * 0.75, 2.5, 10.0))  # the labels fit their rows
    margin = min(longest * font / 72 * 0.6 + 0.8, 6.0)  # inches for the labels
    fig = plt.figure(figsize=(side + margin, side + margin), dpi=100)
    ax = fig.add_axes([margin / (side + margin), margin / (side + margin),
                       (side - 1.2) / (side + margin), (side - 1.2) / (side + margin)])
    image = ax.imshow(shown, cmap="Blues", interpolation="nearest",
                      vmin=0, vmax=1 if normalize else max(1, int(cm.max())))
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=font)
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel("predicted class", fontsize=max(font, 10))
    ax.set_ylabel("true class", fontsize=max(font, 10))
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title} ({n} classes, {int(cm.sum())} videos, top-1 {accuracy:.1%})"
                 + (", rows normalised" if normalize else ""), fontsize=max(font, 11))
    ax.tick_params(length=2 if n > 40 else 4)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                            color="white" if shown[i, j] > 0.5 else "black")
    cax = fig.add_axes([(margin + side - 1.0) / (side + margin), margin / (side + margin),
                        0.25 / (side + margin), (side - 1.2) / (side + margin)])
    fig.colorbar(image, cax=cax)
    path = Path(path)
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------
# Views (crops) of evaluation clips
# ----------------------------------------------------------------------------

def crop_views(clip, size, num_crops: int = 1):
    """Crops `num_crops` views of a clip: 1 = centre; 3 = both ends and the
    centre along the long side (left/centre/right for landscape frames,
    top/centre/bottom for portrait), centred across the short side.

    Args:
        clip: `[T, H, W, C]` or `[K, T, H, W, C]` tensor.
        size: int or (height, width).
        num_crops: 1 or 3.

    Returns:
        `[V, T, h, w, C]` with V = num_crops (times K), clip-major.
    """
    if num_crops not in (1, 3):
        raise ValueError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
    clip = tf.convert_to_tensor(clip)
    if clip.shape.rank == 4:
        clip = clip[tf.newaxis]
    ch, cw = inference._size_pair(size)
    shape = tf.shape(clip)
    h, w = shape[2], shape[3]
    check = tf.debugging.assert_greater_equal(
        tf.stack([h, w]), tf.constant([ch, cw]),
        message=f"frames are smaller than the crop size {ch}x{cw}")
    with tf.control_dependencies([check]):
        top_c, left_c = (h - ch) // 2, (w - cw) // 2
    if num_crops == 1:
        offsets = [(top_c, left_c)]
    else:
        landscape = w >= h
        offsets = [(tf.where(landscape, top_c, pos_h), tf.where(landscape, pos_w, left_c))
                   for pos_h, pos_w in ((0, 0), (top_c, left_c), (h - ch, w - cw))]
    views = tf.stack([clip[:, :, t:t + ch, l:l + cw] for t, l in offsets], axis=1)
    views = tf.reshape(views, tf.concat([[-1], tf.shape(views)[2:]], 0))
    return tf.ensure_shape(views, [None, clip.shape[1], ch, cw, clip.shape[-1]])


# ----------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------

def _choose_split(meta: Dict, split: Optional[str], directory) -> str:
    splits = sorted(meta.get("splits", {}))
    if split is None:
        for candidate in ("test", "val", "validation"):
            if candidate in splits:
                return candidate
        raise EvaluationError(f"Expected a 'test' or 'val' split in '{directory}'; pass "
                              f"split=. Received: splits {splits}")
    if split not in splits:
        raise EvaluationError(f"Expected a split among {splits} in '{directory}'. "
                              f"Received: split={split!r}")
    return split


def dataset_info(directory: PathLike, split: Optional[str] = None) -> Dict:
    """Reads a prepared dataset's metadata and checks the split's shards exist.

    Returns:
        `{"metadata", "split", "files", "num_videos", "classes", "has_flow"}`.

    Raises:
        EvaluationError: no metadata, no such split, or no shards.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise EvaluationError(f"Expected a dataset folder (from tools/prepare_dataset.py). "
                              f"Received: '{directory}' ({_not_a_folder(directory)})")
    try:
        meta = records.read_metadata(directory)
    except (FileNotFoundError, ValueError) as error:
        shards = sorted(p.name for p in directory.glob(f"*{records.SHARD_SUFFIX}"))
        raise EvaluationError(
            f"Expected a prepared dataset folder with one *{records.METADATA_SUFFIX} and "
            f"its *{records.SHARD_SUFFIX} shards. Received: '{directory}' with "
            f"{len(shards)} shards ({error})") from None
    split = _choose_split(meta, split, directory)
    pattern = meta["splits"][split].get("file_pattern", "")
    files = sorted(str(p) for p in directory.glob(pattern)) if pattern else []
    if not files:
        raise EvaluationError(
            f"Expected TFRecord shards matching '{pattern}' for split {split!r}. Received: "
            f"none in '{directory}'")
    classes = meta.get("classes") or [str(i) for i in range(int(meta["num_classes"]))]
    return {"metadata": meta, "split": split, "files": files,
            "num_videos": meta["splits"][split].get("num_videos"), "classes": list(classes),
            "has_flow": bool(meta.get("flow"))}


#: What a training run (`i3d_keras.tasks.training.train`) writes beside its models.
RUN_CONFIG_NAME = "config.json"
# The parts of a run's recipe that define its motion validation clips.
_MOTION_KEYS = ("frames", "image_size", "seed", "num_val")


def run_config(model_path: PathLike) -> Optional[Dict]:
    """The training configuration of the run a model file came from: the
    `config.json` in its folder (written by `i3d_keras.tasks.training.train`), or
    None when there is none (a converted checkpoint, a download, ...)."""
    path = Path(model_path)
    config = (path if path.is_dir() else path.parent) / RUN_CONFIG_NAME
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text())
    except ValueError as error:
        raise EvaluationError(f"Expected a JSON training configuration. Received: '{config}' "
                              f"({error})") from None
    return value if isinstance(value, dict) else None


def run_dataset(model_paths: Sequence[PathLike], directory: PathLike) -> Dict:
    """The data to evaluate models from `tools/train.py` on, when no dataset is given.

    A run on prepared shards: that dataset (its validation split). A run on the
    built-in motion dataset: its validation clips with the run's recipe (clip
    length, size, seed, number of clips), written as shards into `directory`,
    the same clips training validated on (Carreira & Zisserman, CVPR 2017: the
    streams are trained apart and fused at test time, so both runs must share
    the recipe).

    Args:
        model_paths: the model files (`runs/NAME/best.keras`, ...).
        directory: where the motion clips go (e.g. a temporary folder).

    Returns:
        `{"dataset": folder, "split": name or None, "description": text}`.

    Raises:
        EvaluationError: a model without a run folder, or runs whose data differ.

    Example:

    >>> run_dataset(["runs/i3d_rgb_motion/best.keras",
    ...              "runs/i3d_flow_motion/best.keras"], "/tmp/motion")  # doctest: +SKIP
    {'dataset': '/tmp/motion', 'split': 'val', 'description': 'the built-in motion ...'}
    """
    from i3d_keras.data import motion_dataset  # noqa: PLC0415

    configs = []
    for path in model_paths:
        config = run_config(path)
        if config is None:
            raise EvaluationError(
                "Expected a dataset (--dataset), or models trained by tools/train.py (a run "
                f"folder with {RUN_CONFIG_NAME}). Received: '{path}' (no {RUN_CONFIG_NAME} "
                "beside it)")
        configs.append(config)
    datasets = {c.get("dataset") for c in configs}
    if len(datasets) != 1:
        raise EvaluationError("Expected models trained on the same dataset. Received: runs on "
                              f"{sorted(str(d) for d in datasets)}; pass --dataset")
    dataset = datasets.pop()
    if dataset is not None:
        return {"dataset": str(dataset), "split": configs[0].get("val_split"),
                "description": f"{dataset}, the dataset the model was trained on"}
    recipes = {tuple(c.get(k) for k in _MOTION_KEYS) for c in configs}
    if len(recipes) != 1:
        raise EvaluationError(
            "Expected runs with the same motion recipe (frames, image_size, seed, num_val). "
            f"Received: {[dict(zip(_MOTION_KEYS, r)) for r in sorted(recipes, key=str)]}; "
            "pass --dataset")
    frames, size, seed, num_val = recipes.pop()
    frames = frames or motion_dataset.DEFAULT_NUM_FRAMES
    size = size or motion_dataset.DEFAULT_SIZE
    num_val = num_val or motion_dataset.DEFAULT_NUM_VAL
    seed = seed or 0
    with_flow = any(c.get("stream") in ("flow", "both") for c in configs)
    motion_dataset.write_motion_dataset(directory, num_train=0, num_val=num_val,
                                        num_frames=frames, size=size, seed=seed,
                                        with_flow=with_flow)
    return {"dataset": str(directory), "split": "val",
            "description": f"the built-in motion dataset, the validation clips of the run "
                           f"({num_val} clips of {frames} frames x {size}x{size}, seed {seed})"}


def check_classes(predictor: "inference.Predictor", classes: Sequence[str]) -> None:
    """Raises EvaluationError when the model's classes do not match the data's:
    another count, or (when the model knows its class names) other names or
    another order."""
    if predictor.num_classes != len(classes):
        raise EvaluationError(
            f"The model predicts {predictor.num_classes} classes but the dataset has "
            f"{len(classes)}: evaluate a model trained on this dataset (or fine-tune it). "
            f"Received: model classes={predictor.num_classes}, dataset classes={len(classes)}")
    if predictor.class_names is not None and list(predictor.class_names) != list(classes):
        i = next(i for i, (a, b) in enumerate(zip(predictor.class_names, classes)) if a != b)
        raise EvaluationError(
            f"The model's class names differ from the dataset's (class {i}: model "
            f"{predictor.class_names[i]!r}, dataset {classes[i]!r}). Received: "
            f"{len(classes)} classes in another order or naming")


def _protocol_args(protocol, num_clips, num_crops):
    if protocol not in PROTOCOLS:
        raise EvaluationError(f"`protocol` must be one of {PROTOCOLS}. "
                              f"Received: protocol={protocol!r}")
    if num_crops not in (1, 3):
        raise EvaluationError(f"`num_crops` must be 1 or 3. Received: num_crops={num_crops}")
    if protocol == "clips" and num_clips < 1:
        raise EvaluationError(f"`num_clips` must be >= 1. Received: num_clips={num_clips}")


def _views_dataset(files, streams, protocol, num_frames, num_clips, num_crops, crop):
    modality = "both" if len(streams) == 2 else streams[0]
    ds = input_pipeline.build_dataset(
        files, training=False, modality=modality, num_frames=num_frames, crop_size=None,
        batch_size=None, eval_sampling=_EVAL_SAMPLING[protocol],
        num_clips=num_clips if protocol == "clips" else 1, deterministic=True)

    def _views(inputs, label):
        if not isinstance(inputs, dict):
            inputs = {streams[0]: inputs}
        return {k: crop_views(v, crop, num_crops) for k, v in inputs.items()}, label

    return ds.map(_views, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def collect_logits(predictor, dataset, *, batch_size: int = 8, total: Optional[int] = None,
                   max_videos: Optional[int] = None, progress: bool = True) -> Dict:
    """Runs a predictor over a dataset of per-video views and averages them.

    Args:
        predictor: an `inference.Predictor`.
        dataset: elements `({stream: [V, T, h, w, C]}, label)`, one per video.
        batch_size: clips (views) per forward pass; views of several videos
            with the same shape are batched together.
        total: number of videos, for the progress line.
        max_videos: stop after this many videos.
        progress: a progress line with ETA on stderr.

    Returns:
        `{"logits": fused [N, C], "parts": {part: [N, C]}, "labels": [N]}`.
    """
    fused_rows, part_rows, labels = [], {p.name: [] for p in predictor.parts}, []
    buffer: List = []  # (inputs, label) of videos waiting for a forward pass
    bar = parallel.Progress(min(total, max_videos) if total and max_videos else
                            (total or max_videos or 0), desc="evaluate", enabled=progress)

    def flush():
        if not buffer:
            return
        counts = [next(iter(x.values())).shape[0] for x, _ in buffer]
        batch = {k: np.concatenate([x[k] for x, _ in buffer]) for k in buffer[0][0]}
        fused, parts = predictor.logits(batch)
        bounds = np.cumsum([0] + counts)
        for i, (_, label) in enumerate(buffer):
            a, b = bounds[i], bounds[i + 1]
            fused_rows.append(fused[a:b].mean(axis=0))
            for name, value in parts.items():
                part_rows[name].append(value[a:b].mean(axis=0))
            labels.append(label)
        bar.update(len(buffer))
        buffer.clear()

    seen = 0
    for inputs, label in dataset:
        inputs = {k: v.numpy() for k, v in inputs.items()}
        shape = {k: v.shape[1:] for k, v in inputs.items()}
        if buffer and ({k: v.shape[1:] for k, v in buffer[0][0].items()} != shape or
                       sum(next(iter(x.values())).shape[0] for x, _ in buffer)
                       + next(iter(inputs.values())).shape[0] > batch_size):
            flush()
        buffer.append((inputs, int(label.numpy())))
        seen += 1
        if max_videos is not None and seen >= max_videos:
            break
    flush()
    bar.close()
    num_classes = predictor.num_classes
    empty = np.zeros((0, num_classes), np.float32)
    return {"logits": np.stack(fused_rows) if fused_rows else empty,
            "parts": {k: np.stack(v) if v else empty for k, v in part_rows.items()},
            "labels": np.asarray(labels, np.int64)}


def _json_metrics(metrics: Dict) -> Dict:
    out = {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "per_class")}
    return out


def evaluate(model, data_dir: PathLike, split: Optional[str] = None, *,
             protocol: str = "center", num_frames: Optional[int] = None, num_clips: int = 10,
             num_crops: int = 1, crop_size=None, batch_size: int = 8,
             stream_weights: Optional[Dict[str, float]] = None,
             output_dir: Optional[PathLike] = None, max_videos: Optional[int] = None,
             progress: bool = True) -> Dict:
    """Evaluates a stream or two-stream model on a prepared dataset split.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017: centre-crop whole-video testing, two-stream fusion by adding logits.

    Args:
        model: an `inference.Predictor`, a Keras stream or two-stream model, a
            dict `{"rgb": model, "flow": model}`, or a path / keyword that
            `inference.load_predictor` loads.
        data_dir: a folder written by `tools/prepare_dataset.py` (or
            `motion_dataset.write_motion_dataset`): shards + `NAME.metadata.json`.
        split: default "test", else "val".
        protocol: "center", "clips" (K clips x crops) or "whole" (see module doc).
        num_frames: frames per clip (default: the clip length the model was
            built for, else 64); for "whole", the minimum length (shorter
            videos are looped).
        num_clips: K for "clips".
        num_crops: 1 (centre) or 3 (along the long side).
        crop_size: crop size (default: the model's input size, else 224).
        batch_size: clips per forward pass.
        stream_weights: `{"rgb": w, "flow": w}` for the fused logits.
        output_dir: where `evaluation.json` and `confusion_matrix.png` go
            (None: nothing written).
        max_videos: evaluate only the first videos (a quick check).
        progress: a progress line with ETA on stderr.

    Returns:
        The report dict (also written as JSON): dataset, protocol, per-stream
        and fused metrics, per-class accuracy, confusion matrix, timings.

    Raises:
        EvaluationError: no shards, classes that do not match, a protocol the
            model cannot run, frames smaller than the crop.

    Example:

    >>> report = evaluate("runs/rgb/best.keras", "data/ucf101", "test",  # doctest: +SKIP
    ...                   protocol="clips", num_clips=10, num_crops=3, output_dir="eval")
    >>> report["metrics"]["top1"]  # doctest: +SKIP
    """
    _protocol_args(protocol, num_clips, num_crops)
    info = dataset_info(data_dir, split)
    try:
        predictor = inference.load_predictor(model, stream_weights=stream_weights)
    except inference.ModelLoadError as error:
        raise EvaluationError(str(error)) from None
    if isinstance(model, inference.Predictor) and stream_weights:
        unknown = set(stream_weights) - set(predictor.stream_weights)
        if unknown:
            raise EvaluationError(f"Expected stream weights for {sorted(predictor.stream_weights)}."
                                  f" Received: stream_weights={stream_weights}")
        predictor = copy.copy(predictor)  # the caller's predictor keeps its weights
        predictor.stream_weights = {**model.stream_weights,
                                    **{k: float(v) for k, v in stream_weights.items()}}
    check_classes(predictor, info["classes"])
    if "flow" in predictor.streams and not info["has_flow"]:
        raise EvaluationError(
            f"The model needs flow but the dataset in '{data_dir}' was prepared without it "
            "(prepare it with flow). Received: a dataset with RGB only")
    if predictor.frames is not None:
        if protocol == "whole":
            raise EvaluationError(
                f"Whole-video evaluation needs a model that takes any clip length. "
                f"Received: a model fixed to {predictor.frames} frames ({predictor.source})")
        if num_frames is not None and num_frames != predictor.frames:
            raise EvaluationError(f"The model takes clips of exactly {predictor.frames} "
                                  f"frames. Received: num_frames={num_frames}")
    num_frames = (num_frames or predictor.frames or predictor.native_frames
                  or DEFAULT_NUM_FRAMES)
    crop = inference._size_pair(crop_size or predictor.image_size)
    dataset = _views_dataset(info["files"], predictor.streams, protocol, num_frames,
                             num_clips, num_crops, crop)
    start = time.monotonic()
    try:
        collected = collect_logits(predictor, dataset, batch_size=batch_size,
                                   total=info["num_videos"], max_videos=max_videos,
                                   progress=progress)
    except tf.errors.DataLossError:
        corrupt = records.find_corrupt_shard(info["files"])
        if corrupt is not None:
            raise EvaluationError(str(corrupt)) from None
        raise
    except tf.errors.InvalidArgumentError as error:
        message = error.message.splitlines()[0]
        raise EvaluationError(f"Evaluation failed on the data of '{data_dir}': {message}. "
                              f"Received: crop={crop[0]}x{crop[1]}") from None
    seconds = time.monotonic() - start
    if not len(collected["labels"]):
        raise EvaluationError(f"Expected videos in split {info['split']!r}. Received: none "
                              f"in {info['files']}")
    classes = info["classes"]
    metrics = compute_metrics(collected["logits"], collected["labels"], len(classes), classes)
    per_stream = {}
    if len(predictor.parts) > 1:
        for name, logits in collected["parts"].items():
            per_stream[name] = _json_metrics(
                compute_metrics(logits, collected["labels"], len(classes), classes))
    views = (num_clips if protocol == "clips" else 1) * num_crops
    report = {
        "model": predictor.source,
        "streams": list(predictor.streams),
        "stream_weights": dict(predictor.stream_weights),
        "dataset": str(data_dir),
        "dataset_name": info["metadata"].get("name"),
        "split": info["split"],
        "protocol": {"name": protocol, "num_frames": num_frames if protocol != "whole"
                     else f"whole video (at least {num_frames})",
                     "num_clips": num_clips if protocol == "clips" else 1,
                     "num_crops": num_crops, "views_per_video": views,
                     "crop_size": list(crop), "view_fusion": "mean of logits",
                     "stream_fusion": "weighted sum of logits"},
        "num_videos": metrics["num_videos"],
        "metrics": _json_metrics(metrics),
        "per_stream_metrics": per_stream,
        "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"].tolist(),
        # Per video, in the split's order: what `agreement` compares.
        "labels": [int(v) for v in collected["labels"]],
        "predictions": [int(v) for v in np.argmax(collected["logits"], axis=-1)],
        "seconds": seconds,
        "seconds_per_video": seconds / max(metrics["num_videos"], 1),
    }
    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        png = plot_confusion_matrix(
            metrics["confusion_matrix"], classes, output_dir / CONFUSION_NAME,
            title=f"{info['metadata'].get('name', 'dataset')} {info['split']}, {protocol}")
        report["confusion_matrix_png"] = str(png)
        path = outputs.write_json(output_dir / REPORT_NAME, report, default=_json_default)
        report["report_json"] = str(path)
    return report


def agreement(report: Dict[str, Any], reference: Dict[str, Any]) -> Dict[str, Any]:
    """How often two evaluations of the same videos give the same top-1 class.

    For a model against another version of itself (int8 against float32, a
    LiteRT file against its Keras model): the share of videos whose answer
    did not change, whether right or wrong.

    Args:
        report, reference: `evaluate` reports of the same dataset split and
            protocol (a reference read back from its `--json` file).

    Returns:
        `{"reference": its model, "videos": n, "same": n, "top1_agreement": share,
        "changed": [video positions whose answer changed]}`.

    Raises:
        EvaluationError: the reports are not of the same videos, or one has no
            per-video predictions (an older version's report).
    """
    for name, r in (("report", report), ("reference", reference)):
        if not isinstance(r, dict) or not isinstance(r.get("predictions"), list):
            raise EvaluationError(f"Expected an evaluation report with per-video predictions "
                                  f"(written by this version's evaluate). Received: a {name} "
                                  "without them")
    def key(r):  # as JSON holds it: a report read back equals the one in memory
        return json.loads(json.dumps([r.get("dataset_name"), r.get("split"), r.get("protocol"),
                                      r.get("labels")], default=_json_default))

    mine, theirs = key(report), key(reference)
    if mine != theirs:
        what = [name for name, a, b in zip(("dataset", "split", "protocol", "videos"), mine,
                                           theirs) if a != b]
        raise EvaluationError(f"Expected a reference report of the same videos. Received: "
                              f"another {', '.join(what)}")
    same = [a == b for a, b in zip(report["predictions"], reference["predictions"])]
    return {"reference": reference.get("model"), "videos": len(same), "same": int(sum(same)),
            "top1_agreement": float(np.mean(same)) if same else 0.0,
            "changed": [i for i, ok in enumerate(same) if not ok]}


def check_reference(reference: Dict[str, Any], info: Dict[str, Any],
                    max_videos: Optional[int] = None) -> None:
    """Before evaluating: can `reference` (a report read back) be compared with
    an evaluation of the split `info` (`dataset_info`) by `agreement`?

    Raises:
        EvaluationError: no per-video predictions, or another dataset, split
            or number of videos.
    """
    agreement(reference, reference)  # a report with predictions
    name = info["metadata"].get("name")
    videos = info.get("num_videos")  # None: the metadata does not count them
    if videos is not None and max_videos is not None:
        videos = min(videos, max_videos)
    expected = {"dataset": name, "split": info["split"], "videos": videos}
    got = {"dataset": reference.get("dataset_name"), "split": reference.get("split"),
           "videos": len(reference.get("labels") or [])}
    other = [f"{k} {got[k]!r} there, {expected[k]!r} here" for k in expected
             if expected[k] != got[k] and not (k == "videos" and expected[k] is None)]
    if other:
        raise EvaluationError(f"Expected a reference report of the same videos. Received: "
                              f"{'; '.join(other)}")


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
