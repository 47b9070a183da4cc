"""What the code runs on, and in which precision.

- `hardware.py`: the CPU's instruction sets (read at run time), GPUs, cores.
- `precision.py`: the one decision of float32 / bfloat16 / float16 that every
  tool takes (`--mixed_precision auto`).
- `tuning.py`: float32 against bfloat16 timed on this machine, cached, where
  the precision's rules cannot know.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
