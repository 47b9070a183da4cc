"""Graph-friendly clip preprocessing for I3D (Carreira & Zisserman, CVPR 2017).

Every function here is a pure TensorFlow op on clips shaped
`[frames, height, width, channels]` (or with extra leading axes where said), so
the same code runs in the `tf.data` input pipeline, inside `tf.function` and in
an exported serving graph. Dynamic (unknown) frame counts and sizes are allowed;
nothing here calls numpy or `tf.py_function`.

The paper's recipe (Section 3 and 4):
  * frames resampled to 25 fps and resized so the short side is 256 (bilinear);
  * RGB scaled to [-1, 1];
  * training: random 224x224 crop and random left-right flip, clips of N frames
    from a random start, looping videos shorter than N;
  * evaluation: centre 224x224 crop, applied to the whole video (or clips);
  * optical flow (TV-L1) clipped to [-20, 20] pixels and scaled to [-1, 1].
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import tensorflow as tf

#: Flow values are clipped to +-FLOW_BOUND pixels before scaling to [-1, 1].
FLOW_BOUND = 20.0

#: Quantised flow: code = round(f * FLOW_QUANT_SCALE) + FLOW_QUANT_ZERO, where f
#: is the normalised flow in [-1, 1]. Codes span [1, 255]; 128 is exact zero.
FLOW_QUANT_SCALE = 127.0
FLOW_QUANT_ZERO = 128.0

#: Worst-case absolute error of a quantise/dequantise round trip, in normalised
#: units (half a quantisation step): 0.5 / 127 = 0.003937.
FLOW_QUANT_MAX_ERROR = 0.5 / FLOW_QUANT_SCALE

#: The same bound in pixels of displacement: 20 * 0.5 / 127 = 0.0787 px.
FLOW_QUANT_MAX_ERROR_PIXELS = FLOW_BOUND * FLOW_QUANT_MAX_ERROR

SAMPLING_MODES = ("random", "center", "uniform", "all")

SizeLike = Union[int, Sequence[int], tf.Tensor]
SeedLike = Optional[Union[int, Sequence[int], tf.Tensor]]


def _hw(size: SizeLike) -> Tuple[tf.Tensor, tf.Tensor]:
    """Returns (height, width) int32 tensors from an int or (h, w) size."""
    if isinstance(size, int):
        return tf.constant(size, tf.int32), tf.constant(size, tf.int32)
    size = tf.cast(tf.convert_to_tensor(size), tf.int32)
    if size.shape.rank == 0:
        return size, size
    return size[0], size[1]


def _stateless_seed(seed: SeedLike) -> Optional[tf.Tensor]:
    """Converts an int or shape-[2] seed to a stateless-op seed, or None."""
    if seed is None:
        return None
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    return seed


def _uniform_int(maxval: tf.Tensor, seed: Optional[tf.Tensor], salt: int) -> tf.Tensor:
    """Uniform int32 in [0, maxval) (maxval >= 1), stateless when seeded."""
    maxval = tf.maximum(tf.cast(maxval, tf.int32), 1)
    if seed is None:
        return tf.random.uniform([], 0, maxval, dtype=tf.int32)
    return tf.random.stateless_uniform(
        [], seed=seed + tf.constant([0, salt], tf.int64), minval=0, maxval=maxval,
        dtype=tf.int32)


def _check_rank(frames: tf.Tensor, name: str, min_rank: int = 4) -> None:
    rank = frames.shape.rank
    if rank is not None and rank < min_rank:
        raise ValueError(
            f"`{name}` expects frames shaped [frames, height, width, channels] "
            f"(rank >= {min_rank}). Received: shape={frames.shape}")


def resize_short_side(frames, short_side: int = 256, method: str = "bilinear"):
    """Resizes frames so that their shorter spatial side equals `short_side`.

    The aspect ratio is kept (the long side is rounded to the nearest pixel),
    as in the paper's preprocessing (bilinear, short side 256).

    Args:
      frames: `[T, H, W, C]` (or `[..., H, W, C]`) tensor, any real dtype.
      short_side: target length of the shorter of H and W.
      method: a `tf.image.ResizeMethod` name; "bilinear" by default.

    Returns:
      `[T, H', W', C]` tensor with min(H', W') == short_side, in the input
      dtype (integer inputs are rounded and saturated).
    """
    frames = tf.convert_to_tensor(frames)
    _check_rank(frames, "resize_short_side", 3)
    if isinstance(short_side, int) and short_side <= 0:
        raise ValueError(f"`short_side` must be positive. Received: short_side={short_side}")
    shape = tf.shape(frames)
    h = tf.cast(shape[-3], tf.float32)
    w = tf.cast(shape[-2], tf.float32)
    target = tf.cast(short_side, tf.float32)
    scale = target / tf.minimum(h, w)
    new_h = tf.cast(tf.round(h * scale), tf.int32)
    new_w = tf.cast(tf.round(w * scale), tf.int32)
    # The short side is exactly `short_side` even when rounding would drift.
    new_h = tf.where(h <= w, tf.cast(short_side, tf.int32), new_h)
    new_w = tf.where(h <= w, new_w, tf.cast(short_side, tf.int32))
    resized = tf.image.resize(frames, tf.stack([new_h, new_w]), method=method)
    if frames.dtype.is_integer:
        resized = tf.saturate_cast(tf.round(resized), frames.dtype)
    else:
        resized = tf.cast(resized, frames.dtype)
    return resized


def crop(frames, top, left, size: SizeLike):
    """Crops the same window from every frame.

    Args:
      frames: `[T, H, W, C]` tensor.
      top: int32 scalar, row offset of the window.
      left: int32 scalar, column offset of the window.
      size: int or (height, width) of the window.

    Returns:
      `[T, height, width, C]` tensor.
    """
    frames = tf.convert_to_tensor(frames)
    ch, cw = _hw(size)
    return frames[..., top:top + ch, left:left + cw, :]


def _assert_fits(frames: tf.Tensor, ch: tf.Tensor, cw: tf.Tensor, name: str):
    shape = tf.shape(frames)
    return tf.debugging.assert_equal(
        tf.logical_and(shape[-3] >= ch, shape[-2] >= cw), True,
        message=(f"`{name}`: the crop must fit inside the frames "
                 "(expected height >= crop height and width >= crop width)"))


def center_crop(frames, size: SizeLike = 224):
    """Crops the central `size` window of every frame (evaluation crop).

    Args:
      frames: `[T, H, W, C]` tensor with H, W >= the crop size.
      size: int or (height, width).

    Returns:
      `[T, height, width, C]` tensor.

    Raises:
      tf.errors.InvalidArgumentError: at run time, if the frames are smaller
        than the crop.
    """
    frames = tf.convert_to_tensor(frames)
    _check_rank(frames, "center_crop", 3)
    ch, cw = _hw(size)
    with tf.control_dependencies([_assert_fits(frames, ch, cw, "center_crop")]):
        shape = tf.shape(frames)
        top = (shape[-3] - ch) // 2
        left = (shape[-2] - cw) // 2
    out = crop(frames, top, left, (ch, cw))
    if isinstance(size, int):
        out = tf.ensure_shape(out, out.shape[:-3].concatenate([size, size]).concatenate(
            out.shape[-1:]))
    return out


def random_crop_offsets(height, width, size: SizeLike, seed: SeedLike = None):
    """Draws a random (top, left) for a `size` crop of an HxW frame.

    Used to apply one crop to several aligned streams (RGB and flow).

    Args:
      height: int32 scalar frame height.
      width: int32 scalar frame width.
      size: int or (height, width) of the crop.
      seed: None (stateful random op) or an int / shape-[2] int tensor for a
        deterministic stateless draw.

    Returns:
      (top, left) int32 scalars.
    """
    ch, cw = _hw(size)
    seed = _stateless_seed(seed)
    top = _uniform_int(tf.cast(height, tf.int32) - ch + 1, seed, 1)
    left = _uniform_int(tf.cast(width, tf.int32) - cw + 1, seed, 2)
    return top, left


def random_crop(frames, size: SizeLike = 224, seed: SeedLike = None):
    """Crops one random `size` window, the same in every frame (training crop).

    Args:
      frames: `[T, H, W, C]` tensor with H, W >= the crop size.
      size: int or (height, width).
      seed: None (stateful) or int / shape-[2] tensor (stateless, reproducible).

    Returns:
      `[T, height, width, C]` tensor.
    """
    frames = tf.convert_to_tensor(frames)
    _check_rank(frames, "random_crop", 3)
    ch, cw = _hw(size)
    with tf.control_dependencies([_assert_fits(frames, ch, cw, "random_crop")]):
        shape = tf.shape(frames)
        top, left = random_crop_offsets(shape[-3], shape[-2], (ch, cw), seed)
    out = crop(frames, top, left, (ch, cw))
    if isinstance(size, int):
        out = tf.ensure_shape(out, out.shape[:-3].concatenate([size, size]).concatenate(
            out.shape[-1:]))
    return out


def scale_rgb(frames):
    """Scales RGB values from [0, 255] to [-1, 1] (the paper's RGB input range).

    Args:
      frames: `[T, H, W, 3]` uint8 (or float holding [0, 255]) tensor.

    Returns:
      float32 tensor of the same shape in [-1, 1].
    """
    frames = tf.convert_to_tensor(frames)
    return tf.cast(frames, tf.float32) * (2.0 / 255.0) - 1.0


def flip_left_right(frames, is_flow: bool = False):
    """Mirrors frames horizontally.

    For optical flow the x displacement (channel 0) changes sign as well: a
    pixel moving right moves left in the mirrored video.

    Args:
      frames: `[..., H, W, C]` tensor; for flow C == 2 (x, y).
      is_flow: whether `frames` holds flow (x in channel 0).

    Returns:
      Tensor of the same shape and dtype.
    """
    frames = tf.convert_to_tensor(frames)
    flipped = tf.reverse(frames, axis=[-2])
    if is_flow:
        if frames.dtype.is_unsigned:
            raise ValueError(
                "`flip_left_right` negates flow x, so flow must be signed "
                f"(dequantise it first). Received: dtype={frames.dtype.name}")
        sign = tf.concat([tf.constant([-1.0]), tf.ones([tf.shape(frames)[-1] - 1])], 0)
        flipped = flipped * tf.cast(sign, frames.dtype)
    return flipped


def random_flip_left_right(frames, is_flow: bool = False, seed: SeedLike = None,
                           flip=None):
    """Flips with probability 0.5 (or as given by the boolean `flip`)."""
    if flip is None:
        flip = _uniform_int(2, _stateless_seed(seed), 3) > 0
    return tf.cond(flip, lambda: flip_left_right(frames, is_flow),
                   lambda: tf.convert_to_tensor(frames))


def sample_frame_indices(num_frames, clip_length: int, mode: str = "random",
                         num_clips: int = 1, seed: SeedLike = None):
    """Chooses which frames of a video form the model's clip(s).

    Videos shorter than `clip_length` are looped ("we loop the video as many
    times as necessary", Section 4), i.e. indices wrap modulo `num_frames`.

    Modes:
      * "random": one clip from a uniformly random start (training);
      * "center": one clip centred in the video (evaluation);
      * "uniform": `num_clips` clips with evenly spaced starts from the first
        to the last possible start (multi-clip evaluation);
      * "all": every frame once (whole-video evaluation, as in the paper's
        test setting); if the video is shorter than `clip_length` it is looped
        up to `clip_length` frames.

    Args:
      num_frames: int32 scalar, frames in the video (>= 1).
      clip_length: frames per clip (N).
      mode: one of `SAMPLING_MODES`.
      num_clips: K for "uniform".
      seed: None or int / shape-[2] tensor, used by "random" only.

    Returns:
      int32 `[num_clips, clip_length]` indices ("random"/"center": num_clips
      is 1; "all": `[1, max(num_frames, clip_length)]`).
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"`mode` must be one of {SAMPLING_MODES}. Received: mode={mode!r}")
    if clip_length < 1:
        raise ValueError(f"`clip_length` must be >= 1. Received: clip_length={clip_length}")
    if num_clips < 1:
        raise ValueError(f"`num_clips` must be >= 1. Received: num_clips={num_clips}")
    num_frames = tf.maximum(tf.cast(num_frames, tf.int32), 1)
    span = tf.maximum(num_frames - clip_length, 0)  # last valid start
    if mode == "all":
        length = tf.maximum(num_frames, clip_length)
        return (tf.range(length) % num_frames)[tf.newaxis]
    if mode == "random":
        starts = _uniform_int(span + 1, _stateless_seed(seed), 4)[tf.newaxis]
    elif mode == "center":
        starts = (span // 2)[tf.newaxis]
    else:  # uniform
        if num_clips == 1:
            starts = (span // 2)[tf.newaxis]
        else:
            starts = tf.cast(tf.round(tf.linspace(0.0, tf.cast(span, tf.float32),
                                                  num_clips)), tf.int32)
    indices = starts[:, tf.newaxis] + tf.range(clip_length)[tf.newaxis]
    return indices % num_frames


def sample_frames(frames, clip_length: int, mode: str = "random", num_clips: int = 1,
                  seed: SeedLike = None):
    """Samples clip(s) of `clip_length` frames from a video tensor.

    See `sample_frame_indices` for the modes and looping of short videos.

    Args:
      frames: `[T, H, W, C]` tensor.
      clip_length: N.
      mode: "random", "center", "uniform" or "all".
      num_clips: K for "uniform".
      seed: None or int / shape-[2] tensor.

    Returns:
      "random"/"center": `[N, H, W, C]`; "uniform": `[K, N, H, W, C]`;
      "all": `[max(T, N), H, W, C]`.
    """
    frames = tf.convert_to_tensor(frames)
    _check_rank(frames, "sample_frames")
    indices = sample_frame_indices(tf.shape(frames)[0], clip_length, mode, num_clips, seed)
    clips = tf.gather(frames, indices)
    if mode == "uniform":
        return clips
    return clips[0]


def quantize_flow(flow):
    """Quantises normalised flow in [-1, 1] to uint8 codes for image storage.

    code = round(clip(f, -1, 1) * 127) + 128, so codes lie in [1, 255] and zero
    motion is stored exactly as 128. In pixels (flow bound 20) one code step is
    20 / 127 = 0.157 px and the worst-case round-trip error is half a step:
    `FLOW_QUANT_MAX_ERROR` = 1/254 = 0.0039 normalised = 0.0787 px.

    Args:
      flow: `[..., 2]` float tensor, normalised flow (pixels / 20).

    Returns:
      uint8 tensor of the same shape.
    """
    flow = tf.clip_by_value(tf.cast(flow, tf.float32), -1.0, 1.0)
    return tf.cast(tf.round(flow * FLOW_QUANT_SCALE) + FLOW_QUANT_ZERO, tf.uint8)


def dequantize_flow(codes):
    """Inverse of `quantize_flow`: uint8 codes to float32 flow in [-1, 1].

    Args:
      codes: `[..., 2]` uint8 tensor (code 0, never written, maps to -1).

    Returns:
      float32 tensor of the same shape.
    """
    flow = (tf.cast(codes, tf.float32) - FLOW_QUANT_ZERO) / FLOW_QUANT_SCALE
    return tf.maximum(flow, -1.0)
