"""Weights for the models: DeepMind's checkpoints, ImageNet inflation, downloads.

- `deepmind.py`: DeepMind's published Kinetics checkpoints into Keras I3D
  models (variable names, TF-Hub folders).
- `inflation.py`: I3D's ImageNet bootstrapping (2D filters repeated along
  time, divided by the temporal size) for any Keras CNN.
- `pretrained.py`: `InceptionI3D(weights=...)`: named checkpoints,
  downloaded with `keras.utils.get_file` and checked by hash.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__, old_module="pretrained")
