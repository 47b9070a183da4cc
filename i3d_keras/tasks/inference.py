"""Inference with I3D: load a model, classify videos, extract clip features.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017. At test time the paper decodes videos at
25 fps, resizes the short side to 256 pixels, takes the centre 224x224 crop of
the whole video and, for two-stream models, adds the RGB and flow logits
(flow: TV-L1, clipped to [-20, 20] pixels and scaled to [-1, 1]).

Three entry points:

* `load_predictor`: a `Predictor` from a `.keras` file, a SavedModel folder
  (its `preprocessed` signature), DeepMind's Kinetics weights (`"kinetics"`,
  downloaded by `i3d_keras.weights.pretrained`) or a DeepMind checkpoint path (converted
  by `i3d_keras.weights.deepmind`), with class names from a file or, for Kinetics,
  DeepMind's `label_map.txt` (downloaded when not given).
* `predict_videos`: top-k classes with probabilities for video files, with
  flow computed on the fly for two-stream models; an unreadable video gives an
  error entry and the others go on.
* `extract_features`: 1024-d pooled `Mixed_5c` features per video (RGB or
  flow) or their 2048-d concatenation, for the whole video or sliding windows,
  one `.npy` per video, resumable.

Flow on the fly: `flow_method="tvl1"` (the paper's, and what the released flow
weights expect) costs ~1-3 s of one core per frame pair at 340x256, so minutes
per 10 s video; `"dis"` is ~100-200x faster and noisier (see `i3d_keras.data.flow`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from i3d_keras.data import parallel
from i3d_keras.utils import downloads, outputs, textfiles
from i3d_keras.data import flow as flow_lib
from i3d_keras.models.i3d import endpoint_model, logits_model
from i3d_keras.data.video import (  # noqa: F401 (find_videos: the tools' inputs)
    VIDEO_EXTENSIONS, VideoDecodeError, find_videos, read_video)

PathLike = Union[str, os.PathLike]

#: DeepMind's Kinetics class-name files (kinetics-i3d repository, Apache-2.0).
KINETICS_LABEL_URLS = {
    400: "https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/data/label_map.txt",
    600: "https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/data/label_map_600.txt",
}
_KINETICS_LABEL_FILES = {400: "label_map.txt", 600: "label_map_600.txt"}

#: Keywords of `load_predictor` meaning DeepMind's Kinetics weights.
KINETICS_KEYWORDS = ("kinetics", "kinetics_scratch", "kinetics600")

#: The paper's test preprocessing.
DEFAULT_FPS = 25.0
DEFAULT_SHORT_SIDE = 256
DEFAULT_IMAGE_SIZE = 224

FEATURE_ENDPOINT = "Mixed_5c"
FEATURE_SUFFIX = ".npy"
#: The record of the settings that made a folder's features (`extract_features`).
FEATURE_SETTINGS_FILE = "features_settings.json"
#: The class names a training run writes beside its models (i3d_keras.tasks.training).
RUN_CLASSES_FILE = "classes.txt"
STREAMS = ("rgb", "flow")


class ModelLoadError(ValueError):
    """A model (or its class names) that cannot be loaded or does not fit."""


# ----------------------------------------------------------------------------
# Class names
# ----------------------------------------------------------------------------

def read_class_names(path: PathLike) -> List[str]:
    """Reads class names: a text file with one name per line (blank lines are
    skipped), or a JSON file with a `"classes"` list (a dataset's
    `NAME.metadata.json`).

    Example:

    >>> names = read_class_names("kinetics-i3d/data/label_map.txt")  # doctest: +SKIP
    >>> len(names)  # doctest: +SKIP
    400
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a class-names file. Received: labels='{path}' "
                                f"({'a folder' if path.is_dir() else 'no such file'})")
    try:
        text = textfiles.read_text_file(path)
    except textfiles.NotTextError:
        raise ValueError(f"Expected a text file of class names (UTF-8). Received: '{path}' "
                         "holds binary data") from None
    if path.suffix.lower() == ".json":
        try:
            value = json.loads(text)
        except ValueError as error:
            raise ValueError(f"Expected a JSON list of class names in '{path}'. Received: "
                             f"invalid JSON ({error})") from None
        names = value.get("classes") if isinstance(value, dict) else value
        if not isinstance(names, list):
            raise ValueError(f"Expected a JSON list of class names or a 'classes' key in "
                             f"'{path}'. Received: {type(names).__name__}")
        names = [str(n) for n in names]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ValueError(f"Expected one class name per line. Received: '{path}' is empty")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        # Two classes of one name cannot be told apart in any result.
        raise ValueError(f"Expected distinct class names in '{path}'. Received: "
                         f"{', '.join(repr(n) for n in repeated[:5])} more than once")
    return names


def kinetics_class_names(num_classes: int = 400, labels: Optional[PathLike] = None,
                         cache_dir: Optional[PathLike] = None) -> List[str]:
    """The Kinetics-400 or -600 class names in the order of DeepMind's logits.

    Reference: Carreira & Zisserman, CVPR 2017; github.com/deepmind/kinetics-i3d
    (`data/label_map.txt`, `data/label_map_600.txt`).

    Args:
        num_classes: 400 or 600.
        labels: a class-names file to read instead of downloading.
        cache_dir: Keras cache folder for the download (default `~/.keras`).

    Returns:
        `num_classes` names.

    Raises:
        ValueError: another class count, or a file with the wrong number of names.

    Example:

    >>> names = kinetics_class_names(400)  # doctest: +SKIP
    >>> names[6]  # doctest: +SKIP
    'arm wrestling'
    """
    if labels is None:
        if num_classes not in KINETICS_LABEL_URLS:
            raise ValueError(f"Expected Kinetics with 400 or 600 classes. "
                             f"Received: num_classes={num_classes}")
        labels = downloads.get_file(
            _KINETICS_LABEL_FILES[num_classes], KINETICS_LABEL_URLS[num_classes],
            what=f"the Kinetics-{num_classes} class names",
            offline="pass a class-names file, one name per line (labels=..., --labels)",
            cache_subdir="i3d_keras", cache_dir=None if cache_dir is None else str(cache_dir))
    names = read_class_names(labels)
    if len(names) != num_classes:
        raise ValueError(f"Expected {num_classes} class names. Received: {len(names)} names "
                         f"in '{labels}'")
    return names


# ----------------------------------------------------------------------------
# The predictor
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class _Part:
    """One logits function of a predictor: a stream model, or a fused model."""
    name: str
    inputs: Tuple[str, ...]
    fn: Callable[[Dict[str, np.ndarray]], np.ndarray]
    model: Optional[keras.Model] = None  # Keras stream model (features); None otherwise


class Predictor:
    """Logits of one or two I3D streams, fused by a weighted sum (the paper's
    two-stream fusion: logits added before the softmax).

    Build it with `load_predictor` or `Predictor.from_keras`.

    Attributes:
        streams: the input streams needed, a subset of ("rgb", "flow").
        num_classes: logits per clip.
        class_names: list of names, or None (then class indices are used).
        frames: the static clip length the model requires, or None for any.
        native_frames: the clip length the model was built for (before
            `with_dynamic_frames`), or None; a sensible default clip length.
        image_size: `(height, width)` of the model input, or None for any.
        stream_weights: `{part name: weight}` of the fusion.
        source: a description of where the model came from.
    """

    def __init__(self, parts: Sequence[_Part], *, num_classes: int,
                 class_names: Optional[Sequence[str]] = None,
                 stream_weights: Optional[Dict[str, float]] = None,
                 frames: Optional[int] = None, image_size=None, source: str = "",
                 native_frames: Optional[int] = None):
        self.parts = list(parts)
        self.num_classes = int(num_classes)
        if class_names is not None and len(class_names) != self.num_classes:
            raise ModelLoadError(
                f"Expected {self.num_classes} class names (one per logit of the model). "
                f"Received: {len(class_names)} class names")
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        weights = dict(stream_weights or {})
        unknown = set(weights) - {p.name for p in self.parts}
        if unknown:
            raise ModelLoadError(f"Expected stream weights for {[p.name for p in self.parts]}. "
                                 f"Received: stream_weights={weights}")
        self.stream_weights = {p.name: float(weights.get(p.name, 1.0)) for p in self.parts}
        self.frames = frames
        self.native_frames = frames if native_frames is None else native_frames
        self.image_size = image_size
        self.source = source
        self.streams = tuple(s for s in STREAMS if any(s in p.inputs for p in self.parts))

    def __repr__(self):
        return (f"Predictor(streams={self.streams}, num_classes={self.num_classes}, "
                f"frames={self.frames}, image_size={self.image_size}, source={self.source!r})")

    def class_name(self, index: int) -> str:
        return self.class_names[index] if self.class_names else str(index)

    def logits(self, inputs: Dict[str, np.ndarray]) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """Runs every part on a batch of clips.

        Args:
            inputs: `{"rgb": float32 [B, T, H, W, 3] in [-1, 1], "flow": [B, T, H, W, 2]}`
                (the streams in `self.streams`).

        Returns:
            `(fused, per_part)`: fused logits `[B, num_classes]` (the weighted sum)
            and `{part name: logits}`.
        """
        missing = [s for s in self.streams if s not in inputs]
        if missing:
            raise ValueError(f"Expected inputs {list(self.streams)}. Received: {sorted(inputs)}")
        per_part = {}
        for part in self.parts:
            per_part[part.name] = np.asarray(part.fn({k: inputs[k] for k in part.inputs}),
                                             np.float32)
        fused = sum(self.stream_weights[k] * v for k, v in per_part.items())
        return fused, per_part

    def feature_models(self) -> Dict[str, keras.Model]:
        """`{stream: model}` giving 1024-d pooled `Mixed_5c` features per clip.

        Raises:
            ModelLoadError: the predictor has no Keras stream models (a SavedModel).
        """
        out = {}
        for part in self.parts:
            if part.model is None or len(part.inputs) != 1:
                raise ModelLoadError(
                    "Feature extraction needs Keras stream models with a 'Mixed_5c' layer "
                    "(a .keras file, DeepMind weights or a checkpoint). Received: "
                    f"{self.source or part.name} (a SavedModel or LiteRT file gives logits "
                    "only)")
            try:
                out[part.inputs[0]] = endpoint_model(part.model, FEATURE_ENDPOINT, pooled=True)
            except ValueError as error:
                raise ModelLoadError(f"Cannot extract {FEATURE_ENDPOINT} features from "
                                     f"{part.model.name!r}: {error}") from None
        return out

    @classmethod
    def from_keras(cls, model, flow_model=None, *, class_names=None, stream_weights=None,
                   dynamic_frames: bool = True, source: str = "keras") -> "Predictor":
        """A predictor from Keras models.

        Args:
            model: a stream model (`InceptionI3D`, input named "rgb" or "flow"),
                a two-stream model (`TwoStreamI3D`), a dict `{"rgb": m, "flow": m}`
                or a list of stream models.
            flow_model: optional second stream model.
            class_names: optional names, one per class.
            stream_weights: optional `{"rgb": w, "flow": w}` (default: the
                two-stream model's own weights, else 1 each).
            dynamic_frames: rebuild stream models built for a fixed clip length
                so that they accept any length (same weights), for whole-video
                and sliding-window inference.
            source: description kept in reports.

        Example:

        >>> rgb = InceptionI3D(10, frames=8, image_size=32)
        >>> predictor = Predictor.from_keras(rgb, class_names=list("abcdefghij"))
        >>> fused, _ = predictor.logits({"rgb": np.zeros([1, 20, 32, 32, 3], "float32")})
        >>> fused.shape
        (1, 10)
        """
        models = []
        weights = {}
        if isinstance(model, dict):
            candidates = list(model.items())
        elif isinstance(model, (list, tuple)):
            candidates = [(None, m) for m in model]
        else:
            candidates = [(None, model)]
        if flow_model is not None:
            candidates.append(("flow", flow_model))
        for key, m in candidates:
            if m is None:
                continue
            sub = [layer for layer in m.layers if isinstance(layer, keras.Model)]
            if len(m.inputs) > 1 or (sub and isinstance(m.output, dict)):
                # A TwoStreamI3D: use its stream models and fusion weights.
                fusion = [layer for layer in m.layers if layer.name == "Logits"]
                own = getattr(fusion[0], "weights_per_input", None) if fusion else None
                for i, s in enumerate(sub):
                    models.append((_stream_of(s), s))
                    if own:
                        weights[_stream_of(s)] = own[i]
            else:
                stream = _stream_of(m)
                if key is not None and key != stream:
                    raise ModelLoadError(f"Expected a {key} model for key {key!r}. Received: "
                                         f"model {m.name!r} with a {stream} input")
                models.append((stream, m))
        streams = [s for s, _ in models]
        if not models or len(set(streams)) != len(streams):
            raise ModelLoadError(f"Expected one RGB and/or one flow model. Received streams: "
                                 f"{streams}")
        weights.update(stream_weights or {})
        parts, classes, frames, sizes = [], set(), set(), set()
        for stream, m in models:
            lm = _logits_part(m)
            frames.add(lm.inputs[0].shape[1])
            sizes.add(tuple(lm.inputs[0].shape[2:4]))
            if dynamic_frames and lm.inputs[0].shape[1] is not None:
                lm = with_dynamic_frames(lm)
            classes.add(int(lm.outputs[0].shape[-1]))
            parts.append(_Part(stream, (stream,), _keras_fn(lm), lm))
        if len(classes) != 1:
            raise ModelLoadError(f"Expected streams with the same number of classes. "
                                 f"Received: {sorted(classes)}")
        size = sizes.pop() if len(sizes) == 1 else None
        if size is not None and None in size:
            size = None
        static_frames = frames.pop() if len(frames) == 1 else None
        return cls(parts, num_classes=classes.pop(), class_names=class_names,
                   stream_weights={k: v for k, v in weights.items() if k in streams},
                   frames=None if dynamic_frames else static_frames, image_size=size,
                   source=source, native_frames=static_frames)


def _stream_of(model) -> str:
    if len(model.inputs) != 1:
        raise ModelLoadError(f"Expected a single-input stream model. Received: model "
                             f"{model.name!r} with {len(model.inputs)} inputs")
    tensor = model.inputs[0]
    name = tensor.name.split(":")[0]
    if name in STREAMS:
        return name
    channels = tensor.shape[-1]
    if channels in (3, 2) and len(tensor.shape) == 5:
        return "rgb" if channels == 3 else "flow"
    raise ModelLoadError(
        "Expected a video model with input [batch, frames, height, width, 3 (rgb) or 2 "
        f"(flow)]. Received: model {model.name!r} with input {name!r} of shape "
        f"{tuple(tensor.shape)}")


def _logits_part(model) -> keras.Model:
    """The model up to its logits (`logits_model`); a model without a layer
    named "Logits" is taken to output logits already."""
    try:
        model.get_layer("Logits")
    except ValueError:
        return model
    return logits_model(model)


def with_dynamic_frames(model: keras.Model) -> keras.Model:
    """A copy of a functional video model that accepts clips of any length.

    Models built with `InceptionI3D(frames=16)` check the clip length of their
    input; I3D itself is fully convolutional in time (the paper trains on 64
    frames and tests on whole videos), so the same layers and weights apply to
    any length. The model is rebuilt from its config with the time axis of
    its input unset, and the weights are copied.

    Args:
        model: a functional Keras model with input `[batch, frames, H, W, C]`.

    Returns:
        A new model with input `[batch, None, H, W, C]` (the same model when its
        time axis is already free).

    Example:

    >>> model = InceptionI3D(10, frames=8, image_size=32)
    >>> with_dynamic_frames(model).input.shape
    (None, None, 32, 32, 3)
    """
    from i3d_keras.models import clip_shape  # noqa: PLC0415

    try:
        return clip_shape.with_clip_shape(model, frames=None)
    except ValueError as error:
        raise ModelLoadError(str(error)) from None


def _forward_fn(model):
    """`model(x, training=False)` traced once for any batch size and clip length."""
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)

    def forward(x):
        return model(x, training=False)

    return tf.function(forward, input_signature=[spec], autograph=False)


def _keras_fn(model):
    call = _forward_fn(model)
    stream = _stream_of(model)

    def fn(inputs):
        out = call(tf.convert_to_tensor(inputs[stream], tf.float32))
        return np.asarray(out, np.float32)

    return fn


def _saved_model_predictor(path: Path, class_names, stream_weights) -> Predictor:
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"Cannot load the SavedModel at '{path}': {error}") from None
    if "preprocessed" not in loaded.signatures:
        raise ModelLoadError(
            "Expected a SavedModel written by i3d_keras.export.exporters (with a 'preprocessed' "
            f"signature). Received: signatures {sorted(loaded.signatures)} in '{path}'")
    signature = loaded.signatures["preprocessed"]
    specs = signature.structured_input_signature[1]
    streams = tuple(s for s in STREAMS if s in specs)
    if not streams:
        raise ModelLoadError(f"Expected 'rgb'/'flow' inputs in the 'preprocessed' signature. "
                             f"Received: {sorted(specs)}")
    meta_path = path / "assets.extra" / "i3d_keras.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    num_classes = int(signature.structured_outputs["logits"].shape[-1])
    exported = meta.get("class_names")
    if class_names is None and exported and exported != [str(i) for i in range(num_classes)]:
        class_names = exported  # (the export writes indices when it had no names)
    shape = specs[streams[0]].shape  # [batch, T, H, W, C]

    def fn(inputs):
        out = signature(**{k: tf.convert_to_tensor(inputs[k], tf.float32) for k in streams})
        return out["logits"].numpy()

    name = "+".join(streams)
    weights = None
    if stream_weights:
        if len(streams) > 1:
            raise ModelLoadError("A two-stream SavedModel fuses its streams inside the graph; "
                                 f"stream weights cannot be changed. Received: {stream_weights}")
        weights = {name: stream_weights.get(name, 1.0)}
    size = tuple(shape[2:4]) if None not in tuple(shape[2:4]) else None
    return Predictor([_Part(name, streams, fn)], num_classes=num_classes,
                     class_names=class_names, stream_weights=weights, frames=shape[1],
                     image_size=size, source=f"SavedModel {path}",
                     # Evaluation's default clip: the one the exported model was built for.
                     native_frames=meta.get("frames"))


def _litert_part(path: Path) -> Tuple[_Part, int, Tuple[int, ...], Optional[List[str]]]:
    """One LiteRT file (`i3d_keras.export.exporters.export_tflite`) as a predictor
    part: `(part, num_classes, [1, T, H, W, C] of its first input, class names
    kept in the file or None)`."""
    from i3d_keras.export import exporters, litert_metadata  # noqa: PLC0415

    if not path.is_file():
        raise FileNotFoundError(f"Expected an existing .tflite file. Received: "
                                f"model='{path}' (no such file)")
    try:
        names = (litert_metadata.read_metadata(path) or {}).get("class_names")
        interpreter = exporters.litert_interpreter(path)
        runner = interpreter.get_signature_runner()
        details = runner.get_input_details()
        logits = runner.get_output_details()["logits"]
    except Exception as error:  # noqa: BLE001 (the runtime raises several types)
        raise ModelLoadError(f"Cannot load '{path}' as a LiteRT file written by "
                             f"i3d_keras.export.exporters.export_tflite: {error}") from None
    streams = tuple(s for s in STREAMS if s in details)
    if not streams or len(streams) != len(details):
        raise ModelLoadError(f"Expected 'rgb'/'flow' inputs in '{path}'. Received: "
                             f"{sorted(details)}")
    shapes = {s: tuple(int(n) for n in details[s]["shape"]) for s in streams}

    def fn(inputs):
        # The file holds batch-1 clips: one run per clip of the batch.
        count = len(inputs[streams[0]])
        return np.concatenate([exporters.run_litert(interpreter,
                                                    {k: inputs[k][i:i + 1] for k in streams})
                               for i in range(count)]) if count else np.zeros(
            (0, int(logits["shape"][-1])), np.float32)

    return (_Part("+".join(streams), streams, fn), int(logits["shape"][-1]), shapes[streams[0]],
            names)


def _litert_predictor(paths: Sequence[Path], class_names, stream_weights) -> Predictor:
    """A predictor of one LiteRT file (a stream or a two-stream model), or of
    an RGB and a flow file whose logits are added."""
    parts, classes, shapes, kept = [], set(), set(), []
    for path in paths:
        part, num_classes, shape, names = _litert_part(path)
        parts.append(part)
        classes.add(num_classes)
        shapes.add(shape[1:4])
        kept += [names] if names else []
    if len(classes) != 1 or len(shapes) != 1:
        raise ModelLoadError(
            "Expected LiteRT files of the same classes and clip shape. Received: "
            f"{sorted(classes)} classes, clips {sorted(shapes)} in {[str(p) for p in paths]}")
    streams = [s for part in parts for s in part.inputs]
    if len(streams) != len(set(streams)):  # a stream counted twice in the sum
        raise ModelLoadError(
            "Expected an RGB and a flow file. Received: files of "
            f"{' and '.join('+'.join(part.inputs) for part in parts)} in "
            f"{[str(p) for p in paths]}")
    (frames, height, width), = shapes
    if class_names is None and kept:  # the names the export kept (the RGB file's first)
        class_names = kept[0]
    return Predictor(parts, num_classes=classes.pop(), class_names=class_names,
                     stream_weights=stream_weights, frames=frames, image_size=(height, width),
                     source="LiteRT " + ", ".join(str(p) for p in paths))


def is_litert_file(spec) -> bool:
    """Whether a model argument names a LiteRT file (`.tflite`)."""
    return isinstance(spec, (str, os.PathLike)) and os.fspath(spec).endswith(".tflite")


def exported_kind(spec) -> Optional[str]:
    """"LiteRT file" or "SavedModel" when a model argument names an export, which
    computes in the precision it was exported with, whatever Keras' policy;
    else None (a `.keras` file, a checkpoint, a keyword, a model)."""
    if is_litert_file(spec):
        return "LiteRT file"
    if isinstance(spec, (str, os.PathLike)) and (Path(spec) / "saved_model.pb").is_file():
        return "SavedModel"
    return None


def use_precision_for(model, mixed_precision: str = "auto", *,
                      tool: Optional[str] = None) -> Optional[str]:
    """`precision.use_precision` for the models a tool is about to load: Keras'
    policy for Keras models; for an export (`exported_kind`), which computes as
    it was exported, nothing is set and the tool says so.

    Returns:
        The policy name set, or None for an export.
    """
    from i3d_keras.runtime import precision  # noqa: PLC0415
    from i3d_keras.utils import console  # noqa: PLC0415

    exported = exported_kind(model)
    if exported is None:
        return precision.use_precision(mixed_precision, tool=tool)
    console.info(f"{tool + ': ' if tool else ''}precision: the {exported}'s own "
                 "(--mixed_precision applies to Keras models)")
    return None


def load_predictor(model: Union[str, PathLike, keras.Model], flow_model=None, *,
                   labels: Optional[PathLike] = None, streams: Sequence[str] = ("rgb",),
                   stream_weights: Optional[Dict[str, float]] = None,
                   dynamic_frames: bool = True) -> Predictor:
    """Loads a model for inference or evaluation.

    Reference: Carreira & Zisserman, CVPR 2017 (two-stream fusion by adding
    logits; DeepMind's Kinetics checkpoints).

    Args:
        model: one of
            * a `keras.Model` (stream or two-stream), a dict `{"rgb": m,
              "flow": m}` or list of Keras stream models, or a `Predictor`;
            * a `.keras` file (stream model, or a `TwoStreamI3D`), rebuilt to
              compute in Keras' current global dtype policy whatever policy
              it was saved with (`i3d_keras.runtime.precision.use_precision`);
            * a SavedModel folder from `i3d_keras.export.exporters` (its `preprocessed`
              signature; class names from the export unless `labels` is given);
            * a `.tflite` file from `i3d_keras.export.exporters.export_tflite`
              (float or int8; its fixed clip shape; run in `ai-edge-litert`,
              one clip at a time; class names from the file unless `labels`
              is given), with a `.tflite` `flow_model` for two streams;
            * `"kinetics"`, `"kinetics_scratch"` or `"kinetics600"`: DeepMind's
              weights (downloaded), one model per stream in `streams`;
            * a DeepMind checkpoint prefix or folder (converted).
        flow_model: optional flow stream, any of the above forms (a two-stream
            predictor from two files or checkpoints).
        labels: class-names file (one per line, or a dataset metadata JSON).
            Default: DeepMind's Kinetics label map for Kinetics weights and
            checkpoints (downloaded), the SavedModel's own names, the
            `classes.txt` of a training run folder (beside a `.keras` file from
            `i3d_keras.tasks.training.train`), else None (classes printed as indices).
        streams: for the Kinetics keywords: `("rgb",)`, `("flow",)` or both.
        stream_weights: `{"rgb": w, "flow": w}` for the logits sum.
        dynamic_frames: let Keras models take clips of any length.

    Returns:
        A `Predictor`.

    Raises:
        FileNotFoundError: a model path that does not exist.
        ModelLoadError: a model or class names that do not fit.

    Example:

    >>> predictor = load_predictor("kinetics", streams=("rgb", "flow"))  # doctest: +SKIP
    >>> predictor.class_names[:2]  # doctest: +SKIP
    ['abseiling', 'air drumming']
    """
    if isinstance(model, Predictor):
        return model
    if isinstance(model, (dict, list, tuple)):
        predictor = Predictor.from_keras(model, flow_model, stream_weights=stream_weights,
                                         dynamic_frames=dynamic_frames)
        if labels is not None:
            names = read_class_names(labels)
            if len(names) != predictor.num_classes:
                raise ModelLoadError(f"Expected {predictor.num_classes} class names. "
                                     f"Received: {len(names)} names in '{labels}'")
            predictor.class_names = names
        return predictor
    names = read_class_names(labels) if labels is not None else None
    litert = [os.fspath(s) for s in (model, flow_model) if is_litert_file(s)]
    if litert:
        if len(litert) != len([s for s in (model, flow_model) if s is not None]):
            raise ModelLoadError("A LiteRT file can only be combined with another LiteRT file. "
                                 f"Received: model={model!r}, flow_model={flow_model!r}")
        return _litert_predictor([Path(s) for s in litert], names, stream_weights)
    kinetics = False
    run_names = None  # classes.txt of a tools/train.py run folder
    loaded = []
    specs = [model] if flow_model is None else [model, flow_model]
    for i, spec in enumerate(specs):
        if spec is None:
            continue
        if isinstance(spec, keras.Model):
            loaded.append(spec)
            continue
        spec_str = os.fspath(spec)
        if spec_str in KINETICS_KEYWORDS:
            wanted = list(streams) if flow_model is None else (["rgb"] if i == 0 else ["flow"])
            for stream in wanted:
                loaded.append(_kinetics_model(spec_str, stream))
            kinetics = True
            continue
        path = Path(spec_str)
        if spec_str.endswith(".keras"):
            if not path.is_file():
                raise FileNotFoundError(f"Expected an existing .keras model file. "
                                        f"Received: model='{spec_str}' (no such file)")
            loaded.append(_load_keras_file(path))
            if run_names is None and (path.parent / RUN_CLASSES_FILE).is_file():
                run_names = read_class_names(path.parent / RUN_CLASSES_FILE)
        elif path.is_dir() and (path / "saved_model.pb").is_file():
            if flow_model is not None:
                raise ModelLoadError("A SavedModel cannot be combined with a second model; "
                                     "export the two-stream model instead. Received: "
                                     f"{model!r} and {flow_model!r}")
            return _saved_model_predictor(path, names, stream_weights)
        else:
            from i3d_keras.weights import deepmind  # noqa: PLC0415 (heavy, optional)

            if not path.exists() and not Path(spec_str + ".index").exists():
                raise FileNotFoundError(
                    "Expected a .keras file, a SavedModel folder, a DeepMind checkpoint or "
                    f"one of {KINETICS_KEYWORDS}. Received: model='{spec_str}' (no such file)")
            try:
                loaded.append(deepmind.from_deepmind_checkpoint(
                    spec_str, frames=None, image_size=DEFAULT_IMAGE_SIZE,
                    name=f"inception_i3d_{i}"))
            except (ValueError, FileNotFoundError) as error:
                raise ModelLoadError(f"Cannot load '{spec_str}' as a DeepMind checkpoint: "
                                     f"{error}") from None
            kinetics = True
    if not loaded:
        raise ModelLoadError(f"Expected a model. Received: model={model!r}")
    source = ", ".join(s.name if isinstance(s, keras.Model) else os.fspath(s)
                       for s in specs if s is not None)
    predictor = Predictor.from_keras(loaded, stream_weights=stream_weights,
                                     dynamic_frames=dynamic_frames, source=source)
    if names is None and run_names is not None and len(run_names) == predictor.num_classes:
        names = run_names
    if names is None and kinetics and predictor.num_classes in KINETICS_LABEL_URLS:
        names = kinetics_class_names(predictor.num_classes)
    if names is not None:
        if len(names) != predictor.num_classes:
            raise ModelLoadError(
                f"Expected {predictor.num_classes} class names (the model has "
                f"{predictor.num_classes} classes). Received: {len(names)} names in '{labels}'")
        predictor.class_names = names
    return predictor


def _kinetics_model(keyword: str, stream: str) -> keras.Model:
    from i3d_keras.models.i3d import InceptionI3D  # noqa: PLC0415

    num_classes = 600 if keyword == "kinetics600" else 400
    try:
        return InceptionI3D(num_classes, stream, frames=None, image_size=DEFAULT_IMAGE_SIZE,
                            weights=keyword, name=f"inception_i3d_{stream}")
    except OSError:  # the download: its message says how to go on offline
        raise
    except Exception as error:  # noqa: BLE001 (downloads raise bare Exceptions)
        raise ModelLoadError(f"Cannot load {keyword!r} weights for the {stream} stream "
                             f"(downloaded from DeepMind's GitHub): {error}") from None


def _load_keras_file(path: Path) -> keras.Model:
    import i3d_keras  # noqa: F401, PLC0415 (registers the custom layers)

    from i3d_keras.runtime import precision  # noqa: PLC0415

    from i3d_keras.weights import pretrained  # noqa: PLC0415

    try:
        model = pretrained.load_keras_model(path)
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
    try:
        # Its layers keep the policy they were saved with; compute in the
        # current one (a model trained in bfloat16 evaluates in float32 and
        # back: the weights are float32 in both).
        return precision.with_precision(model, keras.config.dtype_policy().name)
    except Exception as error:  # noqa: BLE001 (Keras raises various errors)
        raise ModelLoadError(f"Cannot use the Keras model '{path}' in the current precision: "
                             f"{error}") from None


# ----------------------------------------------------------------------------
# Videos -> model inputs
# ----------------------------------------------------------------------------

def _size_pair(image_size) -> Tuple[int, int]:
    if image_size is None:
        return (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    if isinstance(image_size, int):
        return (image_size, image_size)
    return tuple(int(s) for s in image_size)


def center_crop_np(frames: np.ndarray, size) -> np.ndarray:
    """The centre `size` crop of every frame of `[T, H, W, C]` (numpy;
    `streaming.center_crop_np`, `size` None meaning 224).

    Raises:
        ValueError: frames smaller than the crop.
    """
    from i3d_keras.data import streaming  # noqa: PLC0415

    return streaming.center_crop_np(frames, _size_pair(size))


def center_clip_indices(num_video_frames: int, clip_length: int) -> np.ndarray:
    """Indices of the centre clip, looping videos shorter than the clip (the
    paper loops short videos); the numpy twin of
    `preprocessing.sample_frame_indices(..., "center")`."""
    start = max(num_video_frames - clip_length, 0) // 2
    return (start + np.arange(clip_length)) % max(num_video_frames, 1)


def load_video_inputs(path: PathLike, streams: Sequence[str] = ("rgb",), *, image_size=None,
                      num_frames: Optional[int] = None, flow_method: str = "tvl1",
                      fps: Optional[float] = DEFAULT_FPS,
                      short_side: Optional[int] = DEFAULT_SHORT_SIDE,
                      estimator=None, timings: Optional[Dict[str, float]] = None
                      ) -> Dict[str, np.ndarray]:
    """Decodes a video into the paper's test inputs.

    Frames at `fps`, short side `short_side` (bilinear); flow (if asked) is
    computed at that resolution with `flow.compute_flow`, then both streams
    are centre-cropped to `image_size`. RGB is scaled to [-1, 1].

    The whole video is held in memory: the paper's protocol is one pass over
    one array (a 10-second Kinetics clip). For long videos use
    `predict_windows` or `stream_features`, which read them as windows.

    Args:
        path: a video file OpenCV reads.
        streams: "rgb" and/or "flow".
        image_size: crop size, int or (h, w) (default 224).
        num_frames: None for the whole video, else the centre clip of that
            many frames (looped if the video is shorter).
        flow_method: "tvl1" (paper), "dis" or "farneback".
        fps, short_side: decoding (paper: 25, 256).
        estimator: optional reusable `flow.create_flow_estimator(flow_method)`.
        timings: optional dict receiving "decode" and "flow" seconds.

    Returns:
        `{"rgb": float32 [T, h, w, 3], "flow": float32 [T, h, w, 2]}` (asked streams).

    Raises:
        VideoDecodeError: an unreadable video.
        ValueError: frames smaller than the crop.

    Example:

    >>> clip = load_video_inputs("a.mp4", ("rgb", "flow"), flow_method="dis")  # doctest: +SKIP
    >>> clip["flow"].shape  # doctest: +SKIP
    (250, 224, 224, 2)
    """
    timings = {} if timings is None else timings
    t0 = time.monotonic()
    frames = read_video(path, fps=fps, short_side=short_side)
    timings["decode"] = time.monotonic() - t0
    total = frames.shape[0]
    indices = np.arange(total) if num_frames is None else center_clip_indices(total, num_frames)
    out = {}
    if "rgb" in streams:
        rgb = center_crop_np(frames[indices], image_size)
        out["rgb"] = rgb.astype(np.float32) * (2.0 / 255.0) - 1.0
    if "flow" in streams:
        t1 = time.monotonic()
        # Only the frames the clip uses (and the next one) need flow.
        lo, hi = int(indices.min()), min(int(indices.max()) + 2, total)
        # The paper computes flow on the whole resized frame, then crops.
        flow = flow_lib.compute_flow(frames[lo:hi], method=flow_method, estimator=estimator)
        out["flow"] = center_crop_np(flow[indices - lo], image_size)
        timings["flow"] = time.monotonic() - t1
    return out



def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _clip_length(predictor: Predictor, num_frames: Optional[int]) -> Optional[int]:
    if predictor.frames is None:
        return num_frames
    if num_frames is not None and num_frames != predictor.frames:
        raise ValueError(f"The model takes clips of exactly {predictor.frames} frames. "
                         f"Received: num_frames={num_frames}")
    return predictor.frames


def _describe_error(error: BaseException) -> str:
    if isinstance(error, VideoDecodeError):
        return str(error)
    if isinstance(error, tf.errors.OpError):
        return f"{type(error).__name__}: {error.message.splitlines()[0]}"
    return f"{type(error).__name__}: {error}"


def predict_videos(paths: Sequence[PathLike], predictor, *, top_k: int = 5,
                   num_frames: Optional[int] = None, flow_method: str = "tvl1",
                   fps: Optional[float] = DEFAULT_FPS,
                   short_side: Optional[int] = DEFAULT_SHORT_SIDE, image_size=None,
                   progress: bool = True) -> List[Dict]:
    """Classifies video files: the top-k classes with probabilities per video.

    The paper's test protocol (Carreira & Zisserman, CVPR 2017): 25 fps,
    short side 256, the centre 224x224 crop (or the model's size) of the
    whole video, RGB in [-1, 1]; for two-stream models flow is computed on
    the fly and the streams' logits are added before the softmax.

    Args:
        paths: video files (anything OpenCV reads).
        predictor: a `Predictor`, a Keras model, or anything `load_predictor` takes.
        top_k: classes reported per video.
        num_frames: None: the whole video (or the model's fixed clip length);
            else the centre clip of this many frames.
        flow_method: "tvl1" (the paper's; what DeepMind's flow weights expect;
            ~1-3 s per frame pair on one CPU core) or "dis" (~100-200x faster,
            noisier) or "farneback".
        fps, short_side: decoding.
        image_size: crop size (default: the model's input size, else 224).
        progress: a progress line with ETA on stderr.

    Returns:
        One dict per path, in order: `{"video", "ok", "top_k": [{"class",
        "index", "probability"}], "num_frames", "seconds": {"decode", "flow",
        "model", "total"}, "error"}`. A video that cannot be read or run gets
        `ok=False` and an `error` message; the others go on.

    Example:

    >>> predictor = load_predictor("kinetics")  # doctest: +SKIP
    >>> predict_videos(["arm_wrestling.mp4"], predictor)[0]["top_k"][0]  # doctest: +SKIP
    {'class': 'arm wrestling', 'index': 6, 'probability': 0.99...}
    """
    predictor = load_predictor(predictor)
    if top_k < 1:
        raise ValueError(f"`top_k` must be >= 1. Received: top_k={top_k}")
    clip_length = _clip_length(predictor, num_frames)
    size = _size_pair(image_size or predictor.image_size)
    estimator = flow_lib.create_flow_estimator(flow_method) if "flow" in predictor.streams \
        else None
    k = min(top_k, predictor.num_classes)
    results = []
    bar = parallel.Progress(len(paths), desc="predict", enabled=progress)
    for path in paths:
        entry = {"video": str(path), "ok": False, "top_k": [], "error": None}
        timings = {}
        t0 = time.monotonic()
        try:
            inputs = load_video_inputs(path, predictor.streams, image_size=size,
                                       num_frames=clip_length, flow_method=flow_method,
                                       fps=fps, short_side=short_side, estimator=estimator,
                                       timings=timings)
            entry["num_frames"] = int(next(iter(inputs.values())).shape[0])
            t1 = time.monotonic()
            logits, _ = predictor.logits({k_: v[np.newaxis] for k_, v in inputs.items()})
            timings["model"] = time.monotonic() - t1
            probs = _softmax(logits[0].astype(np.float64))
            order = np.argsort(-probs, kind="stable")[:k]
            entry["top_k"] = [{"class": predictor.class_name(int(i)), "index": int(i),
                               "probability": float(probs[i])} for i in order]
            entry["ok"] = True
        except Exception as error:  # noqa: BLE001 (one bad video never stops the rest)
            entry["error"] = _describe_error(error)
        timings["total"] = time.monotonic() - t0
        entry["seconds"] = timings
        results.append(entry)
        bar.update(1, failed=0 if entry["ok"] else 1)
    bar.close()
    return results


# ----------------------------------------------------------------------------
# Windows over long videos and live streams
# ----------------------------------------------------------------------------

#: Without windows, a video of up to this many frames (10 s at 25 fps, a
#: Kinetics clip) is classified in one pass; a longer one in consecutive
#: chunks of this length whose logits are averaged, weighted by length.
WHOLE_VIDEO_FRAMES = 250


def _top(probs: np.ndarray, k: int, predictor: Predictor) -> List[Dict]:
    order = np.argsort(-probs, kind="stable")[:k]
    return [{"class": predictor.class_name(int(i)), "index": int(i),
             "probability": float(probs[i])} for i in order]


def predict_windows(source, predictor, *, window: Optional[int] = None,
                    stride: Optional[int] = None, top_k: int = 5, batch_size: int = 1,
                    flow_method: str = "tvl1", fps: Optional[float] = DEFAULT_FPS,
                    short_side: Optional[int] = DEFAULT_SHORT_SIDE, image_size=None,
                    max_frames: Optional[int] = None, on_window: Optional[Callable] = None,
                    progress: bool = True) -> Dict:
    """Classifies a video window by window, reading it as the windows need it.

    Memory is bounded by the window (and `batch_size`), whatever the video's
    length: frames are decoded, resized and cropped as they arrive, flow is
    computed for the windows' own frames only (`i3d_keras.data.streaming`).

    * With `window`: the top-k classes of every window (the windows of
      `extract_features`: window i covers frames `[i * stride, i * stride +
      window)`, a video shorter than a window gives one looped window that
      ends where the video does, a stride larger than the window leaves
      gaps), and for the whole video the
      average of the windows' logits.
    * Without: the whole-video answer. Up to `WHOLE_VIDEO_FRAMES` frames it is
      the paper's protocol, one pass over the whole video; a longer video is
      cut into consecutive chunks of that length (the last one shorter) whose
      logits are averaged, weighted by their frames. It differs from one pass
      only at the chunks' borders, where a pass sees the neighbouring frames
      and a chunk sees the convolutions' zero padding; I3D's logits are a
      mean over time, so the averages agree closely.

    A source that breaks in the middle keeps the windows before the break
    (`"broken"` says where). Live sources (a camera index, a stream URL) run
    until they end or Ctrl-C (`KeyboardInterrupt` propagates: pass `on_window`
    to keep each window as it comes).

    Args:
        source: a video file, camera index or stream URL.
        predictor: a `Predictor` (or anything `load_predictor` takes).
        window: frames per window, or None for the whole-video answer.
        stride: frames between window starts (default: `window`).
        top_k: classes kept per window and for the video.
        batch_size: windows per forward pass (1 for live sources: each window
            is reported as soon as it is complete).
        flow_method: flow for two-stream models ("tvl1": paper; "dis": fast).
        fps, short_side, image_size: decoding and crop.
        max_frames: stop after this many frames (live sources).
        on_window: `fn(window_dict)` called as each window is classified.
        progress: a progress line (position, real-time factor) on stderr.

    Returns:
        `{"video", "ok", "error", "live", "fps", "num_frames", "window",
        "stride", "windows": [{"index", "start", "end", "start_frame",
        "end_frame", "top_k": [{"class", "index", "probability"}],
        "probabilities"}], "top_k", "broken", "seconds",
        "realtime_factor"}`; times in seconds of video. A source that cannot
        be read gets `ok=False` and an `error`.

    Example:

    >>> result = predict_windows("match.mp4", load_predictor("kinetics"),
    ...                          window=64, stride=32)  # doctest: +SKIP
    >>> result["windows"][0]["top_k"][0]["class"]  # doctest: +SKIP
    'playing basketball'
    """
    from i3d_keras.data import streaming  # noqa: PLC0415

    predictor = load_predictor(predictor)
    for name, value in (("window", window), ("stride", stride)):
        if value is not None and value < 1:
            raise ValueError(f"`{name}` must be >= 1 or None. Received: {name}={value}")
    if top_k < 1 or batch_size < 1:
        raise ValueError(f"`top_k` and `batch_size` must be >= 1. Received: top_k={top_k}, "
                         f"batch_size={batch_size}")
    if predictor.frames is not None and window != predictor.frames:
        raise ValueError(f"The model takes clips of exactly {predictor.frames} frames. "
                         f"Received: window={window}")
    whole = window is None
    length = WHOLE_VIDEO_FRAMES if whole else window
    stride = length if whole else (stride or window)
    size = _size_pair(image_size or predictor.image_size)
    k = min(top_k, predictor.num_classes)
    stream = streaming.VideoStream(source, fps=fps, short_side=short_side,
                                   max_frames=max_frames)
    result = {"video": str(source), "ok": False, "error": None, "live": stream.live,
              "fps": stream.output_fps, "window": window, "stride": None if whole else stride,
              "windows": [], "top_k": [], "broken": None, "num_frames": 0}
    estimator = flow_lib.create_flow_estimator(flow_method) if "flow" in predictor.streams \
        else None
    bar = streaming.StreamProgress(stream, "predict", enabled=progress)
    t0 = time.monotonic()
    model_seconds = 0.0
    logits_sum, weight_sum = None, 0.0
    batch: List[Tuple[int, list]] = []

    def counted(iterable):
        for item in iterable:
            bar.update()
            yield item

    def flush():
        nonlocal logits_sum, weight_sum, model_seconds
        t1 = time.monotonic()
        # Whole-video chunks differ in length only at the end: one pass each.
        groups = [batch] if not whole else [[b] for b in batch]
        for group in groups:
            clips = {s: np.stack([streaming.to_clip(items, s) for _, items in group])
                     for s in predictor.streams}
            logits, _ = predictor.logits(clips)
            for (start, items), row in zip(group, logits.astype(np.float64)):
                frames = len(items) if whole else window
                logits_sum = row * frames if logits_sum is None else logits_sum + row * frames
                weight_sum += frames
                if whole:
                    continue
                probs = _softmax(row)
                # A video shorter than the window is looped into it; the
                # window covers the frames there are (all read by now).
                end = min(start + window, max(stream.frames_read, start + 1))
                entry = {"index": len(result["windows"]), "start_frame": start,
                         "end_frame": end,
                         "start": start / stream.output_fps,
                         "end": end / stream.output_fps,
                         "top_k": _top(probs, k, predictor),
                         "probabilities": [float(p) for p in probs]}
                result["windows"].append(entry)
                if on_window is not None:
                    on_window(entry)
        model_seconds += time.monotonic() - t1
        batch.clear()

    try:
        items = streaming.model_inputs(
            stream, predictor.streams, crop=size, flow_method=flow_method,
            estimator=estimator, needed=None if whole else streaming.in_some_window(
                window, stride))
        for start, items_ in streaming.sliding_windows(counted(items), length, stride,
                                                       tail=whole):
            batch.append((start, items_))
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        result["ok"] = True
    except Exception as error:  # noqa: BLE001 (a bad video is a result, not a crash)
        result["error"] = _describe_error(error)
    finally:
        bar.close()
        elapsed = time.monotonic() - t0
        result["num_frames"] = stream.frames_read
        result["broken"] = stream.broken
        result["seconds"] = {"total": elapsed, "model": model_seconds}
        result["realtime_factor"] = stream.position / elapsed if elapsed > 0 else None
        if logits_sum is not None:
            result["top_k"] = _top(_softmax(logits_sum / weight_sum), k, predictor)
            result["ok"] = result["ok"] or bool(result["windows"])
    return result


# ----------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------

def feature_output_path(video: PathLike, output_dir: PathLike,
                        root: Optional[PathLike] = None) -> Path:
    """Where `extract_features` writes a video's features.

    `root/a/x.mp4 -> output_dir/a/x.npy` (the path relative to `root` is kept,
    so class folders survive); without `root`, `output_dir/x.npy`.
    """
    out = parallel.mirrored_output_path(video, output_dir, root)
    return out.with_name(out.stem + FEATURE_SUFFIX)


def window_starts(num_video_frames: int, window: Optional[int],
                  stride: Optional[int] = None) -> List[int]:
    """First frames of the sliding windows: `0, stride, ...` while a whole
    window fits; one window at 0 for a video shorter than the window (it is
    looped); `[0]` for `window=None` (the whole video as one clip)."""
    if window is None:
        return [0]
    stride = stride or window
    return list(range(0, max(num_video_frames - window, 0) + 1, stride))


def _video_features(inputs: Dict[str, np.ndarray], calls: Dict[str, Callable],
                    window: Optional[int], stride: Optional[int], batch_size: int
                    ) -> np.ndarray:
    total = next(iter(inputs.values())).shape[0]
    starts = window_starts(total, window, stride)
    length = total if window is None else window
    per_stream = []
    for stream, call in calls.items():
        rows = []
        for b in range(0, len(starts), batch_size):
            idx = np.stack([(s + np.arange(length)) % total for s in starts[b:b + batch_size]])
            rows.append(np.asarray(call(tf.convert_to_tensor(inputs[stream][idx])), np.float32))
        per_stream.append(np.concatenate(rows))
    return np.concatenate(per_stream, axis=-1)


def extract_features(paths: Sequence[PathLike], output_dir: PathLike, predictor, *,
                     streams: Optional[Sequence[str]] = None, window: Optional[int] = None,
                     stride: Optional[int] = None, flow_method: str = "tvl1",
                     fps: Optional[float] = DEFAULT_FPS,
                     short_side: Optional[int] = DEFAULT_SHORT_SIDE, image_size=None,
                     batch_size: int = 4, root: Optional[PathLike] = None,
                     overwrite: bool = False, progress: bool = True) -> Dict:
    """Writes I3D clip features, one `.npy` per video `[num_windows, D]`.

    The feature is `Mixed_5c` averaged over time and space: 1024-d per
    stream (RGB, flow), or the 2048-d concatenation [rgb, flow] for both
    (Carreira & Zisserman, CVPR 2017, the layer before the logits head).
    With a `window`, videos are streamed (`i3d_keras.data.streaming`): frames
    are decoded, resized and cropped as the windows need them and flow is
    computed per frame pair as they arrive, so memory is bounded by the
    window, stride and batch, not by the video's length; without one, the
    whole video is one clip, held whole.
    Inputs follow the paper's test preprocessing (25 fps, short side 256,
    centre crop, RGB in [-1, 1], flow from `flow.compute_flow`).

    Resumable: existing outputs are skipped (each file is written under a
    temporary name and renamed, so an existing one is complete). The settings
    that change the features (the model's weights, streams, window, stride,
    flow method, decoding, crop, precision) are recorded in the folder
    (`FEATURE_SETTINGS_FILE`); a rerun with other settings is refused before
    any work (`outputs.OutputError` naming what differs) unless `overwrite`,
    which recomputes everything. Inputs from different folders are mirrored
    under their common folder (`a/x.mp4`, `b/x.mp4` -> `a/x.npy`, `b/x.npy`);
    two inputs that would still share an output are refused. A video that
    fails is reported and the others go on.

    Args:
        paths: video files.
        output_dir: where the `.npy` files go (`feature_output_path`).
        predictor: a `Predictor` with Keras stream models, a Keras model, or
            anything `load_predictor` takes (not a SavedModel).
        streams: "rgb", "flow" or both (default: the predictor's streams).
        window: frames per window; None: the whole video is one clip (shape
            `[1, D]`).
        stride: frames between window starts (default: `window`, no overlap).
            Window i covers frames `[i * stride, i * stride + window)` at `fps`;
            frames after the last whole window are not covered; a video shorter
            than the window gives one looped window.
        flow_method: "tvl1" (paper), "dis" (~100-200x faster) or "farneback".
        fps, short_side: decoding.
        image_size: crop size (default: the model's, else 224).
        batch_size: windows per forward pass.
        root: common folder of `paths`, to keep relative folders in the output
            (default: the deepest folder holding them all).
        overwrite: recompute existing outputs.
        progress: a progress line with ETA on stderr.

    Returns:
        `{"written": [paths], "skipped": [paths], "failed": [(video, reason)],
        "partial": [(video, where it broke)], "feature_dim": D, "streams": [...]}`;
        a video that breaks in the middle keeps the windows before the break
        (written, and listed in "partial").

    Raises:
        outputs.OutputError: `output_dir` is a file, two inputs would write one
            output, or the folder holds features made with other settings.

    Example:

    >>> predictor = load_predictor("kinetics", streams=("rgb", "flow"))  # doctest: +SKIP
    >>> extract_features(["a.mp4"], "features", predictor, window=64, stride=16)  # doctest: +SKIP
    """
    predictor = load_predictor(predictor)
    streams = tuple(streams or predictor.streams)
    bad = [s for s in streams if s not in STREAMS]
    if bad or not streams:
        raise ValueError(f"`streams` must be among {STREAMS}. Received: streams={streams}")
    if window is not None and window < 1:
        raise ValueError(f"`window` must be >= 1 or None. Received: window={window}")
    if stride is not None and stride < 1:
        raise ValueError(f"`stride` must be >= 1 or None. Received: stride={stride}")
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    available = predictor.feature_models()
    missing = [s for s in streams if s not in available]
    if missing:
        raise ModelLoadError(f"Expected a model for the {missing} stream(s). Received: a "
                             f"predictor with streams {sorted(available)}")
    if predictor.frames is not None and window != predictor.frames:
        raise ValueError(f"The model takes clips of exactly {predictor.frames} frames. "
                         f"Received: window={window}")
    models = {s: available[s] for s in streams}
    calls = {s: _forward_fn(m) for s, m in models.items()}
    size = _size_pair(image_size or predictor.image_size)
    estimator = flow_lib.create_flow_estimator(flow_method) if "flow" in streams else None
    report = {"written": [], "skipped": [], "failed": [], "streams": list(streams),
              "feature_dim": int(sum(m.outputs[0].shape[-1] for m in models.values()))}
    outputs.check_output_dir(output_dir, inputs=paths)
    paths = list(dict.fromkeys(Path(p) for p in paths))  # a video given twice is done once
    if root is None and len(paths) > 1:
        root = outputs.common_root(paths)
    pairs = [(video, feature_output_path(video, output_dir, root)) for video in paths]
    outputs.unique_outputs(pairs)
    settings = {"weights": _weights_fingerprint(models), "streams": list(streams),
                "window": window, "stride": stride or window,
                "flow_method": flow_method if "flow" in streams else None, "fps": fps,
                "short_side": short_side, "image_size": list(size),
                "precision": keras.config.dtype_policy().name}
    record = outputs.SettingsRecord(output_dir, FEATURE_SETTINGS_FILE)
    if record.check(settings, has_outputs=any(out.is_file() for _, out in pairs),
                    overwrite=overwrite) == "recompute":
        overwrite = True
    report["partial"] = []
    todo = []
    for video, out in pairs:
        if not overwrite and out.is_file():
            report["skipped"].append(str(out))
        else:
            todo.append((video, out))
    bar = parallel.Progress(len(paths), desc=f"features[{'+'.join(streams)}]",
                            enabled=progress)
    bar.update(len(report["skipped"]), skipped=len(report["skipped"]))
    for video, out in todo:
        try:
            if window is None:  # one clip of the whole video: it is held whole
                inputs = load_video_inputs(video, streams, image_size=size, num_frames=None,
                                           flow_method=flow_method, fps=fps,
                                           short_side=short_side, estimator=estimator)
                features = _video_features(inputs, calls, window, stride, batch_size)
            else:
                features, broken = stream_features(
                    video, calls, window=window, stride=stride, batch_size=batch_size,
                    image_size=size, flow_method=flow_method, fps=fps, short_side=short_side,
                    estimator=estimator, progress=progress)
                if broken:
                    report["partial"].append((str(video), broken))
            with outputs.atomic_path(out) as tmp, open(tmp, "wb") as f:
                np.save(f, features.astype(np.float32))
            report["written"].append(str(out))
            bar.update(1)
        except Exception as error:  # noqa: BLE001 (one bad video never stops the rest)
            report["failed"].append((str(video), _describe_error(error)))
            bar.update(1, failed=1)
    bar.close()
    return report


def stream_features(source, calls: Dict[str, Callable], *, window: int,
                    stride: Optional[int] = None, batch_size: int = 4, image_size=224,
                    flow_method: str = "tvl1", fps: Optional[float] = DEFAULT_FPS,
                    short_side: Optional[int] = DEFAULT_SHORT_SIDE, estimator=None,
                    progress: bool = False) -> Tuple[np.ndarray, Optional[str]]:
    """Features of every window of a video, read as the windows need it.

    Holds one batch of windows (`batch_size` x `window` cropped frames, shared
    between overlapping windows), whatever the video's length
    (`streaming.sliding_windows`; the windows of `window_starts`).

    Args:
        source: a video file (or camera index or stream URL).
        calls: `{stream: fn([B, T, h, w, C]) -> [B, D]}`.
        window, stride, batch_size: see `extract_features`.
        image_size: crop size; fps, short_side: decoding.
        flow_method, estimator: flow for the "flow" stream.
        progress: a line with the position and the real-time factor on stderr.

    Returns:
        `(features [num_windows, sum of D], broken)`: `broken` is None, or
        where the video broke (the windows before the break are kept).

    Raises:
        VideoDecodeError: a video that cannot be opened or has no frame.
    """
    from i3d_keras.data import streaming  # noqa: PLC0415

    stream = streaming.VideoStream(source, fps=fps, short_side=short_side)
    bar = streaming.StreamProgress(stream, "features", enabled=progress)
    items = streaming.model_inputs(stream, tuple(calls), crop=_size_pair(image_size),
                                   flow_method=flow_method, estimator=estimator,
                                   needed=streaming.in_some_window(window, stride))
    rows: Dict[str, List[np.ndarray]] = {s: [] for s in calls}
    batch: List[list] = []

    def flush():
        for name, call in calls.items():
            clips = np.stack([streaming.to_clip(items_, name) for items_ in batch])
            rows[name].append(np.asarray(call(tf.convert_to_tensor(clips)), np.float32))
        batch.clear()

    def counted(iterable):
        for item in iterable:
            bar.update()
            yield item

    for _, items_ in streaming.sliding_windows(counted(items), window, stride):
        batch.append(items_)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    features = np.concatenate([np.concatenate(rows[s]) for s in calls], axis=-1)
    return features, stream.broken


def _weights_fingerprint(models: Dict[str, keras.Model]) -> str:
    """A short hash of the models' weights: features from other weights differ."""
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    for name, model in models.items():
        digest.update(name.encode())
        for weight in model.weights:
            digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]
