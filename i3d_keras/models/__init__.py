"""The networks: I3D, its layers, and the architectures the paper compares it with.

- `i3d.py`: the Inflated 3D ConvNet (`InceptionI3D`, its Inception blocks
  built from one table, DeepMind's endpoint names) and the two-stream fusion
  model (`TwoStreamI3D`).
- `layers.py`: the custom Keras layers (registered as `i3d_keras>...`, so
  saved models load after `import i3d_keras`).
- `convolution.py`: 3D convolution computed with 2D ones (fast on CPUs), and
  the gradients that route around oneDNN's AVX-512 defect.
- `inception_v1.py`: the 2D ImageNet Inception-V1 that I3D inflates.
- `baselines.py`: the paper's four earlier designs (Sec. 2.1-2.4) and
  `build_architecture`.
- `receptive_field.py`: receptive fields, parameters and multiply-adds.
- `clip_shape.py`: the same model rebuilt for clips of another length or size.

Models never import `i3d_keras.weights` at module level:
`InceptionI3D(weights=...)` calls the loader on use.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
