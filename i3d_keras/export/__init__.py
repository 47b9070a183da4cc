"""Deployment: SavedModel for TF Serving, LiteRT (TFLite) files, serving requests.

- `exporters.py`: `export_saved_model` (raw frames in, preprocessing in the
  graph, both streams fused) and `export_tflite` / `verify_tflite` /
  `litert_delegation`.
- `litert_graph.py`: the models rebuilt in 4-D tensors for LiteRT, so that
  XNNPACK runs the whole graph.
- `litert_memory.py`: a LiteRT file's weights and activation arena.
- `litert_metadata.py`: the class names, streams and clip shape a LiteRT file keeps.
- `calibration.py`: clips calibrating full-integer (int8) LiteRT files.
- `serving.py`: REST and gRPC requests for TF Serving.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__, old_module="exporters")
