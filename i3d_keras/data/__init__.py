"""Data: video decoding, optical flow, preprocessing, TFRecords, tf.data pipelines.

- `video.py`: decoding with OpenCV (25 fps, short side 256).
- `streaming.py`: videos, cameras and streams read as the work needs them
  (frames, flow and sliding windows in bounded memory).
- `flow.py`: TV-L1 (and DIS) optical flow, clipped to [-20, 20], in parallel.
- `preprocessing.py`: pure tensor ops on `[frames, height, width, channels]`
  shared by the input pipelines and the serving graph.
- `records.py`: clips and flow as `tf.train.SequenceExample` shards.
- `datasets.py`: dataset layouts (Kinetics, UCF101, HMDB51, folders) and their
  conversion to shards; `beam_pipeline.py`: the same with Apache Beam.
- `input_pipeline.py`: tf.data pipelines for training and evaluation.
- `motion_dataset.py`: the built-in generated dataset whose classes differ
  only in time.
- `parallel.py`: the process pool and the progress line (ETA).
"""

from i3d_keras import _api

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
