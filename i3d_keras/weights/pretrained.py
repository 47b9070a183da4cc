"""Pretrained weights for `InceptionI3D(weights=...)`.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017: I3D is bootstrapped from ImageNet
Inception-V1 ("imagenet") and trained on Kinetics, from ImageNet or from
scratch (DeepMind's published checkpoints, "kinetics" / "kinetics_scratch").

| `weights`            | source                                                        |
|----------------------|---------------------------------------------------------------|
| `"imagenet"`         | TF-slim `inception_v1_2016_08_28`, inflated (`inflate_into_i3d`) |
| `"kinetics"`         | DeepMind `{stream}_imagenet` (Kinetics-400)                   |
| `"kinetics_scratch"` | DeepMind `{stream}_scratch` (Kinetics-400)                    |
| `"kinetics600"`      | DeepMind `rgb_scratch_kin600` (Kinetics-600, RGB only)        |
| a checkpoint name    | one of `deepmind.CHECKPOINT_NAMES`, e.g. `"flow_imagenet"`  |
| a path               | `.keras` / `.weights.h5` (Keras), a DeepMind `model.ckpt` prefix, or a TF-slim Inception-V1 checkpoint |

Class counts: when the model's `num_classes` differs from the Kinetics
checkpoint's (400 or 600), the logits layer keeps its random initialisation
and a warning says so (fine-tuning on another dataset is the usual reason).
ImageNet weights never provide Kinetics logits: the logits stay initialised
unless the model has 1001 classes (slim's ImageNet classes).
"""

import os

import keras

from i3d_keras.models import inception_v1
from i3d_keras.utils import downloads
from i3d_keras.weights import deepmind

DEEPMIND_URL = (
    "https://github.com/deepmind/kinetics-i3d/raw/master/data/checkpoints/"
    "{name}/model.ckpt.{part}"
)
DEEPMIND_PARTS = ("index", "data-00000-of-00001")
# DeepMind publishes no checksums for these files; none are checked.
DEEPMIND_FILE_HASHES = {}

KEYWORDS = ("imagenet", "kinetics", "kinetics_scratch", "kinetics600")


def download_deepmind_checkpoint(name, cache_dir=None):
    """Downloads one of DeepMind's Kinetics checkpoints with `keras.utils.get_file`.

    Reference: Carreira & Zisserman, CVPR 2017; github.com/deepmind/kinetics-i3d.

    Args:
        name: one of `deepmind.CHECKPOINT_NAMES`.
        cache_dir: Keras cache directory (default `~/.keras`); files go to
            `{cache_dir}/i3d_keras/{name}/`.

    Returns:
        The checkpoint prefix (`.../model.ckpt`).

    Example:

    >>> prefix = download_deepmind_checkpoint("rgb_imagenet")  # doctest: +SKIP
    """
    if name not in deepmind.CHECKPOINT_NAMES:
        raise ValueError(
            f"Expected one of {deepmind.CHECKPOINT_NAMES}. Received: name={name!r}"
        )
    paths = []
    for part in DEEPMIND_PARTS:
        paths.append(
            downloads.get_file(
                f"model.ckpt.{part}",
                DEEPMIND_URL.format(name=name, part=part),
                what=f"DeepMind's {name} checkpoint",
                # Tool-neutral: train takes the weights as --init, predict as --model.
                offline=(f"download data/checkpoints/{name}/model.ckpt.* of DeepMind's "
                         "kinetics-i3d repository elsewhere and pass the prefix "
                         f"(.../{name}/model.ckpt) instead of the keyword (train.py --init, "
                         "predict.py --model), or a .keras file"),
                file_hash=DEEPMIND_FILE_HASHES.get((name, part)),
                cache_subdir=os.path.join("i3d_keras", name),
                cache_dir=cache_dir,
            )
        )
    return paths[0][: -len(".index")]


def _checkpoint_name(weights, stream):
    if weights == "kinetics":
        return f"{stream}_imagenet"
    if weights == "kinetics_scratch":
        return f"{stream}_scratch"
    if weights == "kinetics600":
        if stream != "rgb":
            raise ValueError(
                "Kinetics-600 weights exist for the RGB stream only. Received: stream='flow'"
            )
        return "rgb_scratch_kin600"
    return weights


def load_keras_model(path, *, compile=False):  # noqa: A002 (Keras' own argument name)
    """Loads a `.keras` model file, naming what is wrong with a file that is not one.

    Args:
        path: a `.keras` file (a zip archive written by `model.save`).
        compile: restore the optimizer and loss too.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: no such file (or a folder).
        ValueError: not a Keras model file (not a `.keras` zip archive, or
            one Keras cannot read), with Keras' reason.

    Example:

    >>> model = load_keras_model("runs/i3d_rgb_motion/best.keras")  # doctest: +SKIP
    """
    import zipfile  # noqa: PLC0415

    import i3d_keras  # noqa: F401, PLC0415 (registers the custom layers)

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Expected a .keras model file. Received: {path!r} "
                                f"({'a folder' if os.path.isdir(path) else 'no such file'})")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"not a Keras model file: {path!r} (a .keras file is a zip archive "
                         "written by model.save; this one is not, or is truncated)")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as error:  # noqa: BLE001 (Keras raises various errors)
        reason = " ".join(str(error).split())[:300]
        raise ValueError(f"not a Keras model file Keras can read: {path!r} ({reason})") from None


def load_imagenet_inflated(model, slim_checkpoint, *, method="mean", channel_rule="equal_response"):
    """Bootstraps an I3D model from TF-slim's ImageNet Inception-V1 checkpoint.

    Args:
        model: a model built by `InceptionI3D` (modified in place).
        slim_checkpoint: path of `inception_v1.ckpt`.
        method, channel_rule: see `inception_v1.inflate_into_i3d`.

    Returns:
        The inflation report.
    """
    model_2d = inception_v1.InceptionV1(image_size=None)
    inception_v1.load_slim_checkpoint(model_2d, slim_checkpoint)
    return inception_v1.inflate_into_i3d(model_2d, model, method=method, channel_rule=channel_rule)


def _copy_from_keras_file(model, path):
    """Copies weights layer by layer (by name) from a saved `.keras` model."""
    source = load_keras_model(path)
    layers = {layer.name: layer for layer in source.layers}
    missing, mismatched = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        other = layers.get(layer.name)
        if other is None:
            missing.append(layer.name)
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        other_shapes = [tuple(w.shape) for w in other.weights]
        if shapes != other_shapes:
            mismatched.append(f"{layer.name}: model {shapes}, file {other_shapes}")
    if missing or mismatched:
        raise ValueError(
            f"Cannot load {path!r} into model {model.name!r}: "
            + "; ".join(
                part for part in (
                    f"layers missing from the file: {missing}" if missing else "",
                    f"shape mismatches: {mismatched}" if mismatched else "",
                ) if part
            )
        )
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(layers[layer.name].get_weights())


def _load_path(model, path):
    path = os.fspath(path)
    if path.endswith((".keras", ".weights.h5", ".h5")):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Expected an existing weights file. Received: weights={path!r}")
        if path.endswith(".keras"):
            _copy_from_keras_file(model, path)
            return {"source": "keras", "path": path}
        try:
            model.load_weights(path)
        except Exception as error:  # noqa: BLE001 (Keras raises various errors)
            raise ValueError(
                f"Cannot load {path!r} into model {model.name!r} (the file must come from "
                f"the same architecture, stream and class count): {error}"
            ) from None
        return {"source": "keras", "path": path}
    reader, shapes, resolved = deepmind.open_checkpoint(path)
    del reader
    if any(name.startswith(inception_v1.SLIM_SCOPE + "/") for name in shapes):
        report = load_imagenet_inflated(model, resolved)
        return {"source": "slim", "path": resolved, **report}
    report = deepmind.load_deepmind_checkpoint(model, resolved, on_logits_mismatch="reinitialize")
    return {"source": "deepmind", "path": resolved, **report}


def load_pretrained(model, weights, stream="rgb"):
    """Loads pretrained weights into an `InceptionI3D` model (`weights=` of it).

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017 (ImageNet bootstrapping and the Kinetics checkpoints).

    Args:
        model: a model built by `InceptionI3D` (modified in place).
        weights: `"imagenet"`, `"kinetics"`, `"kinetics_scratch"`,
            `"kinetics600"`, a DeepMind checkpoint name, or a path (see the
            module docstring).
        stream: `"rgb"` or `"flow"`, the model's stream.

    Returns:
        A dict describing what was loaded.

    Raises:
        FileNotFoundError: a path that doesn't exist or isn't a checkpoint.
        ValueError: weights that don't fit the model (wrong stream, missing
            or unused variables, a Keras file of another architecture).

    Example:

    >>> model = InceptionI3D(400, "rgb", weights="kinetics")  # doctest: +SKIP
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"`weights` must be None, one of {KEYWORDS}, a checkpoint name or a path. "
            f"Received: weights={weights!r}"
        )
    if isinstance(weights, str) and weights == "imagenet":
        return {"source": "slim", **load_imagenet_inflated(model, inception_v1.download_slim_checkpoint())}
    if isinstance(weights, str) and (weights in KEYWORDS or weights in deepmind.CHECKPOINT_NAMES):
        name = _checkpoint_name(weights, stream)
        if not name.startswith(stream):
            raise ValueError(
                f"Checkpoint {name!r} is not for the {stream} stream. Received: weights={weights!r}"
            )
        prefix = download_deepmind_checkpoint(name)
        report = deepmind.load_deepmind_checkpoint(model, prefix, on_logits_mismatch="reinitialize")
        return {"source": "deepmind", "path": prefix, **report}
    path = os.fspath(weights)
    looks_like_path = os.sep in path or "." in os.path.basename(path) or os.path.exists(path)
    if not looks_like_path:
        raise ValueError(
            f"`weights` must be None, one of {KEYWORDS}, one of "
            f"{deepmind.CHECKPOINT_NAMES} or a path. Received: weights={weights!r}"
        )
    return _load_path(model, path)
