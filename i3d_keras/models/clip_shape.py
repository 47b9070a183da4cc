"""The same video model for clips of another shape.

I3D is fully convolutional in time and space (the paper trains on 64-frame
224-pixel clips and tests on whole videos), and so are the package's other
video models: their layers and weights apply to clips of any length and
size. A model built with `InceptionI3D(frames=8, image_size=32)` checks the
shape of its input, so `with_clip_shape` rebuilds it from its config with
another input shape and copies the weights.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(Sec. 3: "the model ... can be applied to ... videos of any length").
"""

import copy

#: Keep an axis of the model's input as it is.
KEEP = "keep"


def with_clip_shape(model, frames=KEEP, image_size=KEEP):
    """A copy of a functional video model for clips of another shape.

    Args:
        model: a functional Keras model whose inputs are `[batch, frames,
            height, width, channels]` (a stream, two-stream or comparison model).
        frames: the clip length, `None` for any, or `KEEP`.
        image_size: the frame size (an int or `(height, width)`), `None` for
            any, or `KEEP`.

    Returns:
        A new model with the same layers and weights (the model itself when
        its inputs already have that shape).

    Raises:
        ValueError: not a functional video model, or one whose layers cannot
            be rebuilt for that shape.

    Example:

    >>> model = InceptionI3D(10, frames=8, image_size=32)
    >>> with_clip_shape(model, frames=None).input.shape
    (None, None, 32, 32, 3)
    """
    def wanted(shape):
        shape = list(shape)
        if frames != KEEP:
            shape[1] = frames
        if image_size != KEEP:
            size = image_size if isinstance(image_size, (tuple, list)) else (image_size,) * 2
            shape[2:4] = list(size)
        return tuple(shape)

    if any(len(t.shape) != 5 for t in model.inputs):
        raise ValueError(f"Expected a video model with [batch, frames, height, width, channels] "
                         f"inputs. Received: inputs of shapes "
                         f"{[tuple(t.shape) for t in model.inputs]}")
    if all(tuple(t.shape) == wanted(t.shape) for t in model.inputs):
        return model
    try:
        config = copy.deepcopy(model.get_config())
        # Nested models (the streams of a two-stream model) have input layers of their own.
        inputs = [layer for layer in _walk(config) if layer.get("class_name") == "InputLayer"
                  and len(layer["config"].get("batch_shape") or ()) == 5]
        if not inputs:
            raise ValueError("no video input layers in its config")
        for layer in inputs:
            layer["config"]["batch_shape"] = wanted(layer["config"]["batch_shape"])
        rebuilt = model.__class__.from_config(config)
        rebuilt.set_weights(model.get_weights())
    except Exception as error:  # noqa: BLE001 (Keras raises various errors)
        frames_, height, width = wanted(model.inputs[0].shape)[1:4]
        raise ValueError(
            f"Cannot rebuild model {model.name!r} for clips of {frames_ or 'any number of'} "
            f"frames of {height or 'any'} x {width or 'any'} pixels ({error}). Received: a "
            f"model with input shape {tuple(model.inputs[0].shape)}; use clips of its shape"
        ) from None
    return rebuilt


def _walk(config):
    """Every dict in a nested config."""
    if isinstance(config, dict):
        yield config
        for value in config.values():
            yield from _walk(value)
    elif isinstance(config, (list, tuple)):
        for value in config:
            yield from _walk(value)


__all__ = ["KEEP", "with_clip_shape"]
