"""The 2D Inception-V1 that I3D inflates (TF-slim's batch-normalised variant).

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017: I3D is Inception-V1 with batch
normalisation (Szegedy et al., CVPR 2015; Ioffe & Szegedy, ICML 2015)
inflated to 3D, bootstrapped from its ImageNet weights. DeepMind inflated
TF-slim's `inception_v1` (`tensorflow/models/research/slim/nets/
inception_v1.py`), whose ImageNet checkpoint is `inception_v1_2016_08_28`.

Layer names follow TF-slim's scopes with "_" for "/" and the I3D layer
naming (`{scope}_conv_2d`, `{scope}_batch_norm`, activation `{scope}`), so
that `to_i3d_name` maps every 2D layer to its `InceptionI3D` counterpart
(`Conv2d` -> `Conv3d`, `conv_2d` -> `conv_3d`, `MaxPool_` -> `MaxPool3d_`),
e.g. `Mixed_5b_Branch_2_Conv2d_0a_3x3_conv_2d` ->
`Mixed_5b_Branch_2_Conv3d_0a_3x3_conv_3d`.
"""

import os
import re

import keras
import numpy as np

from i3d_keras.models import i3d as i3d_model

SLIM_URL = "http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz"
# No published checksum of the tarball was found (TF-slim's README lists the
# URL only), so the download is not verified against a hash.
SLIM_FILE_HASH = None
SLIM_CHECKPOINT_FILE = "inception_v1.ckpt"
SLIM_SCOPE = "InceptionV1"
SLIM_NUM_CLASSES = 1001  # ImageNet's 1000 classes + background (index 0).

# Optimizer slots and bookkeeping a slim checkpoint may hold besides weights.
_IGNORED_SUFFIXES = ("/Momentum", "/RMSProp", "/RMSProp_1", "/Adam", "/Adam_1",
                     "/ExponentialMovingAverage")
_IGNORED_NAMES = ("global_step",)


def _to_2d_name(name):
    return name.replace("Conv3d_", "Conv2d_").replace("MaxPool3d_", "MaxPool_")


def to_i3d_name(name):
    """Maps a 2D Inception-V1 layer name to the `InceptionI3D` layer name.

    Args:
        name: a layer name of `InceptionV1`, e.g. `"Conv2d_1a_7x7_conv_2d"`.

    Returns:
        The I3D name, e.g. `"Conv3d_1a_7x7_conv_3d"`.

    Example:

    >>> to_i3d_name("Mixed_4b_Branch_3_MaxPool_0a_3x3")
    'Mixed_4b_Branch_3_MaxPool3d_0a_3x3'
    """
    return (
        name.replace("Conv2d_", "Conv3d_")
        .replace("_conv_2d", "_conv_3d")
        .replace("MaxPool_", "MaxPool3d_")
    )


def apply_unit2d(x, filters, kernel_size=1, strides=1, *, name, use_batch_norm=True,
                 use_bias=False, activation="relu", batch_norm_momentum=0.9997):
    """TF-slim's conv unit: Conv2D (no bias) -> BatchNorm (offset, no scale) -> ReLU.

    Args:
        x: tensor `[batch, height, width, channels]`.
        filters: output channels.
        kernel_size: int or `(height, width)`.
        strides: int or `(height, width)`.
        name: the slim scope with "_" for "/"; layers `{name}_conv_2d`,
            `{name}_batch_norm` and `{name}` (the activation).
        use_batch_norm: add BatchNorm (epsilon 1e-3, `scale=False`, as slim's
            inception arg scope).
        use_bias: conv bias (only the logits conv has one).
        activation: `"relu"` or None.
        batch_norm_momentum: slim's decay 0.9997.

    Returns:
        The unit's output tensor.
    """
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
        name=f"{name}_conv_2d",
    )(x)
    if use_batch_norm:
        x = keras.layers.BatchNormalization(
            epsilon=1e-3, center=True, scale=False, momentum=batch_norm_momentum,
            name=f"{name}_batch_norm",
        )(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=name)(x)
    return x


def _inception_block_2d(x, channels, name, momentum):
    b0, b1a, b1b, b2a, b2b, b3 = channels
    unit = dict(batch_norm_momentum=momentum)
    branch_0 = apply_unit2d(x, b0, 1, name=f"{name}_Branch_0_Conv2d_0a_1x1", **unit)
    branch_1 = apply_unit2d(x, b1a, 1, name=f"{name}_Branch_1_Conv2d_0a_1x1", **unit)
    branch_1 = apply_unit2d(branch_1, b1b, 3, name=f"{name}_Branch_1_Conv2d_0b_3x3", **unit)
    branch_2 = apply_unit2d(x, b2a, 1, name=f"{name}_Branch_2_Conv2d_0a_1x1", **unit)
    conv_name = _to_2d_name(i3d_model._BRANCH_2_CONV_NAME.get(name, "Conv3d_0b_3x3"))
    branch_2 = apply_unit2d(branch_2, b2b, 3, name=f"{name}_Branch_2_{conv_name}", **unit)
    branch_3 = keras.layers.MaxPooling2D(
        3, strides=1, padding="same", name=f"{name}_Branch_3_MaxPool_0a_3x3"
    )(x)
    branch_3 = apply_unit2d(branch_3, b3, 1, name=f"{name}_Branch_3_Conv2d_0b_1x1", **unit)
    return keras.layers.Concatenate(axis=-1, name=name)([branch_0, branch_1, branch_2, branch_3])


def InceptionV1(num_classes=SLIM_NUM_CLASSES, *, image_size=224, channels=3, include_top=True,
                dropout_rate=0.2, batch_norm_momentum=0.9997, weights=None, name="InceptionV1"):
    """TF-slim's batch-normalised Inception-V1 as a Keras functional model.

    Reference: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
    with batch normalisation (Ioffe & Szegedy, ICML 2015) as in TF-slim; the
    network I3D inflates (Carreira & Zisserman, CVPR 2017).

    The layers mirror `InceptionI3D` in 2D (same endpoints, "SAME" padding,
    BatchNorm without scale). The head averages Mixed_5c over space (slim's
    7x7 VALID average pool at 224 pixels; a global mean at any size), applies
    dropout and a 1x1 conv with bias, and squeezes to `[batch, num_classes]`
    (layer `Logits`). Inputs are in [-1, 1] (slim's inception preprocessing).

    Args:
        num_classes: logits (slim ImageNet: 1001, index 0 = background).
        image_size: int, `(height, width)` or None.
        channels: input channels.
        include_top: build the head; otherwise the output is Mixed_5c.
        dropout_rate: before the logits conv (slim: keep 0.8).
        batch_norm_momentum: slim's 0.9997.
        weights: None, `"imagenet"` (downloads slim's checkpoint) or a path
            to a slim checkpoint.
        name: model name.

    Returns:
        A `keras.Model`.

    Example:

    >>> model = InceptionV1(num_classes=10, image_size=64)
    >>> model(np.zeros([1, 64, 64, 3], "float32")).shape
    TensorShape([1, 10])
    """
    height, width = i3d_model._image_size_pair(image_size)
    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = inputs
    for endpoint, kind, args in i3d_model.ARCHITECTURE:
        name_2d = _to_2d_name(endpoint)
        if kind == "conv":
            x = apply_unit2d(x, args["filters"], args["kernel_size"], args["strides"],
                             name=name_2d, batch_norm_momentum=batch_norm_momentum)
        elif kind == "pool":
            x = keras.layers.MaxPooling2D(
                args["pool_size"][1:], strides=args["strides"][1:], padding="same", name=name_2d
            )(x)
        else:
            x = _inception_block_2d(x, args, endpoint, batch_norm_momentum)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="Logits_AvgPool_0a_7x7")(x)
        x = keras.layers.Dropout(dropout_rate, name="Logits_Dropout_0b")(x)
        x = apply_unit2d(x, num_classes, 1, name="Logits_Conv2d_0c_1x1", use_batch_norm=False,
                         use_bias=True, activation=None)
        x = keras.layers.Reshape((num_classes,), name="Logits")(x)
    model = keras.Model(inputs, x, name=name)
    if weights == "imagenet":
        load_slim_checkpoint(model, download_slim_checkpoint())
    elif weights is not None:
        load_slim_checkpoint(model, weights)
    return model


def _slim_scope(layer_name):
    match = re.fullmatch(r"(Mixed_\d[a-z])_(Branch_\d)_(.+)", layer_name)
    if match:
        return "/".join(match.groups())
    if layer_name.startswith("Logits_"):
        return "Logits/" + layer_name[len("Logits_"):]
    return layer_name


def slim_variable_names(model):
    """The slim checkpoint variable for every weight of an `InceptionV1` model.

    Args:
        model: a model built by `InceptionV1`.

    Returns:
        A dict from slim variable name (e.g.
        `"InceptionV1/Mixed_3b/Branch_0/Conv2d_0a_1x1/BatchNorm/beta"`) to
        `(layer, index of the weight in layer.weights)`.
    """
    mapping = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name.endswith("_conv_2d"):
            scope = f"{SLIM_SCOPE}/{_slim_scope(layer.name[: -len('_conv_2d')])}"
            names = ["weights", "biases"][: len(layer.weights)]
        elif layer.name.endswith("_batch_norm"):
            scope = f"{SLIM_SCOPE}/{_slim_scope(layer.name[: -len('_batch_norm')])}/BatchNorm"
            names = [
                {"gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
                 "moving_variance": "moving_variance"}[w.path.split("/")[-1]]
                for w in layer.weights
            ]
        else:
            raise ValueError(f"Unexpected layer with weights in Inception-V1: {layer.name!r}")
        for index, var_name in enumerate(names):
            mapping[f"{scope}/{var_name}"] = (layer, index)
    return mapping


def _checkpoint_reader(path):
    import tensorflow as tf  # noqa: PLC0415

    path = os.fspath(path)
    if os.path.isdir(path):
        candidate = os.path.join(path, SLIM_CHECKPOINT_FILE)
        path = candidate if os.path.exists(candidate) else (tf.train.latest_checkpoint(path) or path)
    try:
        return tf.train.load_checkpoint(path), path
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as error:
        raise FileNotFoundError(
            f"Expected a TensorFlow checkpoint (a checkpoint prefix or file). "
            f"Received: path={path!r} ({type(error).__name__}: {str(error).splitlines()[0]})"
        ) from None


def load_slim_checkpoint(model, path, *, skip_logits=False):
    """Loads TF-slim's Inception-V1 checkpoint into an `InceptionV1` model.

    Every model weight must be found (shape-checked) and every `InceptionV1/`
    variable of the checkpoint used; optimizer slots and `global_step` are
    ignored.

    Reference: Carreira & Zisserman, CVPR 2017 (I3D bootstraps from this
    ImageNet network); checkpoint `inception_v1_2016_08_28` of TF-slim.

    Args:
        model: a model built by `InceptionV1` (modified in place).
        path: the checkpoint (`.../inception_v1.ckpt`) or its directory.
        skip_logits: leave the logits as they are (e.g. another class count)
            and don't require the checkpoint's logits to be used.

    Returns:
        The sorted list of checkpoint variables that were assigned.

    Raises:
        FileNotFoundError: no checkpoint at `path`.
        ValueError: lists missing, unused or mis-shaped variables.

    Example:

    >>> model = InceptionV1()
    >>> load_slim_checkpoint(model, "/tmp/inception_v1.ckpt")  # doctest: +SKIP
    """
    reader, resolved = _checkpoint_reader(path)
    shapes = reader.get_variable_to_shape_map()
    mapping = slim_variable_names(model)
    if skip_logits:
        mapping = {k: v for k, v in mapping.items() if "/Logits/" not in k}
    missing, mismatched = [], []
    values = {}
    for var_name, (layer, index) in mapping.items():
        if var_name not in shapes:
            missing.append(var_name)
            continue
        expected = tuple(layer.weights[index].shape)
        if tuple(shapes[var_name]) != expected:
            mismatched.append(f"{var_name}: model {expected}, checkpoint {tuple(shapes[var_name])}")
            continue
        values.setdefault(layer.name, [None] * len(layer.weights))[index] = reader.get_tensor(var_name)
    unused = sorted(
        name for name in shapes
        if name not in mapping
        and name not in _IGNORED_NAMES
        and not name.endswith(_IGNORED_SUFFIXES)
        and not (skip_logits and "/Logits/" in name)
    )
    if missing or mismatched or unused:
        problems = []
        if missing:
            problems.append(f"missing from the checkpoint: {sorted(missing)}")
        if mismatched:
            problems.append(f"shape mismatches: {mismatched}")
        if unused:
            problems.append(f"checkpoint variables the model has no place for: {unused}")
        raise ValueError(
            f"Checkpoint {resolved!r} does not fit model {model.name!r}: " + "; ".join(problems)
        )
    for layer_name, layer_values in values.items():
        layer = model.get_layer(layer_name)
        layer.set_weights([np.asarray(v) for v in layer_values])
    return sorted(mapping)


def download_slim_checkpoint(cache_dir=None):
    """Downloads and extracts TF-slim's `inception_v1_2016_08_28` checkpoint.

    Uses `keras.utils.get_file` (cached under `~/.keras/i3d_keras/`). No
    published checksum exists for the tarball, so none is checked.

    Args:
        cache_dir: Keras cache directory (default `~/.keras`).

    Returns:
        The path of `inception_v1.ckpt`.

    Example:

    >>> path = download_slim_checkpoint()  # doctest: +SKIP
    """
    from i3d_keras.utils import downloads  # noqa: PLC0415

    extracted = downloads.get_file(
        "inception_v1_2016_08_28.tar.gz",
        SLIM_URL,
        what="TF-slim's ImageNet Inception-V1 checkpoint",
        offline="download and unpack it elsewhere and pass the path of inception_v1.ckpt "
                "as the weights (--init PATH)",
        file_hash=SLIM_FILE_HASH,
        extract=True,
        cache_subdir="i3d_keras",
        cache_dir=cache_dir,
    )
    folder = extracted if os.path.isdir(extracted) else os.path.dirname(extracted)
    for root, _, files in os.walk(folder):
        if SLIM_CHECKPOINT_FILE in files:
            return os.path.join(root, SLIM_CHECKPOINT_FILE)
    raise FileNotFoundError(
        f"Expected {SLIM_CHECKPOINT_FILE!r} in the extracted archive. Received: folder={folder!r}"
    )


def inflate_into_i3d(model_2d, model_3d, *, method="mean", channel_rule="equal_response"):
    """Bootstraps an `InceptionI3D` model from a 2D `InceptionV1` model.

    Every conv kernel is inflated to the I3D kernel's temporal size
    (`i3d_keras.weights.inflation.inflate_kernel`), the flow stream's first kernel
    gets 2 input channels by `channel_rule`, BatchNorm parameters are
    copied. The logits are copied only where the class counts match (1001),
    otherwise left as initialised (ImageNet classes are not Kinetics classes);
    a model without a head takes the convolutional weights only.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR
    2017, Sec. 2.4.

    Args:
        model_2d: a model built by `InceptionV1`.
        model_3d: a model built by `InceptionI3D` (modified in place).
        method: `"mean"` (the paper) or `"centre"`.
        channel_rule: `"equal_response"` or `"mean"`.

    Returns:
        The report of `i3d_keras.weights.inflation.inflate_weights`.

    Example:

    >>> m2 = InceptionV1(num_classes=10, image_size=64)
    >>> m3 = InceptionI3D(num_classes=10, frames=8, image_size=64)
    >>> _ = inflate_into_i3d(m2, m3)
    """
    from i3d_keras.weights.inflation import inflate_weights  # noqa: PLC0415

    names_3d = {layer.name for layer in model_3d.layers}
    logits = "Logits_Conv3d_0c_1x1_conv_3d"
    # 2D layers beyond the 3D model's final endpoint (or a head it lacks)
    # have no place; every 3D weight layer must still be assigned.
    layers = [layer for layer in model_2d.layers if to_i3d_name(layer.name) in names_3d]
    return inflate_weights(
        layers, model_3d, to_i3d_name, method=method, channel_rule=channel_rule,
        skip_mismatch=(logits,), allow_unassigned=(logits,),
    )
