"""TFRecord storage of decoded videos and flow as `tf.train.SequenceExample`.

One record per video (Carreira & Zisserman, CVPR 2017 preprocessing: 25 fps,
short side 256):

  context:
    label       int64   class index (-1 when unknown, e.g. unlabelled test)
    label_name  bytes   class name
    video_id    bytes   unique id (file stem, or youtube_id_start_end)
    split       bytes   "train", "test", "val", ... ("" if not set)
    fps         float   frame rate of the stored frames
    num_frames  int64   T
    height      int64   H of the stored frames
    width       int64   W
    flow_method bytes   "tvl1", "dis", "farneback", "analytic" or "" (no flow)
  feature_lists:
    rgb         T x bytes  JPEG (RGB, quality `jpeg_quality`)
    flow        T x bytes  (optional) flow image per frame, aligned with rgb[t]
                           (see `i3d_keras.data.flow`: flow[t] is frame t -> t+1,
                           the last field repeated). A 3-channel 8-bit image:
                           R = x code, G = y code, B = 0, codes from
                           `preprocessing.quantize_flow` (round(f*127)+128 of
                           the normalised flow f = clip(px, -20, 20) / 20).
                           PNG (default) is lossless, so the only error is the
                           quantisation: <= 1/254 normalised = 0.079 px. JPEG
                           (quality 95, 4:4:4) is ~3.5x smaller (9 vs 32 KB
                           per 340x256 field of DIS flow on arm_wrestling.mp4)
                           but adds compression error: measured max 0.081
                           normalised (1.6 px), mean 0.006 (0.12 px).

Shards are named `NAME-00000-of-00010.tfrecord` and every dataset directory has
a `NAME.metadata.json` (classes, counts per split, preprocessing, flow method
and quantisation).

Encoding uses OpenCV (fast, no TensorFlow runtime in worker processes);
parsing and decoding are TensorFlow graph ops (`tf.io.decode_jpeg`, ...) for
`tf.data`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import cv2
import numpy as np
import tensorflow as tf

from i3d_keras.data import flow as flow_lib
from i3d_keras.data import preprocessing

PathLike = Union[str, os.PathLike]

FLOW_FORMATS = ("png", "jpeg")
SHARD_SUFFIX = ".tfrecord"
METADATA_SUFFIX = ".metadata.json"

#: Description of the stored flow quantisation, copied into metadata files.
FLOW_QUANTIZATION = {
    "normalised": "f = clip(flow_pixels, -20, 20) / 20",
    "code": "uint8 code = round(f * 127) + 128 (1..255, 128 = no motion)",
    "decode": "f = (code - 128) / 127",
    "image": "3-channel 8-bit image, R = x code, G = y code, B = 0",
    "max_abs_error_normalised": flow_lib.FLOW_QUANT_MAX_ERROR,
    "max_abs_error_pixels": flow_lib.FLOW_BOUND * flow_lib.FLOW_QUANT_MAX_ERROR,
}

CONTEXT_FEATURES = {
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "label_name": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "video_id": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "split": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "fps": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "flow_method": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


class CorruptShardError(ValueError):
    """A TFRecord shard is unreadable; names the file and the reason."""

    def __init__(self, path: PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Corrupt TFRecord shard '{self.path}': {reason}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.reason))


# ----------------------------------------------------------------------------
# Encoding (numpy / OpenCV)
# ----------------------------------------------------------------------------

def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """JPEG-encodes one RGB uint8 `[H, W, 3]` frame."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a frame of shape {frame.shape}")
    return buf.tobytes()


def encode_flow_image(flow: np.ndarray, fmt: str = "png", quality: int = 95) -> bytes:
    """Encodes one normalised flow field `[H, W, 2]` as a quantised image.

    R = x code, G = y code, B = 0 (codes from `quantize_flow`).
    """
    if fmt not in FLOW_FORMATS:
        raise ValueError(f"`fmt` must be one of {FLOW_FORMATS}. Received: fmt={fmt!r}")
    codes = flow_lib.quantize_flow_np(flow)
    bgr = np.zeros(codes.shape[:2] + (3,), np.uint8)
    bgr[..., 2] = codes[..., 0]  # OpenCV writes BGR: channel 2 is R
    bgr[..., 1] = codes[..., 1]
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        # 4:4:4 keeps full resolution in R and G (default 4:2:0 chroma
        # subsampling would blur flow across 2x2 blocks: ~2.6 px max error).
        ok, buf = cv2.imencode(".jpg", bgr, [
            cv2.IMWRITE_JPEG_QUALITY, int(quality),
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise ValueError(f"flow image encoding failed for shape {flow.shape}")
    return buf.tobytes()


def encode_video(frames: np.ndarray, flow: Optional[np.ndarray] = None,
                 jpeg_quality: int = 90, flow_format: str = "png") -> Dict[str, Any]:
    """Encodes frames (and flow) to per-frame image bytes.

    Args:
      frames: uint8 `[T, H, W, 3]` RGB.
      flow: optional float32 `[T, H, W, 2]` normalised flow aligned with frames.
      jpeg_quality: RGB JPEG quality.
      flow_format: "png" (lossless) or "jpeg".

    Returns:
      dict with "rgb" (list of bytes), "flow" (list of bytes or None),
      "num_frames", "height", "width".
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise ValueError("`frames` must be uint8 [T, H, W, 3] with T >= 1. "
                         f"Received: shape={frames.shape}, dtype={frames.dtype}")
    if flow is not None and tuple(flow.shape) != tuple(frames.shape[:3]) + (2,):
        raise ValueError("`flow` must be [T, H, W, 2] aligned with frames "
                         f"{tuple(frames.shape[:3])}. Received: shape={flow.shape}")
    return {
        "rgb": [encode_jpeg(f, jpeg_quality) for f in frames],
        "flow": None if flow is None else [encode_flow_image(f, flow_format) for f in flow],
        "num_frames": int(frames.shape[0]),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
    }


def make_sequence_example(encoded: Dict[str, Any], label: int = -1, label_name: str = "",
                          video_id: str = "", fps: float = 25.0, split: str = "",
                          flow_method: str = "") -> tf.train.SequenceExample:
    """Builds the SequenceExample of one video from `encode_video` output."""
    def _int(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    def _bytes(v):
        if isinstance(v, str):
            v = v.encode("utf-8")
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    context = tf.train.Features(feature={
        "label": _int(label),
        "label_name": _bytes(label_name),
        "video_id": _bytes(video_id),
        "split": _bytes(split),
        "fps": tf.train.Feature(float_list=tf.train.FloatList(value=[float(fps)])),
        "num_frames": _int(encoded["num_frames"]),
        "height": _int(encoded["height"]),
        "width": _int(encoded["width"]),
        "flow_method": _bytes(flow_method if encoded.get("flow") is not None else ""),
    })
    lists = {"rgb": tf.train.FeatureList(feature=[_bytes(b) for b in encoded["rgb"]])}
    if encoded.get("flow") is not None:
        lists["flow"] = tf.train.FeatureList(feature=[_bytes(b) for b in encoded["flow"]])
    return tf.train.SequenceExample(context=context,
                                    feature_lists=tf.train.FeatureLists(feature_list=lists))


def video_to_example(frames: np.ndarray, label: int = -1, label_name: str = "",
                     video_id: str = "", fps: float = 25.0, flow: Optional[np.ndarray] = None,
                     split: str = "", flow_method: str = "", jpeg_quality: int = 90,
                     flow_format: str = "png") -> tf.train.SequenceExample:
    """`encode_video` + `make_sequence_example` in one call."""
    encoded = encode_video(frames, flow, jpeg_quality, flow_format)
    return make_sequence_example(encoded, label, label_name, video_id, fps, split,
                                 flow_method)


# ----------------------------------------------------------------------------
# Shards and metadata
# ----------------------------------------------------------------------------

def shard_filename(name: str, index: int, num_shards: int) -> str:
    """`NAME-00003-of-00010.tfrecord`."""
    if not 0 <= index < num_shards:
        raise ValueError("Expected 0 <= index < num_shards. "
                         f"Received: index={index}, num_shards={num_shards}")
    return f"{name}-{index:05d}-of-{num_shards:05d}{SHARD_SUFFIX}"


def shard_pattern(name: str) -> str:
    """Glob pattern matching every shard of `name`."""
    return f"{name}-?????-of-?????{SHARD_SUFFIX}"


def write_records(path: PathLike, records: Iterable[Union[bytes, tf.train.SequenceExample]]
                  ) -> int:
    """Writes serialized records to one TFRecord file atomically.

    The file is written under a temporary name and renamed at the end, so an
    existing shard is always complete.

    Returns:
      The number of records written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    n = 0
    try:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for r in records:
                writer.write(r if isinstance(r, bytes) else r.SerializeToString())
                n += 1
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def write_shards(examples: Sequence[Union[bytes, tf.train.SequenceExample]],
                 output_dir: PathLike, name: str, num_shards: int = 1) -> List[Path]:
    """Writes records round-robin into `num_shards` shards; returns the paths."""
    if num_shards < 1:
        raise ValueError(f"`num_shards` must be >= 1. Received: num_shards={num_shards}")
    paths = []
    for i in range(num_shards):
        path = Path(output_dir) / shard_filename(name, i, num_shards)
        write_records(path, examples[i::num_shards])
        paths.append(path)
    return paths


def stale_shards(output_dir: PathLike, name: str, splits: Iterable[str],
                 keep: Iterable[str]) -> List[Path]:
    """Shards of dataset `name` in `output_dir` that a new plan does not write.

    A dataset converted again with other sharding leaves its old shards
    (`-of-00003` beside the new `-of-00002`), which the split's
    `file_pattern` would read too. These are the shards of `splits` (the old
    metadata's splits and the new ones: names of the dataset's own files
    only, never another dataset's) not in `keep`, with their `.done.json`
    markers.
    """
    output_dir, keep = Path(output_dir), set(keep)
    try:
        splits = set(splits) | set(read_metadata(metadata_path(output_dir, name))["splits"])
    except (OSError, ValueError, KeyError, TypeError):
        splits = set(splits)  # no metadata (or unreadable): the new splits only
    stale = []
    for split in sorted(splits):
        for shard in sorted(output_dir.glob(shard_pattern(f"{name}_{split}"))):
            if shard.name not in keep:
                marker = shard.with_name(shard.name + ".done.json")
                stale += [shard] + ([marker] if marker.exists() else [])
    return stale


def metadata_path(output_dir: PathLike, name: str) -> Path:
    return Path(output_dir) / f"{name}{METADATA_SUFFIX}"


def write_metadata(output_dir: PathLike, name: str, metadata: Dict[str, Any]) -> Path:
    """Writes `NAME.metadata.json` (atomically)."""
    path = metadata_path(output_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_metadata(path: PathLike) -> Dict[str, Any]:
    """Reads a metadata JSON file (or `NAME.metadata.json` in a directory)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob(f"*{METADATA_SUFFIX}"))
        if len(found) != 1:
            raise FileNotFoundError(
                f"Expected exactly one *{METADATA_SUFFIX} in '{path}'. "
                f"Received: {[p.name for p in found]}")
        path = found[0]
    if not path.is_file():
        raise FileNotFoundError(f"No metadata file at '{path}'")
    return json.loads(path.read_text())


def find_corrupt_shard(paths: Iterable[PathLike]) -> Optional[CorruptShardError]:
    """The first unreadable shard of `paths` as an error to raise, or None.

    For use after TensorFlow's `DataLossError`, which does not name the file:
    training and evaluation read the shards once more, only then.
    """
    try:
        verify_shards(paths)
    except CorruptShardError as error:
        return error
    return None


def verify_shards(paths: Iterable[PathLike]) -> Dict[str, int]:
    """Reads every record of every shard, checking CRCs and framing.

    TensorFlow's own read errors ("corrupted record at 12") do not say which
    file is at fault; this does.

    Returns:
      {path: number of records}.

    Raises:
      CorruptShardError: naming the first unreadable shard.
    """
    counts = {}
    for p in paths:
        p = str(p)
        if not os.path.isfile(p):
            raise CorruptShardError(p, "file does not exist")
        n = 0
        try:
            for _ in tf.data.TFRecordDataset(p):
                n += 1
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError,
                tf.errors.InvalidArgumentError) as e:
            raise CorruptShardError(p, f"{e.message.splitlines()[0]} (after {n} good records)"
                                    ) from None
        counts[p] = n
    return counts


# ----------------------------------------------------------------------------
# Parsing and decoding (TensorFlow graph ops)
# ----------------------------------------------------------------------------

def parse_sequence_example(serialized, with_rgb: bool = True, with_flow: bool = False):
    """Parses one serialized SequenceExample without decoding images.

    Args:
      serialized: scalar string tensor.
      with_rgb: include the "rgb" feature list.
      with_flow: include the "flow" feature list.

    Returns:
      dict of the context features (see module docstring) plus "rgb" and/or
      "flow": string tensors `[T]` of encoded images.
    """
    seq = {}
    if with_rgb:
        seq["rgb"] = tf.io.FixedLenSequenceFeature([], tf.string)
    if with_flow:
        seq["flow"] = tf.io.FixedLenSequenceFeature([], tf.string)
    context, lists = tf.io.parse_single_sequence_example(
        serialized, context_features=CONTEXT_FEATURES, sequence_features=seq)
    out = dict(context)
    out.update(lists)
    return out


def decode_rgb(encoded):
    """Decodes JPEG frames: string `[N]` -> uint8 `[N, H, W, 3]`."""
    frames = tf.map_fn(lambda s: tf.io.decode_jpeg(s, channels=3), encoded,
                       fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    return tf.ensure_shape(frames, [None, None, None, 3])


def decode_flow(encoded):
    """Decodes flow images (PNG or JPEG): string `[N]` -> float32 `[N, H, W, 2]`.

    Values are the dequantised normalised flow in [-1, 1].
    """
    def _one(s):
        img = tf.io.decode_image(s, channels=3, expand_animations=False)
        return img[..., :2]

    codes = tf.map_fn(_one, encoded, fn_output_signature=tf.TensorSpec([None, None, 2],
                                                                       tf.uint8))
    codes = tf.ensure_shape(codes, [None, None, None, 2])
    return preprocessing.dequantize_flow(codes)


def parse_and_decode(serialized, with_rgb: bool = True, with_flow: bool = False):
    """Parses and fully decodes one record: "rgb" uint8 `[T, H, W, 3]` and/or
    "flow" float32 `[T, H, W, 2]`, plus the context features."""
    out = parse_sequence_example(serialized, with_rgb, with_flow)
    if with_rgb:
        out["rgb"] = decode_rgb(out["rgb"])
    if with_flow:
        out["flow"] = decode_flow(out["flow"])
    return out


def read_examples(paths: Sequence[PathLike], with_rgb: bool = True, with_flow: bool = False
                  ) -> List[Dict[str, np.ndarray]]:
    """Eagerly reads and decodes every record of some shards (tests, tools)."""
    ds = tf.data.TFRecordDataset([str(p) for p in paths])
    ds = ds.map(lambda s: parse_and_decode(s, with_rgb, with_flow))
    return [{k: v.numpy() for k, v in ex.items()} for ex in ds]
