"""Fréchet Video Distance (FVD) and Kernel Video Distance (KVD) between two video sets.

Reference: Unterthiner et al., "Towards Accurate Generative Models of Video: A New
Metric & Challenges", arXiv:1812.01717, computed as their reference implementation
(google-research `frechet_video_distance`): frames resized to 224x224 with TF1's
bilinear convention (no aspect ratio kept), [0, 255] -> [-1, 1], the 400 logits of
TF-Hub's I3D Kinetics-400 averaged over time, the Fréchet distance of Gaussians
fitted to them in float64; KVD is the unbiased polynomial-kernel MMD^2 (KID) of the
same features. See i3d_keras/tasks/fvd.py.

Usage:
  # Two folders of videos (searched recursively), the reference's weights (downloaded
  # from TF-Hub) and clips of the first 16 frames:
  python tools/fvd.py --real data/real --generated samples/ --json fvd.json

  # A downloaded and unpacked TF-Hub module (or a DeepMind checkpoint, a .keras file):
  python tools/fvd.py --weights ~/i3d-kinetics-400_1 --real real.npy --generated fake.npz

  # Encode the real set once, then reuse its statistics:
  python tools/fvd.py --real data/real --save_stats real_stats.npz
  python tools/fvd.py --real real_stats.npz --generated samples/

R and G are folders of video files, .npy / .npz arrays [N, T, H, W, 3] (uint8, or
floats in --value_range) or [N, 400] features, or a statistics file written by
--save_stats (mean, covariance and features; KVD needs the features). Unreadable
videos and videos shorter than --frames are reported and skipped.

Results go to standard output (and --json), progress and messages to standard error;
--verbose shows the libraries' own logs. Exit status: 0 success; 1 some inputs failed
(skipped videos, unusable data, a failed download; a result is still written when both
sets have 2 usable videos); 2 usage error (missing paths, unknown file kinds, bad flags,
a statistics file computed with another protocol).
"""

import sys
import warnings
from pathlib import Path

from i3d_keras.utils import console

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_REAL = flags.DEFINE_string("real", None, "Real videos: a folder, .npy/.npz array or a "
                            "statistics .npz.")
_GENERATED = flags.DEFINE_string("generated", None, "Generated videos: a folder, .npy/.npz "
                                 "array or a statistics .npz.")
_SAVE_STATS = flags.DEFINE_string("save_stats", None, "Write the real set's statistics "
                                  "(mean, covariance, features, protocol) to this .npz.")
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing --json and --save_stats "
                               "files.")
_WEIGHTS = flags.DEFINE_string("weights", "tfhub", "'tfhub' (the reference's I3D, "
                               "downloaded), a TF-Hub module folder, 'kinetics' (DeepMind's "
                               "rgb_imagenet: other weights, other FVDs), a DeepMind "
                               "checkpoint, a .keras file, or 'random' (tests only).")
_FRAMES = flags.DEFINE_integer("frames", 16, "Clip length: the first FRAMES frames of each "
                               "video file; for arrays only when given (default: all).",
                               lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Clips per forward pass.", lower_bound=1)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Frame size fed to I3D (the "
                                   "protocol: 224).", lower_bound=1)
_RESIZE = flags.DEFINE_enum("resize", "tf1", ["tf1", "tf2", "align_corners"],
                            "tf1: the reference's resize_bilinear; tf2: tf.image.resize "
                            "(half-pixel centres); align_corners.")
_VALUE_RANGE = flags.DEFINE_list("value_range", ["0", "255"], "low,high of float arrays.")
_FPS = flags.DEFINE_float("fps", None, "Decode video files at this rate (default: as stored).",
                          lower_bound=1e-3)
_MIXED = flags.DEFINE_bool("mixed_precision", False, "Use the package's 'auto' precision "
                           "(i3d_keras.runtime.precision: bfloat16 or float16 where the hardware "
                           "has it). FVDs are comparable in float32 only.")
_KVD = flags.DEFINE_bool("kvd", True, "Also compute KVD.")
_KVD_SUBSET = flags.DEFINE_integer("kvd_subset_size", None, "KVD as the mean over 100 random "
                                   "subsets of this size (KID's protocol; default: all pairs).",
                                   lower_bound=2)

_PROTOCOL_KEYS = ("clip_length", "image_size", "resize")


class _UsageError(Exception):
    pass


class _InputError(Exception):
    pass


def _say(message):
    console.info(f"{console.program_name()}: {message}")


def _value_range():
    try:
        low, high = (float(v) for v in _VALUE_RANGE.value)
    except ValueError:
        raise _UsageError(f"--value_range must be two numbers low,high. Received: "
                          f"{','.join(_VALUE_RANGE.value)}") from None
    if not high > low:
        raise _UsageError(f"--value_range must have high > low. Received: {low:g},{high:g}")
    return low, high


def _load(spec, role):
    """`(kind, data)`: ("folder", path), ("videos", array), ("features", array), ("stats", s)."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise _UsageError(f"--{role}: no such file or folder: '{path}'")
    if path.is_dir():
        return "folder", path
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise _UsageError(f"--{role}: expected a folder of videos, a .npy/.npz array or a "
                          f"statistics .npz. Received: '{path}'")
    try:
        if suffix == ".npy":
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as data:
                if {"mean", "covariance", "count"} <= set(data.files):
                    from i3d_keras.tasks import fvd  # noqa: PLC0415 (TensorFlow)

                    return "stats", fvd.FeatureStatistics.load(path)
                names = [n for n in data.files if n in ("videos", "features")] or data.files
                if len(names) != 1:
                    raise _UsageError(
                        f"--{role}: expected one array (or one named 'videos') in '{path}'. "
                        f"Received: arrays {data.files}")
                array = data[names[0]]
    except (OSError, ValueError, EOFError) as error:
        raise _UsageError(f"--{role}: cannot read '{path}' as a NumPy file ({error})") from None
    if array.ndim == 2:
        return "features", np.asarray(array, np.float64)
    if array.ndim != 5 or array.shape[-1] != 3:
        raise _UsageError(f"--{role}: expected videos [N, T, H, W, 3] or features [N, d] in "
                          f"'{path}'. Received: shape {array.shape}")
    return "videos", array


def _expected_clip_length(kind, data):
    if kind == "folder":
        return _FRAMES.value
    if kind == "videos":
        return _FRAMES.value if flags.FLAGS["frames"].present else int(data.shape[1])
    return None


def _check_protocol(stats, role, wanted, against):
    """A usage error when `stats` were computed otherwise than `wanted` (the
    protocol of this run, or of the other statistics file); a warning for weights."""
    meta = stats.metadata
    differ = [f"{key}: file {meta[key]}, {against} {wanted[key]}" for key in _PROTOCOL_KEYS
              if meta.get(key) is not None and wanted.get(key) is not None
              and meta[key] != wanted[key]]
    if differ:
        raise _UsageError(f"--{role}: the statistics were computed with another protocol "
                          f"({'; '.join(differ)}); FVDs across protocols are not comparable")
    if meta.get("weights") not in (None, wanted.get("weights")):
        _say(f"warning: --{role} statistics were computed with weights {meta['weights']!r}, "
             f"{against} {wanted.get('weights')!r}")


def _describe(role, kind, spec, info, stats):
    entry = {"source": str(spec), "kind": kind, "count": stats.count}
    for key in ("clip_length", "frame_sizes", "failed", "too_short", "num_videos",
                "precision", "seconds"):
        if key in info:
            entry[key] = info[key]
    for key in _PROTOCOL_KEYS + ("weights", "precision"):
        if kind == "stats" and key in stats.metadata:
            entry[key] = stats.metadata[key]
    return entry


def main(argv):
    if len(argv) > 1:
        raise _UsageError(f"unexpected arguments {argv[1:]}; use --real and --generated")
    if not _REAL.value:
        raise _UsageError("--real is required (and --generated, unless only --save_stats)")
    if not _GENERATED.value and not _SAVE_STATS.value:
        raise _UsageError("--generated is required (or --save_stats to cache the real set)")
    if _SAVE_STATS.value and Path(_SAVE_STATS.value).suffix.lower() != ".npz":
        # --real and --generated read a statistics file by its suffix.
        raise _UsageError("--save_stats: expected a file name ending in .npz (what --real "
                          f"and --generated read back). Received: {_SAVE_STATS.value!r}")
    given = [_REAL.value, _GENERATED.value, _WEIGHTS.value]
    for flag, path in (("json", _JSON.value), ("save_stats", _SAVE_STATS.value)):
        if path:
            outputs.check_output_file(path, flag=flag, inputs=given, overwrite=_OVERWRITE.value)
    if _JSON.value and _SAVE_STATS.value and outputs.same_file(_JSON.value, _SAVE_STATS.value):
        raise _UsageError("--json and --save_stats name the same file. Received: "
                          f"{_JSON.value!r}")
    value_range = _value_range()
    image_size, resize = _IMAGE_SIZE.value, _RESIZE.value
    roles = [("real", _REAL.value)] + ([("generated", _GENERATED.value)]
                                       if _GENERATED.value else [])
    inputs = {role: _load(spec, role) for role, spec in roles}
    if _SAVE_STATS.value and inputs["real"][0] == "stats":
        raise _UsageError("--save_stats needs real videos or features. Received: --real is "
                          "already a statistics file")
    precision = "auto" if _MIXED.value else "float32"
    weights = _WEIGHTS.value
    kinds = {role: kind for role, (kind, _) in inputs.items()}
    if list(kinds.values()) == ["stats", "stats"]:
        # Nothing is encoded: the files' own protocol, the same in both.
        real_meta = inputs["real"][1].metadata
        _check_protocol(inputs["generated"][1], "generated", real_meta, "--real")
        weights = real_meta.get("weights", "unknown")
        image_size = (real_meta.get("image_size") or [image_size])[0]
        resize = real_meta.get("resize", resize)
    else:
        for role, (kind, data) in inputs.items():
            if kind == "stats":
                other_kind, other_data = next(v for r, v in inputs.items() if r != role)
                wanted = {"clip_length": _expected_clip_length(other_kind, other_data),
                          "image_size": [image_size] * 2, "resize": resize,
                          "weights": weights}
                _check_protocol(data, role, wanted, "this run")

    from i3d_keras.tasks import fvd  # noqa: PLC0415 (TensorFlow)

    model = None
    if any(kind in ("folder", "videos") for kind, _ in inputs.values()):
        try:
            model = fvd.load_fvd_model(weights, precision=precision)
        except FileNotFoundError as error:
            raise _UsageError(f"--weights: {error}") from None
        except ValueError as error:
            raise _UsageError(f"--weights: {error}") from None
        except OSError as error:
            raise _InputError(str(error)) from None
    stats, infos = {}, {}
    for role, (kind, data) in inputs.items():
        info = {}
        if kind == "stats":
            stats[role] = data
        else:
            if kind != "features":
                _say(f"encoding the {role} set: "
                     f"{data if kind == 'folder' else console.plural(len(data), 'video')}")
                try:
                    data = fvd.video_features(
                        data, model, frames=(_FRAMES.value if kind == "folder"
                                             or flags.FLAGS["frames"].present else None),
                        batch_size=_BATCH.value, image_size=image_size,
                        resize=resize, value_range=value_range, fps=_FPS.value,
                        report=info)
                except ValueError as error:
                    raise _InputError(f"--{role}: {error}") from None
                for name, reason in info["failed"] + info["too_short"]:
                    _say(f"skipped {name}: {reason}")
            meta = {"clip_length": info.get("clip_length"),
                    "image_size": [image_size] * 2, "resize": resize,
                    "weights": weights, "precision": info.get("precision"),
                    "source": str(_REAL.value if role == "real" else _GENERATED.value)}
            try:
                stats[role] = fvd.FeatureStatistics.from_features(data, meta)
            except ValueError as error:
                raise _InputError(f"--{role}: {error}") from None
        infos[role] = _describe(role, kind, dict(roles)[role], info, stats[role])
    if _SAVE_STATS.value:
        saved = stats["real"].save(Path(_SAVE_STATS.value).expanduser())
        _say(f"real statistics ({console.plural(stats['real'].count, 'video')}) written to "
             f"{saved}")
    failed = sum(len(i.get("failed", [])) + len(i.get("too_short", [])) for i in infos.values())
    used = [i["precision"] for i in infos.values() if i.get("precision")]
    result = {"weights": weights, "precision": used[0] if used else precision,
              "image_size": image_size,
              "resize": resize, **{role: infos[role] for role in infos}}
    if "generated" in stats:
        real, generated = stats["real"], stats["generated"]
        if real.mean.shape != generated.mean.shape:
            raise _UsageError(f"the sets have features of different sizes: "
                              f"{real.mean.shape[0]} and {generated.mean.shape[0]}")
        result["fvd"] = fvd.frechet_distance(*real.gaussian, *generated.gaussian)
        result["kvd"] = None
        if _KVD.value:
            if real.features is None or generated.features is None:
                _say("warning: no KVD: a statistics file without features")
            else:
                try:
                    result["kvd"] = fvd.kernel_distance(
                        real.features, generated.features, subset_size=_KVD_SUBSET.value)
                except ValueError as error:
                    raise _UsageError(f"--kvd_subset_size: {error}") from None
        clips = {infos[r].get("clip_length") for r in infos}
        if len(clips - {None}) > 1:
            lengths = " and ".join(str(c) for c in sorted(clips - {None}))
            _say(f"warning: the sets' clips have different lengths ({lengths} frames), so "
                 "the FVD measures the length too")
        print(f"FVD: {result['fvd']:.4f}")
        if result["kvd"] is not None:
            print(f"KVD: {result['kvd']:.6f}")
        print(f"N: real {real.count}, generated {generated.count}; clip length: "
              f"{'/'.join(str(c) for c in sorted(clips, key=str))} frames; "
              f"{image_size}x{image_size} ({resize} resize); weights: "
              f"{weights}; precision: {result['precision']}")
    if _JSON.value:
        outputs.write_json(Path(_JSON.value).expanduser(), result)
        _say(f"results written to {_JSON.value}")
    if failed:
        _say(f"skipped {console.plural(failed, 'input video')} (unreadable, or shorter than "
             "the clip length)")
        sys.exit(console.EXIT_FAILED)


def _run(argv):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            main(argv)
        except _UsageError as error:
            console.fail(str(error), console.EXIT_USAGE)
        except _InputError as error:
            console.fail(str(error), console.EXIT_FAILED)
        finally:
            seen = set()
            for warning in caught:
                text = str(warning.message)
                if issubclass(warning.category, UserWarning) and text not in seen:
                    seen.add(text)
                    _say(f"warning: {text}")


if __name__ == "__main__":
    console.run(_run)
