"""Test helper: TF1-style name-based checkpoints, as TF-slim and DeepMind wrote them."""

from pathlib import Path

import tensorflow as tf


def write_checkpoint(prefix, values):
    """Writes `{variable name: array}` to a name-based checkpoint at `prefix`."""
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=list(values),
        shape_and_slices=[""] * len(values),
        tensors=[tf.constant(v) for v in values.values()],
    )
