"""Build the shipped plate reader from a maintained one: the PP-OCRv4 mobile text recogniser (PaddleOCR,
Apache-2.0) that the `rapidocr-onnxruntime` wheel carries as ONNX, wrapped into the contract of
`pipeline.plates.PlateRecognizer`.

Measured on real plates it reads what our rendered-only network could not (see models/feixian-plate-v2.md),
so the reader is chosen rather than trained. The wrapping puts into the graph what rapidocr does around it,
so the runtime needs neither rapidocr nor its dependencies: 0-255 BGR pixels in (scaled to -1..1 inside),
log-probabilities out, and the character set and input format in the metadata. Nothing is downloaded:
the recogniser is read from the installed wheel (`pip install rapidocr-onnxruntime`, in the `train` extra).

    python -m training.plates.ppocr --out models/feixian-plate-v2.onnx --version feixian-plate-v2
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

PACKAGE = "rapidocr_onnxruntime"
REC_MODEL = "models/ch_PP-OCRv4_rec_infer.onnx"
INPUT_HEIGHT, INPUT_WIDTH = 48, 320  # PP-OCR's recogniser input: 48 high, lines padded to 320 wide


def wheel_recogniser() -> Path:
    """The PP-OCRv4 recogniser inside the installed wheel (located without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{PACKAGE} is not installed (pip install rapidocr-onnxruntime)")
    path = Path(spec.origin).parent / REC_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {PACKAGE}")
    return path


def build_reader(source: Path, out: Path, version: str) -> dict[str, str]:
    """Write `out`: `source`'s graph with pixel scaling in front and a log after its softmax, stamped with
    the plate-ocr metadata. Returns the metadata."""
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    graph = model.graph
    dictionary = dict((p.key, p.value) for p in model.metadata_props)["character"].splitlines()
    if any(len(c) != 1 for c in dictionary):
        raise ValueError(f"{source}: its character list has entries that are not one character")
    old_in, old_out = graph.input[0], graph.output[0]
    scaled, probs = old_in.name, old_out.name
    graph.node.insert(0, helper.make_node("Sub", ["images_half", "one"], [scaled]))
    graph.node.insert(0, helper.make_node("Div", ["images", "half_range"], ["images_half"]))
    graph.initializer.extend(
        [helper.make_tensor("half_range", onnx.TensorProto.FLOAT, [], [127.5]), helper.make_tensor("one", 1, [], [1.0])]
    )
    graph.node.append(helper.make_node("Log", [probs], ["log_probs"]))
    new_in = helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["batch", 3, INPUT_HEIGHT, "width"])
    new_out = helper.make_tensor_value_info("log_probs", onnx.TensorProto.FLOAT, ["batch", "columns", "classes"])
    graph.input.remove(old_in)
    graph.input.insert(0, new_in)
    graph.output.remove(old_out)
    graph.output.insert(0, new_out)
    metadata = {
        "task": "plate-ocr",
        # rapidocr appends a space class after the list; the blank is class 0.
        "charset": "".join(dictionary) + " ",
        "input": f"{INPUT_HEIGHT}x{INPUT_WIDTH} bgr",
        "version": version,
        "source": f"PP-OCRv4 mobile rec (PaddleOCR, Apache-2.0) from {PACKAGE} "
        f"{importlib.metadata.version(PACKAGE.replace('_', '-'))}, {REC_MODEL}",
    }
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return metadata


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. models/feixian-plate-v2.onnx")
    p.add_argument("--version", default="dev", help="model version recorded in the ONNX metadata")
    args = p.parse_args(argv)
    try:
        source = wheel_recogniser()
    except FileNotFoundError as err:
        print(f"training.plates.ppocr: {err}", file=sys.stderr)
        return 2
    meta = build_reader(source, Path(args.out), args.version)
    print(f"wrote {args.out}: {meta['source']}, {len(meta['charset'])} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
