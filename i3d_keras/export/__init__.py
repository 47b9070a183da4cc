"""Deployment: SavedModel for TF Serving, LiteRT (TFLite) files, serving requests.

- `exporters.py`: `export_saved_model` (raw frames in, preprocessing in the
  graph, both streams fused) and `export_tflite` / `verify_tflite`.
- `serving.py`: REST and gRPC requests for TF Serving.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__, old_module="exporters")
