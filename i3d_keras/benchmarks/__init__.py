"""Measurements of this machine: speed, and whether it computes I3D right.

- `speed.py`: forward pass, training step, LiteRT, memory and matmul peaks,
  against the PyTorch reference in the same run.
- `pytorch_reference.py`: I3D in PyTorch as the PyTorch ports build it (run
  as a script in a separate Python).
- `diagnostics.py`: I3D's convolutions and poolings against float64, in
  crash-proof child processes (`tools/doctor.py`).
- `checks.py`: the benchmark tools' flags of lists (`--frames 16,64`) parsed
  and checked while absl reads them, and the videos they time decoded
  before any timing.
- `results.py`: the run record of a benchmark's result file (machine,
  versions, commit, date), which the documentation's Benchmarks page renders.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
