"""Crop classifiers built as ONNX in the tests, whose answers the tests can predict: the softmax of a linear map of
the crop's mean red, green and blue (in [0, 1])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.crop_stages import CROP_SIZE


def colour_classifier(path: Path, weight: np.ndarray, bias: np.ndarray) -> Path:
    """(N,3,96,96) RGB -> softmax(mean colour @ weight + bias), weight (3, K): an ONNX file at `path`."""
    weight, bias = np.asarray(weight, np.float32), np.asarray(bias, np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weight"], ["mapped"]),
        helper.make_node("Add", ["mapped", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["out"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, CROP_SIZE, CROP_SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", weight.shape[1]])],
        [
            helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 3]),
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path
