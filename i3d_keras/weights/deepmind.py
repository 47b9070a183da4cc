"""Converting DeepMind's published Kinetics checkpoints to Keras I3D models.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017; checkpoints of
github.com/deepmind/kinetics-i3d (`data/checkpoints/{name}/model.ckpt`):

| name               | stream | classes | variable names                        |
|--------------------|--------|---------|---------------------------------------|
| rgb_imagenet       | rgb    | 400     | `RGB/inception_i3d/{scope}/...`       |
| rgb_scratch        | rgb    | 400     | `RGB/inception_i3d/{scope}/...`       |
| flow_imagenet      | flow   | 400     | `Flow/inception_i3d/{scope}/...`      |
| flow_scratch       | flow   | 400     | `Flow/inception_i3d/{scope}/...`      |
| rgb_scratch_kin600 | rgb    | 600     | `{scope}/...`, BatchNorm `[1,1,1,1,C]`, `Momentum` slots |

Per unit: `{scope}/conv_3d/w` (and `b` for the logits) and
`{scope}/batch_norm/{beta,moving_mean,moving_variance}` (Sonnet BatchNorm
without `gamma`). The Keras layer for scope `Mixed_4b/Branch_1/Conv3d_0b_3x3`
is `Mixed_4b_Branch_1_Conv3d_0b_3x3_conv_3d` / `..._batch_norm`.
"""

import os
import warnings

import numpy as np

CHECKPOINT_NAMES = (
    "rgb_imagenet",
    "rgb_scratch",
    "flow_imagenet",
    "flow_scratch",
    "rgb_scratch_kin600",
)

_FIRST_KERNEL = "Conv3d_1a_7x7/conv_3d/w"
_LOGITS_BIAS = "Logits/Conv3d_0c_1x1/conv_3d/b"
_LOGITS_LAYER = "Logits_Conv3d_0c_1x1_conv_3d"
# Optimizer slots and bookkeeping, never model weights.
_SLOT_SUFFIXES = ("/Momentum", "/RMSProp", "/RMSProp_1", "/Adam", "/Adam_1",
                  "/ExponentialMovingAverage")
_IGNORED_NAMES = ("global_step", "beta1_power", "beta2_power")
_STREAM_BY_CHANNELS = {3: "rgb", 2: "flow"}


def _is_slot(name):
    return name.endswith(_SLOT_SUFFIXES) or name in _IGNORED_NAMES


def _varint(data, pos):
    """Decodes a protobuf/LevelDB varint at `data[pos]`: `(value, next_pos)`."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _index_num_shards(index_path):
    """The data-shard count a checkpoint's `.index` file records, or None.

    The index is a table without compression whose first entry (an empty key)
    holds a `BundleHeaderProto`; its field 1 is `num_shards`. Read by hand so
    that the check needs neither TensorFlow nor a data file.
    """
    try:
        with open(index_path, "rb") as f:
            data = f.read(4096)
        shared, pos = _varint(data, 0)
        key_length, pos = _varint(data, pos)
        value_length, pos = _varint(data, pos)
        if shared or key_length:
            return None
        header, pos = data[pos:pos + value_length], 0
        while pos < len(header):
            tag, pos = _varint(header, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                value, pos = _varint(header, pos)
                if field == 1:
                    return value
            elif wire == 2:
                length, pos = _varint(header, pos)
                pos += length
            else:
                return None
    except (OSError, IndexError):
        return None
    return None


def missing_data_files(prefix):
    """The data shards a checkpoint prefix's `.index` names but that do not exist.

    A TensorFlow (V2) checkpoint is `PREFIX.index` plus the shards
    `PREFIX.data-00000-of-0000N`; an index alone (e.g. copied without its
    data) opens, and only reading a variable fails.

    Args:
        prefix: a checkpoint prefix with `PREFIX.index` beside it.

    Returns:
        The missing shard paths (empty when all are there, or when `prefix`
        has no `.index`).
    """
    prefix = os.fspath(prefix)
    if not os.path.isfile(prefix + ".index"):
        return []
    num_shards = _index_num_shards(prefix + ".index")
    if num_shards is None:  # an index this reader does not know: any shard will do
        folder, base = os.path.split(prefix)
        found = [n for n in os.listdir(folder or ".") if n.startswith(base + ".data-")]
        return [] if found else [f"{prefix}.data-00000-of-00001"]
    return [path for path in (f"{prefix}.data-{i:05d}-of-{num_shards:05d}"
                              for i in range(num_shards)) if not os.path.isfile(path)]


def check_data_files(prefix):
    """Raises `FileNotFoundError` when a checkpoint's data shards are missing.

    Args:
        prefix: a checkpoint prefix (`.../model.ckpt`).

    Raises:
        FileNotFoundError: naming the missing `.data-*` files.
    """
    missing = missing_data_files(prefix)
    if missing:
        names = ", ".join(repr(os.path.basename(m)) for m in missing)
        raise FileNotFoundError(
            f"Expected a TensorFlow checkpoint: '{os.path.basename(prefix)}.index' and every "
            f"data shard it names ({os.path.basename(prefix)}.data-NNNNN-of-NNNNN) in one "
            f"folder. Received: path={prefix!r} without {names} (copy the .data-* "
            "files beside the .index)")


def open_checkpoint(path):
    """Opens a TensorFlow checkpoint and returns `(reader, {name: shape}, prefix)`.

    Args:
        path: a checkpoint prefix (`.../model.ckpt`, the files being
            `model.ckpt.index` and `model.ckpt.data-*`), one of those files,
            or a directory holding a checkpoint (a `checkpoint` file,
            `model.ckpt.*`, or a TF-Hub module / SavedModel folder's
            `variables/variables.*`).

    Returns:
        `(reader, shapes, resolved_prefix)`.

    Raises:
        FileNotFoundError: nothing readable at `path`, or an index whose
            data shards are missing.
    """
    import tensorflow as tf  # noqa: PLC0415

    path = os.fspath(path)
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    if ".data-" in os.path.basename(path):
        path = path[: path.rindex(".data-")]
    if os.path.isdir(path):
        found = tf.train.latest_checkpoint(path)
        # DeepMind's folders hold `model.ckpt`; a TF-Hub module or SavedModel
        # folder holds its variables as `variables/variables`.
        for candidate in ("model.ckpt", "variables", os.path.join("variables", "variables")):
            if found is None and os.path.exists(os.path.join(path, candidate + ".index")):
                found = os.path.join(path, candidate)
        if found is None:
            raise FileNotFoundError(
                f"Expected a directory with a TensorFlow checkpoint. Received: path={path!r} "
                "(no checkpoint found in it)"
            )
        path = found
    if not (os.path.exists(path + ".index") or os.path.isfile(path)):
        raise FileNotFoundError(
            "Expected a TensorFlow checkpoint prefix (e.g. '.../model.ckpt' with "
            f"'model.ckpt.index' beside it). Received: path={path!r}, which does not exist"
        )
    try:
        reader = tf.train.load_checkpoint(path)
    except Exception as error:  # noqa: BLE001 (TF raises various errors here)
        raise FileNotFoundError(
            f"Expected a readable TensorFlow checkpoint. Received: path={path!r} "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    check_data_files(path)  # TensorFlow opens an index alone and fails on the first read
    return reader, reader.get_variable_to_shape_map(), path


def describe_checkpoint(shapes):
    """Detects the variable prefix, stream and class count of a DeepMind checkpoint.

    Args:
        shapes: `{variable name: shape}` (e.g. from `tf.train.list_variables`).

    Returns:
        A dict with `prefix` (e.g. `"RGB/inception_i3d/"` or `""`), `stream`
        (`"rgb"` or `"flow"`), `num_classes` (None without logits) and
        `model_variables` (the count, optimizer slots excluded).

    Raises:
        ValueError: not a DeepMind I3D checkpoint.
    """
    firsts = [name for name in shapes if name.endswith(_FIRST_KERNEL) and not _is_slot(name)]
    if len(firsts) != 1:
        raise ValueError(
            f"Expected a DeepMind I3D checkpoint with one '{_FIRST_KERNEL}' variable. "
            f"Received: {len(firsts)} such variables among {len(shapes)} "
            f"(e.g. {sorted(shapes)[:3]})"
        )
    prefix = firsts[0][: -len(_FIRST_KERNEL)]
    channels = int(shapes[firsts[0]][3])
    if channels not in _STREAM_BY_CHANNELS:
        raise ValueError(
            f"Expected 3 (rgb) or 2 (flow) input channels in {firsts[0]}. Received: {channels}"
        )
    logits = shapes.get(prefix + _LOGITS_BIAS)
    return {
        "prefix": prefix,
        "stream": _STREAM_BY_CHANNELS[channels],
        "num_classes": None if logits is None else int(logits[0]),
        "model_variables": sum(1 for name in shapes if not _is_slot(name)),
    }


def _scope(layer_name, suffix):
    base = layer_name[: -len(suffix)]
    # "Mixed_4b_Branch_1_Conv3d_0b_3x3" -> "Mixed_4b/Branch_1/Conv3d_0b_3x3".
    if base.startswith("Mixed_") and "_Branch_" in base:
        head, rest = base.split("_Branch_", 1)
        number, unit = rest.split("_", 1)
        return f"{head}/Branch_{number}/{unit}"
    if base.startswith("Logits_"):
        return "Logits/" + base[len("Logits_"):]
    return base


def deepmind_variable_names(model, prefix=""):
    """The DeepMind checkpoint variable of every weight of an `InceptionI3D` model.

    Args:
        model: a model built by `InceptionI3D`.
        prefix: the checkpoint's scope, e.g. `"RGB/inception_i3d/"`.

    Returns:
        A dict from variable name to `(layer, index in layer.weights)`.

    Example:

    >>> names = deepmind_variable_names(InceptionI3D(), "RGB/inception_i3d/")
    >>> len(names)
    230
    """
    mapping = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name.endswith("_conv_3d"):
            scope = f"{prefix}{_scope(layer.name, '_conv_3d')}/conv_3d"
            names = ["w", "b"][: len(layer.weights)]
        elif layer.name.endswith("_batch_norm"):
            scope = f"{prefix}{_scope(layer.name, '_batch_norm')}/batch_norm"
            names = [w.path.split("/")[-1] for w in layer.weights]
        else:
            raise ValueError(
                f"Expected only I3D conv/batch-norm layers with weights. Received: layer {layer.name!r}"
            )
        for index, var_name in enumerate(names):
            mapping[f"{scope}/{var_name}"] = (layer, index)
    return mapping


def load_deepmind_checkpoint(model, path, *, on_logits_mismatch="error"):
    """Loads a DeepMind I3D checkpoint into an `InceptionI3D` model.

    Every model weight must come from the checkpoint and every checkpoint
    variable except optimizer slots must be used; otherwise nothing is
    assigned and a ValueError lists what is missing and unused. A model
    built without the logits head (or up to an earlier endpoint) takes the
    variables it has layers for; the others must then lie beyond it.

    Reference: Carreira & Zisserman, CVPR 2017; github.com/deepmind/kinetics-i3d.

    Args:
        model: a model built by `InceptionI3D` (modified in place).
        path: the checkpoint prefix (`.../model.ckpt`) or its directory.
        on_logits_mismatch: when the model's class count differs from the
            checkpoint's: `"error"`, or `"reinitialize"` (keep the model's
            freshly initialised logits and warn).

    Returns:
        A dict: `stream`, `num_classes` (of the checkpoint), `assigned`
        (variable count), `ignored_slots`, `logits_reinitialized`.

    Raises:
        FileNotFoundError: no checkpoint at `path`.
        ValueError: not an I3D checkpoint, wrong stream, or missing / unused /
            mis-shaped variables (listed).

    Example:

    >>> model = InceptionI3D(400, "rgb")
    >>> load_deepmind_checkpoint(model, "data/checkpoints/rgb_imagenet/model.ckpt")  # doctest: +SKIP
    """
    if on_logits_mismatch not in ("error", "reinitialize"):
        raise ValueError(
            "`on_logits_mismatch` must be 'error' or 'reinitialize'. "
            f"Received: on_logits_mismatch={on_logits_mismatch!r}"
        )
    reader, shapes, resolved = open_checkpoint(path)
    info = describe_checkpoint(shapes)
    prefix = info["prefix"]
    model_channels = model.inputs[0].shape[-1]
    expected_channels = 3 if info["stream"] == "rgb" else 2
    if model_channels != expected_channels:
        raise ValueError(
            f"Checkpoint {resolved!r} is a {info['stream']} stream ({expected_channels} input "
            f"channels). Received: a model with {model_channels} input channels"
        )
    mapping = deepmind_variable_names(model, prefix)
    has_head = any(layer.name == _LOGITS_LAYER for layer in model.layers)
    reinit_logits = False
    if has_head and info["num_classes"] is not None:
        model_classes = model.get_layer(_LOGITS_LAYER).filters
        if model_classes != info["num_classes"]:
            if on_logits_mismatch == "error":
                raise ValueError(
                    f"Checkpoint {resolved!r} has {info['num_classes']} classes. Received: a model "
                    f"with num_classes={model_classes} (pass on_logits_mismatch='reinitialize' to "
                    "keep fresh logits)"
                )
            warnings.warn(
                f"Checkpoint has {info['num_classes']} classes, the model {model_classes}: "
                "the logits layer keeps its random initialisation.",
                stacklevel=2,
            )
            reinit_logits = True
            mapping = {k: v for k, v in mapping.items() if v[0].name != _LOGITS_LAYER}
    missing, mismatched, values = [], [], {}
    for var_name, (layer, index) in mapping.items():
        if var_name not in shapes:
            missing.append(var_name)
            continue
        expected = tuple(layer.weights[index].shape)
        shape = tuple(shapes[var_name])
        if shape != expected and not (
            int(np.prod(shape)) == int(np.prod(expected)) and shape[-1:] == expected[-1:]
        ):
            mismatched.append(f"{var_name}: model {expected}, checkpoint {shape}")
            continue
        values.setdefault(layer.name, [None] * len(layer.weights))[index] = (var_name, expected)
    model_layer_scopes = {
        name.rsplit("/", 2)[0] for name in deepmind_variable_names(model, prefix)
    }
    unused, slots = [], 0
    for name in shapes:
        if _is_slot(name):
            slots += 1
            continue
        if name in mapping:
            continue
        if reinit_logits and name.startswith(prefix + "Logits/"):
            continue
        truncated = not has_head and name.rsplit("/", 2)[0] not in model_layer_scopes
        if not truncated:
            unused.append(name)
    if missing or mismatched or unused:
        problems = []
        if missing:
            problems.append(f"model weights missing from the checkpoint: {sorted(missing)}")
        if mismatched:
            problems.append(f"shape mismatches: {mismatched}")
        if unused:
            problems.append(f"checkpoint variables left unused: {sorted(unused)}")
        raise ValueError(
            f"Checkpoint {resolved!r} does not fit model {model.name!r}: " + "; ".join(problems)
        )
    for layer_name, entries in values.items():
        layer = model.get_layer(layer_name)
        layer.set_weights(
            [np.asarray(reader.get_tensor(var)).reshape(shape) for var, shape in entries]
        )
    return {
        "stream": info["stream"],
        "num_classes": info["num_classes"],
        "assigned": sum(len(v) for v in values.values()),
        "ignored_slots": slots,
        "logits_reinitialized": reinit_logits,
    }


def from_deepmind_checkpoint(path, *, frames=None, image_size=224, final_endpoint="Logits",
                             adaptive_head=True, name=None):
    """Builds the Keras I3D model of a DeepMind Kinetics checkpoint.

    The stream (rgb/flow, from the first kernel's input channels) and the
    class count (400 or 600, from the logits) are read from the checkpoint;
    all five published checkpoints (`CHECKPOINT_NAMES`) convert. Every
    variable except optimizer slots is consumed and every weight assigned,
    otherwise a ValueError lists what is missing or unused.

    Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New
    Model and the Kinetics Dataset", CVPR 2017.

    Args:
        path: checkpoint prefix (`.../rgb_imagenet/model.ckpt`) or directory.
        frames: clip length of the model, or None for any.
        image_size: int, `(height, width)` or None.
        final_endpoint: see `InceptionI3D`; before `"Logits"` the logits
            variables are left out.
        adaptive_head: see `InceptionI3D`.
        name: model name (default `"inception_i3d_{stream}"`).

    Returns:
        A `keras.Model` built by `InceptionI3D` with the checkpoint's weights.

    Example:

    >>> model = from_deepmind_checkpoint("kinetics-i3d/data/checkpoints/rgb_imagenet/model.ckpt")  # doctest: +SKIP
    >>> model.output.shape  # doctest: +SKIP
    (None, 400)
    """
    from i3d_keras.models.i3d import InceptionI3D  # noqa: PLC0415

    _, shapes, _ = open_checkpoint(path)
    info = describe_checkpoint(shapes)
    if info["num_classes"] is None and final_endpoint in ("Logits", "Predictions"):
        raise ValueError(
            f"Checkpoint has no logits ({_LOGITS_BIAS}). Received: final_endpoint={final_endpoint!r}; "
            "use final_endpoint='Mixed_5c'"
        )
    model = InceptionI3D(
        num_classes=info["num_classes"] or 400,
        stream=info["stream"],
        frames=frames,
        image_size=image_size,
        final_endpoint=final_endpoint,
        adaptive_head=adaptive_head,
        name=name,
    )
    load_deepmind_checkpoint(model, path)
    return model
