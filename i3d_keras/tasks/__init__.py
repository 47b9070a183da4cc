"""What people do with the models: train, evaluate, predict, compare, score videos.

- `training.py`: `train(TrainConfig)` with Keras `fit`, the paper's recipes,
  tf.distribute strategies.
- `evaluation.py`: accuracy of streams and their fusion on prepared shards.
- `inference.py`: load a model, classify videos (whole, or window by window
  over long videos and live streams, in bounded memory), extract features.
- `timeline.py`: window predictions as CSV, a timeline PNG and an annotated video.
- `comparison.py`: the paper's architecture comparison, rerun.
- `fvd.py`: Fréchet and Kernel Video Distances with DeepMind's Kinetics I3D.
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
