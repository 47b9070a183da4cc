"""i3d_keras: Two-Stream Inflated 3D ConvNets (I3D) in TensorFlow 2 / Keras 3.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017.
"""

import os
import sys

# oneDNN's Conv3D kernels are about 2x slower than TensorFlow's own on the CPUs
# we measured (I3D forward, 64x224x224: 6.3 s with oneDNN, 3.2 s without). TF
# reads this variable when it is imported, so it only helps if tensorflow is
# not imported yet; an explicit user setting always wins.
if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from i3d_keras.layers import Mean, Pooling3D, WeightedSum  # noqa: E402
from i3d_keras.model import (  # noqa: E402
    ARCHITECTURE,
    ENDPOINTS,
    InceptionI3D,
    TwoStreamI3D,
    apply_inception_block,
    apply_logits_head,
    apply_unit3d,
    endpoint_model,
    logits_model,
)
from i3d_keras.receptive_field import receptive_fields  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURE",
    "ENDPOINTS",
    "InceptionI3D",
    "Mean",
    "Pooling3D",
    "TwoStreamI3D",
    "WeightedSum",
    "apply_inception_block",
    "apply_logits_head",
    "apply_unit3d",
    "endpoint_model",
    "logits_model",
    "receptive_fields",
]
