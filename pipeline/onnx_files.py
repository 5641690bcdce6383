"""Opening the project's small ONNX networks: a CPU session of a file whose metadata says what it is.

>>> tagged_session("missing.onnx", 1, "plate-ocr", "charset", "plate reader")
Traceback (most recent call last):
FileNotFoundError: plate reader model not found: missing.onnx
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def tagged_session(
    model_path: str | Path, threads: int, task: str, needs: str, what: str
) -> tuple[ort.InferenceSession, dict[str, str]]:
    """A CPU session of `model_path` and its metadata, which must name `task` and hold `needs`: a file of another
    kind would run and answer nonsense. `threads`: ONNX Runtime intra-op threads, 0 = its default; `what` names
    the network in errors."""
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} model not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("task") != task or not meta.get(needs):
        raise ValueError(f"{path} is not a {what} (no {task} task and {needs} in its metadata)")
    return session, meta
