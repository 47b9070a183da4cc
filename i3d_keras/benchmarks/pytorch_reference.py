"""I3D in PyTorch, as the PyTorch ports build it: the reference for speed.

Run as a script in a child process by `i3d_keras.benchmarks.speed.time_pytorch`
(it imports neither TensorFlow nor this package, so any Python with `torch`
can run it). The network is built from the table it is given on the command
line (`i3d_keras.models.i3d.ARCHITECTURE` as JSON), the way the PyTorch ports of
DeepMind's release build it: `nn.Conv3d` without padding after an explicit
TensorFlow-"SAME" `F.pad`, `nn.BatchNorm3d` (eps 1e-3), ReLU, max pools after
a "SAME" pad, the 2x7x7 average pool, dropout 0.5 and a 1x1x1 logits
convolution averaged over time (BatchNorm keeps PyTorch's scale, which Keras'
`scale=False` lacks: the ports' choice, of no cost here). On a GPU when torch
has one. It prints one JSON line: the number of convolution weights (to
check the network against the Keras one), seconds per clip of the forward pass
(`torch.no_grad`, eval mode, batch 1) per clip length, and of an SGD training
step (forward, backward, update; BatchNorm in training), medians after a
warm-up run; under `torch.autocast(bfloat16)` when the config says
`"autocast": "bfloat16"`.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.

Example (what `time_pytorch` runs):

    python i3d_keras/benchmarks/pytorch_reference.py '{"architecture": [...], "frames": [64],
        "image_size": 224, "repeats": 3, "train_batch": 2, "train_frames": 16}'
"""

import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def _same_padding(size, kernel, stride):
    """TensorFlow "SAME" padding `(before, after)` along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x, kernel, stride):
    pads = [_same_padding(n, k, s) for n, k, s in zip(x.shape[2:], kernel, stride)]
    # F.pad takes the last axis first: (w_before, w_after, h_before, ...).
    return F.pad(x, [p for pair in reversed(pads) for p in pair])


def _triple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * 3


class Unit3D(nn.Module):
    """Conv3d ("SAME" by explicit padding) -> BatchNorm3d -> ReLU."""

    def __init__(self, c_in, c_out, kernel=1, stride=1, batch_norm=True, relu=True, bias=False):
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.conv = nn.Conv3d(c_in, c_out, self.kernel, self.stride, bias=bias)
        self.bn = nn.BatchNorm3d(c_out, eps=1e-3, momentum=0.001) if batch_norm else None
        self.relu = relu

    def forward(self, x):
        x = self.conv(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    def __init__(self, pool_size, strides):
        super().__init__()
        self.kernel, self.stride = _triple(pool_size), _triple(strides)
        self.pool = nn.MaxPool3d(self.kernel, self.stride)

    def forward(self, x):
        return self.pool(_pad_same(x, self.kernel, self.stride))


class Mixed(nn.Module):
    """An Inception block: four branches concatenated along channels."""

    def __init__(self, c_in, channels):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = channels
        self.branch_0 = Unit3D(c_in, b0)
        self.branch_1 = nn.Sequential(Unit3D(c_in, b1a), Unit3D(b1a, b1b, 3))
        self.branch_2 = nn.Sequential(Unit3D(c_in, b2a), Unit3D(b2a, b2b, 3))
        self.branch_3 = nn.Sequential(MaxPoolSame(3, 1), Unit3D(c_in, b3))

    def forward(self, x):
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x),
                          self.branch_3(x)], dim=1)


class I3D(nn.Module):
    """I3D from an architecture table of `(endpoint, kind, arguments)` rows."""

    def __init__(self, architecture, num_classes=400, channels=3):
        super().__init__()
        blocks = []
        for _, kind, args in architecture:
            if kind == "conv":
                blocks.append(Unit3D(channels, args["filters"], args["kernel_size"],
                                     args["strides"]))
                channels = args["filters"]
            elif kind == "pool":
                blocks.append(MaxPoolSame(args["pool_size"], args["strides"]))
            else:
                blocks.append(Mixed(channels, args))
                channels = args[0] + args[2] + args[4] + args[5]
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(0.5)
        self.logits = Unit3D(channels, num_classes, batch_norm=False, relu=False, bias=True)

    def forward(self, x):
        x = self.features(x)
        # The paper's 2x7x7 average pool (smaller where the input is smaller).
        x = F.avg_pool3d(x, [min(k, n) for k, n in zip((2, 7, 7), x.shape[2:])], stride=1)
        return self.logits(self.dropout(x)).mean(dim=(2, 3, 4))

    def load_keras_weights(self, arrays):
        """Sets the weights from Keras arrays, unit by unit in module order:
        `{i}_kernel` (`[kt, kh, kw, c_in, c_out]`), `{i}_beta`, `{i}_mean`,
        `{i}_variance` (BatchNorm), `{i}_bias` (the logits)."""
        units = [m for m in self.modules() if isinstance(m, Unit3D)]
        with torch.no_grad():
            for i, unit in enumerate(units):
                kernel = torch.from_numpy(arrays[f"{i}_kernel"]).permute(4, 3, 0, 1, 2)
                unit.conv.weight.copy_(kernel)
                if unit.bn is not None:
                    unit.bn.weight.fill_(1.0)  # Keras/Sonnet: no scale
                    unit.bn.bias.copy_(torch.from_numpy(arrays[f"{i}_beta"]))
                    unit.bn.running_mean.copy_(torch.from_numpy(arrays[f"{i}_mean"]))
                    unit.bn.running_var.copy_(torch.from_numpy(arrays[f"{i}_variance"]))
                if unit.conv.bias is not None:
                    unit.conv.bias.copy_(torch.from_numpy(arrays[f"{i}_bias"]))


def _synced(value):
    """Waits for queued GPU work, so that timings cover it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value


def _median_seconds(fn, repeats):
    # As i3d_keras.benchmarks.speed's: this script cannot import the package.
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def logits(config):
    """Logits (eval mode) of the clips in `config["clip"]` (an .npy file,
    `[batch, time, h, w, channels]`) with the weights of `config["weights"]` (.npz)."""
    import numpy as np  # noqa: PLC0415 (only this check needs numpy)

    net = I3D(config["architecture"], num_classes=config["num_classes"],
              channels=config["channels"]).eval()
    net.load_keras_weights(dict(np.load(config["weights"])))
    clip = torch.from_numpy(np.load(config["clip"])).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        return {"logits": net(clip).tolist()}


def run(config):
    """Times the forward pass and a training step; returns a JSON-ready dict."""
    if "weights" in config:
        return logits(config)
    torch.manual_seed(0)
    net = I3D(config["architecture"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net.to(device)
    size, repeats = config["image_size"], config["repeats"]
    conv_weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, nn.Conv3d))
    # "autocast": "bfloat16" runs the timings under torch.autocast, PyTorch's
    # counterpart of Keras' mixed_bfloat16 policy (float32 weights).
    autocast = config.get("autocast")
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "device": device, "conv_weights": conv_weights, "forward": {},
               "autocast": autocast}

    def mixed():
        return torch.autocast(device_type=device, dtype=getattr(torch, autocast or "bfloat16"),
                              enabled=bool(autocast))

    net.eval()
    with torch.no_grad(), mixed():
        for frames in config["frames"]:
            clip = torch.rand(1, 3, frames, size, size, device=device) * 2 - 1
            seconds, runs = _median_seconds(lambda clip=clip: _synced(net(clip)), repeats)
            results["forward"][str(frames)] = {"seconds": seconds, "runs": runs}
    if config.get("train_batch"):
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        clips = torch.rand(config["train_batch"], 3, config["train_frames"], size, size,
                           device=device) * 2 - 1
        labels = torch.zeros(config["train_batch"], dtype=torch.long, device=device)

        def step():
            optimizer.zero_grad()
            with mixed():
                loss = F.cross_entropy(net(clips).float(), labels)
            loss.backward()
            optimizer.step()
            _synced(None)

        seconds, runs = _median_seconds(step, repeats)
        results["train_step"] = {"seconds": seconds, "runs": runs}
    return results


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
