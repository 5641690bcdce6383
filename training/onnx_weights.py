"""Turn an Ultralytics ONNX export back into a checkpoint that `feixian train --weights` fine-tunes from.

The repository ships only the ONNX export of its model (what the runtime needs); a bureau that wants to
fine-tune it on its own footage, or a longer run that continues it, needs PyTorch weights. The export
keeps every parameter under its PyTorch name, with each convolution's batch norm folded into the
convolution's weight and bias. Unfolding is exact: the convolution takes the folded weight and the batch
norm becomes the identity plus the folded bias (scale 1, mean 0, variance 1 - eps).

That identity is exact only in inference. A batch norm in training normalises by the statistics of the
batch itself, so an identity batch norm would turn every convolution's output into zero mean and unit
variance, and the first epochs of fine-tuning would spend themselves relearning the scales the export had.
Given calibration images (the training set's), each batch norm instead takes the mean and variance its
convolution's output has on them, with the scale and shift that undo exactly that normalisation: the
network is unchanged in inference and nearly so in training.

A network may also grow out of an export (`grow=True`), in two ways that combine:

- deeper: the model YAML keeps the export's layers under their indices and adds new ones before the
  detection head (a stride-4 level for small objects, say). The export's head moves to the YAML's last
  layer; whatever the export lacks keeps its fresh initialisation (Ultralytics starts a new level's class
  scores near zero, so the grown network first answers as the export did).
- wider: a layer may have twice the export's channels (YOLOv8n's width from feixian-v8p's, half of it).
  Channel k of the export becomes channels 2k and 2k+1 (Net2Net's function-preserving widening, Chen et
  al. 2016); a layer reading a doubled input splits each of the export's input weights between the two
  copies at a random ratio, so the output is unchanged while the copies get different gradients and
  learn apart. Every tensor of a YOLOv8 network either doubles or keeps its width (the box branch of the
  head and the class outputs keep theirs), and interleaved copies survive C2f's split into halves and
  every concatenation, so the wide network first answers exactly as the export did.

    >>> pt = checkpoint_from_onnx("models/feixian-street-v15.onnx", "yolov8n.yaml",
    ...                           "data/feixian-street-v15.pt", train_images[:64], 640)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import cv2
import numpy as np

CALIBRATION_BATCH = 8
# The share of an export's input weight that the first of its two copies takes when a layer widens: away
# from 0 and 1 so that neither copy starts silent.
WIDEN_SPLIT = (0.25, 0.75)


class WeightsError(ValueError):
    """The ONNX file does not fit the model YAML (another architecture or width)."""


def checkpoint_from_onnx(
    onnx_path: str | Path,
    model_yaml: str | Path,
    out: str | Path,
    calibration: Sequence[str | Path] = (),
    calibration_imgsz: int | None = None,
    grow: bool = False,
) -> Path:
    """Write an Ultralytics checkpoint (`out`, a .pt) holding the ONNX export's weights in the network
    built from `model_yaml`; raises WeightsError when the two do not fit parameter for parameter.
    `calibration`: images whose statistics the batch norms take (none: identity batch norms), letterboxed
    to `calibration_imgsz` (the training input size; default: the export's). `grow`: the network may add
    layers the export lacks and double the export's widths (see the module docstring); every export weight
    must still find its place."""
    import onnx
    import torch
    from onnx import numpy_helper
    from ultralytics.nn.modules.conv import Conv
    from ultralytics.nn.tasks import DetectionModel

    from pipeline.detector import OnnxDetector

    names = OnnxDetector(onnx_path).class_names
    weights = {
        i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(str(onnx_path)).graph.initializer
    }
    model = DetectionModel(str(model_yaml), nc=len(names), verbose=False)
    if grow:
        weights = _move_head(weights, len(model.model) - 1)
    loaded = []
    rng = np.random.default_rng(0)

    def take(name: str, target: torch.Tensor) -> bool:
        source = weights.pop(name, None)
        if source is None and grow:
            return False
        got = "missing" if source is None else tuple(source.shape)
        if source is not None and grow and source.shape != target.shape:
            source = widened(source, tuple(target.shape), rng)
        if source is None or source.shape != target.shape:
            want = tuple(target.shape)
            raise WeightsError(f"{onnx_path} does not fit {model_yaml}: {name} is {got}, expected {want}")
        target.copy_(source)
        return True

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, Conv):
                if not take(f"{name}.conv.weight", module.conv.weight):
                    continue
                take(f"{name}.conv.bias", module.bn.bias)
                module.bn.weight.fill_(1.0)
                module.bn.running_mean.zero_()
                module.bn.running_var.fill_(1.0 - module.bn.eps)
                loaded.append(module)
            elif isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                if take(f"{name}.weight", module.weight):
                    take(f"{name}.bias", module.bias)
    # The DFL's fixed projection (Ultralytics' conv, or `last_axis_dfl`'s bins in exports since 2026-12-06) is the
    # only parameter a Conv/Conv2d pass does not visit.
    leftover = sorted(k for k in weights if not k.endswith(("dfl.conv.weight", "dfl.bins")))
    if leftover:
        raise WeightsError(f"{onnx_path} does not fit {model_yaml}: unused weights {leftover[:5]}")
    imgsz = OnnxDetector(onnx_path).input_size[0]
    if calibration:
        _fit_batch_norms(model, loaded, _calibration_inputs(calibration, calibration_imgsz or imgsz))
    model.names = dict(enumerate(names))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model,
            "epoch": -1,
            "date": datetime.now(UTC).isoformat(),
            "train_args": {"imgsz": imgsz},
            "source_onnx": str(onnx_path),
        },
        out,
    )
    return out


def widened(source, shape: tuple[int, ...], rng: np.random.Generator):
    """`source` (a convolution's weight or bias) grown to `shape`: output channels doubled by copying
    each, input channels (a weight's second axis) doubled by splitting each weight between two copies.
    Returned unchanged when it does not grow that way (a shape mismatch the caller reports).

    >>> import torch
    >>> w = torch.ones(1, 1, 1, 1)
    >>> wide = widened(w, (2, 2, 1, 1), np.random.default_rng(0))
    >>> wide.shape, wide.sum(1).flatten().tolist()  # each copy of the output still sums to the export's
    (torch.Size([2, 2, 1, 1]), [1.0, 1.0])
    """
    import torch

    if len(shape) != source.dim() or any(n != o for n, o in zip(shape[2:], source.shape[2:], strict=True)):
        return source
    if shape[0] == 2 * source.shape[0]:
        source = source.repeat_interleave(2, dim=0)
    if source.dim() > 1 and shape[1] == 2 * source.shape[1]:
        first = rng.uniform(*WIDEN_SPLIT, size=(source.shape[0], source.shape[1], 1, 1))
        split = torch.from_numpy(np.stack([first, 1.0 - first], axis=2).reshape(source.shape[0], -1, 1, 1))
        source = source.repeat_interleave(2, dim=1) * split.to(source.dtype)
    return source


def _calibration_inputs(images: Sequence[str | Path], imgsz: int):
    """The images as the network sees them in training: RGB in [0, 1], letterboxed to an imgsz square."""
    import torch

    batch = []
    for path in images:
        img = cv2.imread(str(path))
        if img is None:
            raise WeightsError(f"cannot read calibration image {path}")
        h, w = img.shape[:2]
        r = imgsz / max(h, w)
        nh, nw = round(h * r), round(w * r)
        canvas = np.full((imgsz, imgsz, 3), 114, np.uint8)
        top, left = (imgsz - nh) // 2, (imgsz - nw) // 2
        canvas[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        batch.append(canvas[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(np.stack(batch))).float() / 255.0


def _move_head(weights: dict, head: int) -> dict:
    """`weights` with the export's last layer (its detection head) renamed to layer `head`.

    >>> sorted(_move_head({"model.2.conv.weight": 0, "model.22.cv2.0.2.bias": 1}, 25))
    ['model.2.conv.weight', 'model.25.cv2.0.2.bias']
    """
    last = max(int(name.split(".")[1]) for name in weights)
    old, new = f"model.{last}.", f"model.{head}."
    return {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in weights.items()}


def _fit_batch_norms(model, convs, inputs) -> None:
    """Give each of `convs` (Conv modules with identity batch norms) the per-channel mean and variance of
    its convolution's output on `inputs`, with weight sqrt(var + eps) and bias + mean: inference output
    stays exactly the same."""
    import torch

    sums = {m: [0.0, 0.0, 0] for m in convs}

    def record(conv, _module, _inputs, output) -> None:
        y = output.double().transpose(0, 1).flatten(1)  # (channels, values)
        acc = sums[conv]
        acc[0] += y.sum(1)
        acc[1] += (y * y).sum(1)
        acc[2] += y.shape[1]

    hooks = [m.conv.register_forward_hook(partial(record, m)) for m in convs]
    model.eval()
    try:
        with torch.no_grad():
            for chunk in inputs.split(CALIBRATION_BATCH):
                model(chunk)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        for m in convs:
            total, squares, n = sums[m]
            mean = total / n
            var = (squares / n - mean * mean).clamp(min=0)
            bn = m.bn
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_((var + bn.eps).sqrt())
            bn.bias.add_(mean)
