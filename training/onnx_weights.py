"""Turn an Ultralytics ONNX export back into a checkpoint that `feixian train --weights` fine-tunes from.

The repository ships only the ONNX export of its model (what the runtime needs); a bureau that wants to
fine-tune it on its own footage, or a longer run that continues it, needs PyTorch weights. The export
keeps every parameter under its PyTorch name, with each convolution's batch norm folded into the
convolution's weight and bias. Unfolding is exact: the convolution takes the folded weight and the batch
norm becomes the identity plus the folded bias (scale 1, mean 0, variance 1 - eps), which training then
adapts like any other batch norm.

    >>> pt = checkpoint_from_onnx("models/feixian-street-v2.onnx", "training/models/feixian-v8p.yaml",
    ...                           "data/feixian-street-v2.pt")  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


class WeightsError(ValueError):
    """The ONNX file does not fit the model YAML (another architecture or width)."""


def checkpoint_from_onnx(onnx_path: str | Path, model_yaml: str | Path, out: str | Path) -> Path:
    """Write an Ultralytics checkpoint (`out`, a .pt) holding the ONNX export's weights in the network
    built from `model_yaml`; raises WeightsError when the two do not fit parameter for parameter."""
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

    def take(name: str, target: torch.Tensor) -> None:
        source = weights.pop(name, None)
        if source is None or source.shape != target.shape:
            got = "missing" if source is None else tuple(source.shape)
            want = tuple(target.shape)
            raise WeightsError(f"{onnx_path} does not fit {model_yaml}: {name} is {got}, expected {want}")
        target.copy_(source)

    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, Conv):
                take(f"{name}.conv.weight", module.conv.weight)
                take(f"{name}.conv.bias", module.bn.bias)
                module.bn.weight.fill_(1.0)
                module.bn.running_mean.zero_()
                module.bn.running_var.fill_(1.0 - module.bn.eps)
            elif isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                take(f"{name}.weight", module.weight)
                take(f"{name}.bias", module.bias)
    # The DFL's fixed projection is the only parameter a Conv/Conv2d pass does not visit.
    leftover = sorted(k for k in weights if not k.endswith("dfl.conv.weight"))
    if leftover:
        raise WeightsError(f"{onnx_path} does not fit {model_yaml}: unused weights {leftover[:5]}")
    model.names = dict(enumerate(names))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model,
            "epoch": -1,
            "date": datetime.now(UTC).isoformat(),
            "train_args": {"imgsz": OnnxDetector(onnx_path).input_size[0]},
            "source_onnx": str(onnx_path),
        },
        out,
    )
    return out
