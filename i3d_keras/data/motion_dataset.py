"""A built-in, procedurally generated dataset whose classes differ only in time.

Ten classes in five time-reversed pairs; every clip of the second class of a
pair is the exact frame-by-frame time reversal of a clip drawn from the first
class's generator:

  ==  ======================  ==================================================
  0   move_left               one shape translates leftwards
  1   move_right              (reversed move_left)
  2   move_up                 one shape translates upwards
  3   move_down               (reversed move_up)
  4   rotate_clockwise        a bar or triangle spins clockwise (on screen)
  5   rotate_anticlockwise    (reversed rotate_clockwise)
  6   grow                    a shape scales up
  7   shrink                  (reversed grow)
  8   square_then_disc        a square turns into a disc at a random frame
  9   disc_then_square        (reversed square_then_disc)
  ==  ======================  ==================================================

So the multiset of frames of a clip, and the distribution of frames of each
class, are identical within a pair: a model that ignores frame order (e.g.
averages per-frame predictions) cannot beat chance (50%) within a pair, while a
spatio-temporal model such as I3D can reach ~100% -- the "opening versus
closing a door" distinction in miniature. (Pairs are distinguishable from each
other by static cues such as which shapes occur, so a frame-level model scores
~50% overall, not 10%.)

Varied but learnable from scratch: a random dark background colour, a random
bright foreground colour, random shape (disc, square, triangle; bar or triangle
for rotations), size, position, speed, switch frame, an optional static
mid-grey distractor shape and per-frame Gaussian pixel noise. Shapes are
antialiased, so sub-pixel motion is visible. The contrast polarity (bright
object on a dark background) is fixed on purpose: with fully random colours
(either polarity, plus a background gradient) the RGB I3D trained from scratch
stayed at chance for 2-4 epochs of 1000 clips, while with fixed polarity it
reaches the main job's 90% (measured; see the training module).

Do NOT flip clips left-right for augmentation: that turns move_left into
move_right and clockwise into anticlockwise (`build_dataset(..., flip=False)`).

Flow: by default the *analytic* flow of the rendered motion (exact forward
displacement of each object pixel from frame t to t+1, zero on the static
background and across a shape change; last field repeated; normalised by 20 px
like real flow). It is cleaner than TV-L1 on real video would be; pass
`flow_method="dis"` / `"tvl1"` / `"farneback"` to estimate it from the frames
with OpenCV instead, as for real datasets.

Everything is deterministic given `seed`. Default clips: 8 frames of 32x32
RGB (the training recipe), cheap enough to train the full I3D on a 2-core CPU;
generating 1000 clips of 16 frames
(with or without analytic flow) took 3.6-6.6 s on this project's shared 2-core
CPU (`tools/benchmark_data.py`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from i3d_keras.data import flow as flow_lib

PathLike = Union[str, os.PathLike]

CLASSES = (
    "move_left", "move_right", "move_up", "move_down",
    "rotate_clockwise", "rotate_anticlockwise", "grow", "shrink",
    "square_then_disc", "disc_then_square",
)
NUM_CLASSES = len(CLASSES)
# The main job's recipe (i3d_keras.tasks.training.MOTION_RECIPE, tools/train.py's
# defaults): 1000 training and 200 validation clips of 8 frames x 32x32.
DEFAULT_NUM_FRAMES = 8
DEFAULT_SIZE = 32
DEFAULT_NUM_TRAIN = 1000
DEFAULT_NUM_VAL = 200

# Shape ids.
_DISC, _SQUARE, _TRIANGLE, _BAR = 0, 1, 2, 3
_CHUNK = 128  # clips rendered at once (bounds memory; fixed for determinism)


@dataclasses.dataclass
class MotionClips:
    """Generated clips.

    Attributes:
      frames: uint8 `[N, T, S, S, 3]` RGB.
      labels: int32 `[N]`, indices into `classes`.
      flow: float32 `[N, T, S, S, 2]` normalised flow in [-1, 1], aligned with
        frames (flow[t]: frame t -> t+1, last repeated), or None.
      classes: the class names.
    """

    frames: np.ndarray
    labels: np.ndarray
    flow: Optional[np.ndarray]
    classes: Tuple[str, ...] = CLASSES


def _sample_states(rng: np.random.Generator, labels: np.ndarray, t: int, s: int
                   ) -> Dict[str, np.ndarray]:
    """Per-clip, per-frame object state: centre, angle, radius, shape id."""
    n = len(labels)
    pair = labels // 2
    tt = np.arange(t, dtype=np.float64)[None]  # [1, T]
    frac = tt / max(t - 1, 1)
    u = lambda lo, hi: rng.uniform(lo, hi, size=(n, 1))  # noqa: E731
    cx = np.zeros((n, t))
    cy = np.zeros((n, t))
    theta = np.repeat(u(0, 2 * np.pi), t, 1)
    radius = np.zeros((n, t))
    shape = np.repeat(rng.integers(0, 3, size=(n, 1)), t, 1)  # disc/square/triangle

    # Pair 0 / 1: translation along x (left) / y (up).
    r = u(0.10 * s, 0.18 * s)
    dist = u(0.3 * s, 0.6 * s)
    dist = np.minimum(dist, s - 2 * r - 2)
    along0 = r + 1 + dist + u(0, 1) * np.maximum(s - 2 * r - 2 - dist, 0)  # start
    along = along0 - dist * frac  # decreasing coordinate: left / up
    across = r + 1 + u(0, 1) * (s - 2 * r - 2)
    is_x = pair == 0
    is_y = pair == 1
    cx = np.where(is_x[:, None], along, cx)
    cy = np.where(is_x[:, None], across, cy)
    cx = np.where(is_y[:, None], across, cx)
    cy = np.where(is_y[:, None], along, cy)
    radius = np.where((is_x | is_y)[:, None], r, radius)

    # Pair 2: clockwise rotation (angle increases; y points down on screen).
    rot = pair == 2
    r_rot = u(0.25 * s, 0.40 * s)
    omega = np.deg2rad(u(8, 20))
    c_rot_x = r_rot + 1 + u(0, 1) * (s - 2 * r_rot - 2)
    c_rot_y = r_rot + 1 + u(0, 1) * (s - 2 * r_rot - 2)
    rot_shape = np.where(rng.random((n, 1)) < 0.5, _BAR, _TRIANGLE)
    theta = np.where(rot[:, None], theta + omega * tt, theta)
    cx = np.where(rot[:, None], c_rot_x, cx)
    cy = np.where(rot[:, None], c_rot_y, cy)
    radius = np.where(rot[:, None], r_rot, radius)
    shape = np.where(rot[:, None], rot_shape, shape)

    # Pair 3: growth, linear in radius.
    grow = pair == 3
    r0 = u(0.08 * s, 0.13 * s)
    r1 = np.minimum(r0 * u(1.8, 2.6), 0.35 * s)
    c_g_x = r1 + 1 + u(0, 1) * (s - 2 * r1 - 2)
    c_g_y = r1 + 1 + u(0, 1) * (s - 2 * r1 - 2)
    cx = np.where(grow[:, None], c_g_x, cx)
    cy = np.where(grow[:, None], c_g_y, cy)
    radius = np.where(grow[:, None], r0 + (r1 - r0) * frac, radius)

    # Pair 4: a square becomes a disc at frame k, k symmetric around T/2 so
    # that reversal (disc then square, switch at T - k) has the same range.
    order = pair == 4
    lo = max(1, t // 4)
    k = rng.integers(lo, t - lo + 1, size=(n, 1))
    r_o = u(0.15 * s, 0.25 * s)
    c_o_x = r_o + 1 + u(0, 1) * (s - 2 * r_o - 2)
    c_o_y = r_o + 1 + u(0, 1) * (s - 2 * r_o - 2)
    cx = np.where(order[:, None], c_o_x, cx)
    cy = np.where(order[:, None], c_o_y, cy)
    radius = np.where(order[:, None], r_o, radius)
    shape = np.where(order[:, None], np.where(tt < k, _SQUARE, _DISC), shape)

    states = {"cx": cx, "cy": cy, "theta": theta, "radius": radius, "shape": shape}
    # Odd labels are the time reversal of their pair's generator.
    rev = (labels % 2 == 1)[:, None]
    return {key: np.where(rev, v[:, ::-1], v) for key, v in states.items()}


def _sdf(shape: np.ndarray, qx: np.ndarray, qy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Approximate signed distance (pixels) to the shapes, in local coords."""
    d_disc = np.hypot(qx, qy) - r
    d_square = np.maximum(np.abs(qx), np.abs(qy)) - 0.85 * r
    tri = None
    for ang in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
        d = qx * np.cos(ang) + qy * np.sin(ang) - 0.5 * r
        tri = d if tri is None else np.maximum(tri, d)
    d_bar = np.maximum(np.abs(qx) - r, np.abs(qy) - 0.22 * r)
    return np.choose(shape, [d_disc, d_square, tri, d_bar])


def _render_chunk(rng: np.random.Generator, st: Dict[str, np.ndarray], s: int,
                  with_flow: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    n, t = st["cx"].shape
    px = (np.arange(s, dtype=np.float32) + 0.5)[None, None, None, :]  # [1,1,1,S]
    py = (np.arange(s, dtype=np.float32) + 0.5)[None, None, :, None]  # [1,1,S,1]
    f = lambda a: a.astype(np.float32)[:, :, None, None]  # noqa: E731
    cx, cy, th, r = f(st["cx"]), f(st["cy"]), f(st["theta"]), f(st["radius"])
    cos, sin = np.cos(th), np.sin(th)
    dx, dy = px - cx, py - cy  # [N,T,S,S]
    qx = cos * dx + sin * dy  # rotate by -theta into the object's frame
    qy = -sin * dx + cos * dy
    shape = np.broadcast_to(st["shape"][:, :, None, None], qx.shape)
    alpha = np.clip(0.5 - _sdf(shape, qx, qy, r), 0.0, 1.0)[..., None]  # [N,T,S,S,1]

    # Static background colour; static optional distractor.
    bg = rng.uniform(0.0, 0.15, (n, 1, 1, 1, 3)).astype(np.float32)
    background = np.broadcast_to(bg, (n, 1, s, s, 3))
    fg = rng.uniform(0.85, 1.0, (n, 1, 1, 1, 3)).astype(np.float32)
    d_col = rng.uniform(0.35, 0.55, (n, 1, 1, 1, 1)).astype(np.float32)
    has_d = rng.random((n, 1, 1, 1, 1)) < 0.5
    d_r = rng.uniform(0.06 * s, 0.12 * s, (n, 1, 1, 1)).astype(np.float32)
    d_cx = rng.uniform(0, s, (n, 1, 1, 1)).astype(np.float32)
    d_cy = rng.uniform(0, s, (n, 1, 1, 1)).astype(np.float32)
    d_shape = np.broadcast_to(rng.integers(0, 3, (n, 1, 1, 1)), (n, 1, s, s))
    d_alpha = np.clip(0.5 - _sdf(d_shape, px - d_cx, py - d_cy, d_r), 0, 1)[..., None]
    background = np.where(has_d, background * (1 - d_alpha) + d_col * d_alpha, background)

    img = background * (1 - alpha) + fg * alpha
    img += 0.02 * rng.standard_normal(img.shape, dtype=np.float32)
    frames = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)

    flow = None
    if with_flow:
        # Where the object's pixel at p (frame t) is in frame t + 1.
        c1, s1 = np.cos(th[:, 1:]), np.sin(th[:, 1:])
        scale = r[:, 1:] / np.maximum(r[:, :-1], 1e-6)
        lx, ly = qx[:, :-1] * scale, qy[:, :-1] * scale
        nx = cx[:, 1:] + c1 * lx - s1 * ly
        ny = cy[:, 1:] + s1 * lx + c1 * ly
        inside = alpha[:, :-1, ..., 0] >= 0.5
        fx = np.where(inside, nx - px, 0.0)
        fy = np.where(inside, ny - py, 0.0)
        flow = np.zeros((n, t, s, s, 2), np.float32)
        flow[:, :-1, ..., 0] = fx
        flow[:, :-1, ..., 1] = fy
        if t > 1:
            flow[:, -1] = flow[:, -2]
        flow = np.clip(flow / flow_lib.FLOW_BOUND, -1.0, 1.0)
    return frames, flow


def generate_motion_clips(num_clips: int, num_frames: int = DEFAULT_NUM_FRAMES,
                          size: int = DEFAULT_SIZE, seed: int = 0, with_flow: bool = False,
                          flow_method: str = "analytic") -> MotionClips:
    """Generates clips in memory, deterministically from `seed`.

    Labels are balanced (clip i has class i mod 10 before a seeded shuffle).

    Args:
      num_clips: how many clips (>= 1).
      num_frames: frames per clip T (>= 2).
      size: frame height and width S (>= 16).
      seed: random seed.
      with_flow: also return flow.
      flow_method: "analytic" (exact rendered motion) or an OpenCV method
        ("dis", "tvl1", "farneback") run on the frames.

    Returns:
      A `MotionClips`.
    """
    if num_clips < 1:
        raise ValueError(f"`num_clips` must be >= 1. Received: num_clips={num_clips}")
    if num_frames < 2:
        raise ValueError(f"`num_frames` must be >= 2. Received: num_frames={num_frames}")
    if size < 16:
        raise ValueError(f"`size` must be >= 16. Received: size={size}")
    if flow_method != "analytic" and flow_method not in flow_lib.FLOW_METHODS:
        raise ValueError(f"`flow_method` must be 'analytic' or one of {flow_lib.FLOW_METHODS}. "
                         f"Received: flow_method={flow_method!r}")
    rng = np.random.default_rng(seed)
    labels = (np.arange(num_clips) % NUM_CLASSES).astype(np.int32)
    rng.shuffle(labels)
    frames = np.empty((num_clips, num_frames, size, size, 3), np.uint8)
    flow = np.empty((num_clips, num_frames, size, size, 2), np.float32) if with_flow else None
    for start in range(0, num_clips, _CHUNK):
        sl = slice(start, min(start + _CHUNK, num_clips))
        chunk_rng = np.random.default_rng([seed, start])
        states = _sample_states(chunk_rng, labels[sl], num_frames, size)
        fr, fl = _render_chunk(chunk_rng, states, size, with_flow and flow_method == "analytic")
        frames[sl] = fr
        if with_flow:
            if flow_method == "analytic":
                flow[sl] = fl
            else:
                est = flow_lib.create_flow_estimator(flow_method)
                for i in range(sl.start, sl.stop):
                    flow[i] = flow_lib.compute_flow(frames[i], estimator=est)
    return MotionClips(frames, labels, flow)


def _split_seeds(seed: int) -> Tuple[int, int]:
    train, val = np.random.SeedSequence(seed).spawn(2)
    return int(train.generate_state(1)[0]), int(val.generate_state(1)[0])


def write_motion_dataset(output_dir: PathLike, num_train: int = DEFAULT_NUM_TRAIN,
                         num_val: int = DEFAULT_NUM_VAL,
                         num_frames: int = DEFAULT_NUM_FRAMES, size: int = DEFAULT_SIZE,
                         seed: int = 0, with_flow: bool = True, flow_method: str = "analytic",
                         name: str = "motion", clips_per_shard: int = 500,
                         jpeg_quality: int = 95) -> Path:
    """Writes the dataset in the same TFRecord format as real datasets.

    Shards `NAME_train-*.tfrecord` and `NAME_val-*.tfrecord` plus
    `NAME.metadata.json`, readable with `input_pipeline.load_split` (pass
    `crop_size=None` or <= size, and `flip=False`).

    Returns:
      The metadata file path.
    """
    from i3d_keras.data import records  # TensorFlow only when writing records

    seeds = dict(zip(("train", "val"), _split_seeds(seed)))
    splits = {}
    for split, n in (("train", num_train), ("val", num_val)):
        if n <= 0:
            continue
        clips = generate_motion_clips(n, num_frames, size, seeds[split], with_flow, flow_method)
        examples = [records.video_to_example(
            clips.frames[i], int(clips.labels[i]), CLASSES[clips.labels[i]],
            f"{name}_{split}_{i:06d}", 25.0,
            flow=None if clips.flow is None else clips.flow[i], split=split,
            flow_method=flow_method if with_flow else "", jpeg_quality=jpeg_quality)
            for i in range(n)]
        num_shards = max(1, -(-n // clips_per_shard))
        records.write_shards(examples, output_dir, f"{name}_{split}", num_shards)
        counts = np.bincount(clips.labels, minlength=NUM_CLASSES)
        splits[split] = {
            "num_videos": n, "num_shards": num_shards,
            "file_pattern": records.shard_pattern(f"{name}_{split}"),
            "videos_per_class": {c: int(k) for c, k in zip(CLASSES, counts)},
        }
    metadata = {
        "name": name,
        "classes": list(CLASSES),
        "num_classes": NUM_CLASSES,
        "counts": {k: v["num_videos"] for k, v in splits.items()},
        "splits": splits,
        "num_failed": 0,
        "preprocessing": {
            "source": "i3d_keras.data.motion_dataset (procedurally generated)",
            "seed": seed, "fps": 25.0, "num_frames": num_frames, "size": size,
            "rgb_encoding": f"JPEG quality {jpeg_quality}",
            "augmentation_warning": "do not flip left-right: labels depend on direction",
        },
        "flow": None if not with_flow else {
            "method": flow_method,
            "bound_pixels": flow_lib.FLOW_BOUND,
            "format": "png",
            "alignment": "flow[t] = motion frame t -> t+1; last field repeated",
            "quantization": records.FLOW_QUANTIZATION,
        },
        "record_format": "tf.train.SequenceExample, see i3d_keras.data.records",
    }
    return records.write_metadata(output_dir, name, metadata)


def motion_datasets(num_train: int = DEFAULT_NUM_TRAIN, num_val: int = DEFAULT_NUM_VAL,
                    num_frames: int = DEFAULT_NUM_FRAMES, size: int = DEFAULT_SIZE,
                    batch_size: int = 16, modality: str = "rgb", seed: int = 0,
                    label_mode: str = "sparse", flow_method: str = "analytic"):
    """Returns (train, val) `tf.data.Dataset`s ready for `model.fit`.

    Clips are generated in memory (train and val from independent seeds
    derived from `seed`), RGB scaled to [-1, 1]. No crops or flips (flips
    would change labels). Train is shuffled each epoch and drops the last
    partial batch; val is in a fixed order.

    Args:
      num_train: training clips.
      num_val: validation clips.
      num_frames: T.
      size: S (frames are S x S).
      batch_size: clips per batch.
      modality: "rgb", "flow" or "both" (dict {"rgb", "flow"}).
      seed: random seed.
      label_mode: "sparse" (int32) or "one_hot" (float32 [batch, 10]).
      flow_method: see `generate_motion_clips`.

    Returns:
      (train, val): elements (inputs `[B, T, S, S, C]` float32, labels).
    """
    import tensorflow as tf

    if modality not in ("rgb", "flow", "both"):
        raise ValueError(f"`modality` must be 'rgb', 'flow' or 'both'. Received: {modality!r}")
    if label_mode not in ("sparse", "one_hot"):
        raise ValueError(f"`label_mode` must be 'sparse' or 'one_hot'. Received: {label_mode!r}")
    with_flow = modality != "rgb"
    out = []
    for split_seed, n, training in zip(_split_seeds(seed), (num_train, num_val), (True, False)):
        clips = generate_motion_clips(n, num_frames, size, split_seed, with_flow, flow_method)
        feats = {}
        if modality in ("rgb", "both"):
            feats["rgb"] = clips.frames
        if with_flow:
            feats["flow"] = clips.flow
        ds = tf.data.Dataset.from_tensor_slices((feats, clips.labels))

        def _prep(x, y):
            x = dict(x)
            if "rgb" in x:
                x["rgb"] = tf.cast(x["rgb"], tf.float32) * (2.0 / 255.0) - 1.0
            y = tf.cast(y, tf.int32)
            if label_mode == "one_hot":
                y = tf.one_hot(y, NUM_CLASSES)
            return (x if modality == "both" else x[modality]), y

        if training:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(_prep, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=training and n >= batch_size)
        out.append(ds.prefetch(tf.data.AUTOTUNE))
    return tuple(out)
