"""YOLO detection through ONNX Runtime, for any Ultralytics-format ONNX export.

The export's output is (1, 4 + nc, N): box centre x, y, width, height in letterboxed input pixels, then
one score per class (no objectness). Pre- and post-processing follow Ultralytics' predictor exactly
(letterbox, best class per anchor, class-aware NMS, boxes scaled back to the frame), so a model behaves
here as it did in `yolo predict`.

>>> from pipeline.taxonomy import COCO_CLASS_MAP
>>> det = OnnxDetector("../shared/models/yolo11n_coco_320_int8dyn.onnx", class_map=COCO_CLASS_MAP)  # doctest: +SKIP
>>> detections = det.detect(cv2.imread("street.jpg"))  # doctest: +SKIP
>>> detections.data["class_name"]  # doctest: +SKIP
array(['truck', 'car'], dtype='<U5')
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv

from pipeline.regions import BORDER_PX, at_border
from pipeline.taxonomy import CLASSES

# Ultralytics' predictor defaults: at most this many boxes per image, and at most this many candidates
# enter NMS (here also what bounds the NMS IoU matrix).
MAX_DETECTIONS = 300
MAX_NMS_CANDIDATES = 3000
# Classes are shifted this far apart so one NMS pass never lets two classes suppress each other.
_CLASS_OFFSET = 7680.0
# Input pixels of the picture around a region that the network sees with it (`OnnxDetector.detect_regions`).
REGION_CONTEXT_PX = 192


class DetectorError(ValueError):
    """The model file is missing, not an ONNX model, or not an Ultralytics detection export."""


class DeviceUnavailable(DetectorError):
    """The device the settings ask for cannot run the model here (no CUDA provider in this ONNX Runtime, or no GPU)."""


def nms(xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS (torchvision semantics: drop a box whose IoU with a kept, higher-scoring box exceeds
    the threshold); returns kept indices, best score first.

    Exact greedy NMS has a sequential dependency (a box suppressed by a suppressed box survives), so it
    is solved as a fixed point on the boolean "would suppress" matrix: each pass is one matrix product
    and box k is settled after at most k passes; in practice a handful.

    >>> boxes = np.array([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], np.float32)
    >>> nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
    [0, 2]
    """
    order = np.argsort(-scores, kind="stable")
    iou = sv.box_iou_batch(xyxy[order], xyxy[order])
    suppresses = np.triu(iou > iou_threshold, k=1).astype(np.float32)
    keep = np.ones(len(order), dtype=bool)
    for _ in range(len(order)):
        new_keep = (keep.astype(np.float32) @ suppresses) == 0
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return order[keep]


def no_detections() -> sv.Detections:
    """No box, with the data keys every answer of a detector carries (`class_name`, `at_edge`).

    >>> found = no_detections()
    >>> len(found), sorted(found.data)
    (0, ['at_edge', 'class_name'])
    """
    empty = sv.Detections.empty()
    empty.data["class_name"] = np.array([], dtype=str)
    empty.data["at_edge"] = np.array([], dtype=bool)
    return empty


class OnnxDetector:
    """An Ultralytics ONNX export on ONNX Runtime; `detect` is safe to call from several threads.

    Args:
        path: the .onnx file.
        conf_threshold: minimum class score kept.
        iou_threshold: NMS IoU threshold (boxes of one class overlapping more than this are merged).
        class_map: foreign model class -> feixian class; classes not in it are dropped and `class_names`
            becomes `pipeline.taxonomy.CLASSES`. None = use the model's own names.
        threads: ONNX Runtime intra-op threads; 0 = runtime default.
        device: "cpu", or "cuda" for ONNX Runtime's CUDAExecutionProvider (the onnxruntime-gpu package and a
            CUDA GPU); raises `DeviceUnavailable` rather than quietly running on the CPU without them.

    >>> det = OnnxDetector("../shared/models/yolo11n_coco_320_int8dyn.onnx")  # doctest: +SKIP
    >>> det.input_size, det.class_names[:2]  # doctest: +SKIP
    ((320, 320), ('person', 'bicycle'))
    """

    def __init__(
        self,
        path: str | Path,
        conf_threshold: float = 0.35,
        iou_threshold: float = 0.5,
        class_map: dict[str, str] | None = None,
        threads: int = 0,
        device: str = "cpu",
    ):
        if not 0 < conf_threshold < 1 or not 0 < iou_threshold < 1:
            raise ValueError("conf_threshold and iou_threshold must lie in (0, 1)")
        if threads < 0:
            raise ValueError("threads must be >= 0")
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise DeviceUnavailable(
                f"device cuda (model.device) needs ONNX Runtime's CUDAExecutionProvider, and this onnxruntime has "
                f"only {', '.join(ort.get_available_providers())}: install onnxruntime-gpu in place of onnxruntime, "
                "on a machine with a CUDA GPU, or set model.device: cpu"
            )
        self.path = Path(path)
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        try:
            blob = self.path.read_bytes()
        except OSError as e:
            raise DetectorError(f"{self.path}: cannot read model: {e.strerror or e}") from e
        # Hash the very bytes the session is built from, so the manifest names exactly the model that ran.
        self.sha256 = hashlib.sha256(blob).hexdigest()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        try:
            self._session = ort.InferenceSession(blob, options, providers=providers)
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf types
            raise DetectorError(f"{self.path}: not a loadable ONNX model: {e}") from e
        # ORT falls back to the CPU when the CUDA provider cannot start (no GPU, CUDA or cuDNN libraries missing):
        # a deployment sized for a GPU would then fall behind without a word.
        if device == "cuda" and "CUDAExecutionProvider" not in self._session.get_providers():
            raise DeviceUnavailable(
                f"{self.path}: the CUDAExecutionProvider did not start (no CUDA GPU visible, or the CUDA and cuDNN "
                "libraries onnxruntime-gpu needs are missing; see ONNX Runtime's log above), or set model.device: cpu"
            )
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        model_names = self._read_names()
        self._input = self._session.get_inputs()[0]
        self.input_size, self._dynamic = self._read_input_size()
        self._stride = int(self.metadata.get("stride", 32))
        self._check_output(len(model_names))
        self.class_names, self._model_to_ours = self._build_class_table(model_names, class_map)

    def _read_names(self) -> list[str]:
        raw = self.metadata.get("names")
        if raw is None:
            raise DetectorError(f"{self.path}: no 'names' metadata: not an Ultralytics export")
        try:
            names = ast.literal_eval(raw)
        except (ValueError, SyntaxError) as e:
            raise DetectorError(f"{self.path}: unreadable 'names' metadata: {raw[:80]!r}") from e
        if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
            raise DetectorError(f"{self.path}: 'names' metadata is not {{0: name, 1: name, ...}}")
        return [str(names[i]) for i in range(len(names))]

    def _read_input_size(self) -> tuple[tuple[int, int], bool]:
        shape = self._input.shape
        if len(shape) != 4:
            raise DetectorError(f"{self.path}: expected a 4-d image input, got shape {shape}")
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int):
            return (h, w), False
        imgsz = self.metadata.get("imgsz")
        if imgsz is None:
            raise DetectorError(f"{self.path}: dynamic input shape and no 'imgsz' metadata")
        try:
            size = ast.literal_eval(imgsz)
            size = (size, size) if isinstance(size, int) else tuple(size)
            return (int(size[0]), int(size[1])), True
        except (ValueError, SyntaxError, TypeError, IndexError) as e:
            raise DetectorError(f"{self.path}: unreadable 'imgsz' metadata: {imgsz[:40]!r}") from e

    def _check_output(self, nc: int) -> None:
        outputs = self._session.get_outputs()
        shape = outputs[0].shape
        if len(outputs) != 1 or len(shape) != 3 or (isinstance(shape[1], int) and shape[1] != 4 + nc):
            raise DetectorError(
                f"{self.path}: expected one output of shape (1, {4 + nc}, N) (boxes + {nc} class scores, "
                f"an Ultralytics detect head without NMS), got {[o.shape for o in outputs]}"
            )

    @staticmethod
    def _build_class_table(
        model_names: list[str], class_map: dict[str, str] | None
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """Our class names, and for each model class its index among them (-1 = dropped)."""
        if class_map is None:
            return tuple(model_names), np.arange(len(model_names))
        unknown_src = sorted(set(class_map) - set(model_names))
        if unknown_src:
            raise DetectorError(f"class_map names classes the model does not have: {unknown_src}")
        unknown_dst = sorted(set(class_map.values()) - set(CLASSES))
        if unknown_dst:
            raise DetectorError(f"class_map maps onto names that are not feixian classes: {unknown_dst}")
        table = np.array([CLASSES.index(class_map[n]) if n in class_map else -1 for n in model_names])
        return CLASSES, table

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, first preferred (e.g. CUDA, then CPU for what CUDA
        lacks)."""
        return list(self._session.get_providers())

    @property
    def stride(self) -> int:
        """The network's coarsest grid step (px of its input): the multiple an input side is padded to."""
        return self._stride

    @property
    def dynamic_input(self) -> bool:
        """True when the model takes any input shape: frames are then padded only to a stride multiple."""
        return self._dynamic

    def input_shape_for(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) of the network input a frame of this size is letterboxed to.

        >>> det.input_shape_for(360, 640)  # doctest: +SKIP
        (288, 480)
        """
        (nh, nw), (dh, dw) = self._fit(height, width)
        return nh + dh, nw + dw

    def _fit(self, h0: int, w0: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """The resized (height, width) and the total (height, width) padding, as Ultralytics' LetterBox."""
        th, tw = self.input_size
        r = min(th / h0, tw / w0)
        nw, nh = max(round(w0 * r), 1), max(round(h0 * r), 1)
        dw, dh = tw - nw, th - nh
        if self._dynamic:  # Ultralytics pads a dynamic model only up to the next stride multiple
            dw, dh = dw % self._stride, dh % self._stride
        return (nh, nw), (dh, dw)

    def _letterbox(self, bgr: np.ndarray) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
        """NCHW float32 RGB input, the (x, y) gains and the (left, top) padding, as Ultralytics' LetterBox."""
        h0, w0 = bgr.shape[:2]
        (nh, nw), (dh, dw) = self._fit(h0, w0)
        top, bottom = round(dh / 2 - 0.1), round(dh / 2 + 0.1)
        left, right = round(dw / 2 - 0.1), round(dw / 2 + 0.1)
        return self._to_input(bgr, (nw, nh), (top, bottom, left, right)), (nw / w0, nh / h0), (left, top)

    @staticmethod
    def _to_input(bgr: np.ndarray, size: tuple[int, int], pad: tuple[int, int, int, int]) -> np.ndarray:
        """NCHW float32 RGB input: `bgr` resized to `size` (width, height), then padded grey by `pad` (top,
        bottom, left, right), as Ultralytics pads."""
        h0, w0 = bgr.shape[:2]
        img = bgr if size == (w0, h0) else cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)
        img = cv2.copyMakeBorder(img, *pad, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        blob = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        blob /= 255.0
        return blob

    def detect(self, bgr: np.ndarray) -> sv.Detections:
        """Detect objects in one BGR frame; boxes are in the frame's pixels."""
        self._check_image(bgr)
        blob, gains, pad = self._letterbox(bgr)
        return self._unletterbox(self._infer(blob), gains, pad, bgr.shape[:2])

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[sv.Detections]:
        """`detect` of each BGR frame, in order, with the frames that letterbox to one input shape (frames of one
        size) run as one batch: one network call each, which is what keeps a GPU busy.

        A model exported with a fixed batch of 1 takes the frames one call each."""
        for bgr in frames:
            self._check_image(bgr)
        letterboxed = [self._letterbox(bgr) for bgr in frames]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, (blob, _, _) in enumerate(letterboxed):
            by_shape.setdefault(blob.shape, []).append(i)
        fixed_batch = isinstance(self._input.shape[0], int)  # exported with batch 1: it takes one frame a call
        groups = [[i] for i in range(len(frames))] if fixed_batch else list(by_shape.values())
        found: dict[int, sv.Detections] = {}
        for members in groups:
            out = self._run(np.concatenate([letterboxed[i][0] for i in members]))
            for i, pred in zip(members, out, strict=True):
                _, gains, pad = letterboxed[i]
                found[i] = self._unletterbox(self._decode(pred), gains, pad, frames[i].shape[:2])
        return [found[i] for i in range(len(frames))]

    def _unletterbox(
        self,
        found: tuple[np.ndarray, np.ndarray, np.ndarray],
        gains: tuple[float, float],
        pad: tuple[int, int],
        shape: tuple[int, ...],
    ) -> sv.Detections:
        """Boxes found in a letterboxed input, as `sv.Detections` in the pixels of the frame it was made from."""
        xyxy, conf, cls = found
        (gx, gy), (left, top) = gains, pad
        xyxy = (xyxy - np.array([left, top, left, top], np.float32)) / np.array([gx, gy, gx, gy], np.float32)
        return self._detections(xyxy, conf, cls, shape)

    def detect_regions(self, bgr: np.ndarray, rects: Sequence[tuple[int, int, int, int]]) -> sv.Detections:
        """Detect objects in the given disjoint regions (x1, y1, x2, y2) of one BGR frame only; boxes are in the
        frame's pixels.

        Each region is looked at as a window of the whole frame's own network input (`_letterbox`), widened by
        `REGION_CONTEXT_PX` of the picture around it and snapped to the input grid: the network then sees the
        region's pixels as it sees them in the whole frame, on the same grid and with the scene around them, and
        scores them alike. A region scaled and padded on its own scored a weak item far lower than the whole
        frame did (a goods box 0.41 whole, nothing in its region), so an item seen in every whole look was lost
        in the looks between. A window keeps the boxes whose centre lies in its region; a box that touches the
        window's edge inside the frame is dropped: it shows an object cut in two, which the whole frame's next
        look sees whole. A model of fixed input size looks at the whole frame instead (a window would have to be
        scaled to fill it)."""
        if not self._dynamic:
            return self.detect(bgr)
        self._check_image(bgr)
        blob, (gx, gy), (left, top) = self._letterbox(bgr)
        height, width = blob.shape[2:]
        s, c = self._stride, REGION_CONTEXT_PX
        gains = np.array([gx, gy, gx, gy], np.float32)
        shift = np.array([left, top, left, top], np.float32)
        regions = [
            r for r in (np.asarray(rect, np.float32) * gains + shift for rect in rects) if r[2] > r[0] and r[3] > r[1]
        ]
        windows = [
            (
                max(0, int((r[0] - c) // s * s)),
                max(0, int((r[1] - c) // s * s)),
                min(width, int(-(-(r[2] + c) // s) * s)),
                min(height, int(-(-(r[3] + c) // s) * s)),
            )
            for r in regions
        ]
        if sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in windows) >= width * height:
            # The windows would cost more than the whole input, which holds each of them.
            windows = [(0, 0, width, height)] * len(regions)
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        answers: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for (rx1, ry1, rx2, ry2), window in zip(regions, windows, strict=True):
            x1, y1, x2, y2 = window
            if window not in answers:
                xyxy, conf, cls = self._infer(np.ascontiguousarray(blob[:, :, y1:y2, x1:x2]))
                answers[window] = (xyxy + np.array([x1, y1, x1, y1], np.float32), conf, cls)
            xyxy, conf, cls = answers[window]
            cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
            inside = (cx >= rx1) & (cx < rx2) & (cy >= ry1) & (cy < ry2)
            inner = np.array([x1 > 0, y1 > 0, x2 < width, y2 < height])
            edges = np.array(window, np.float32)
            cut = ((np.abs(xyxy - edges) <= BORDER_PX * gains) & inner).any(axis=1)
            keep = inside & ~cut
            found.append(((xyxy[keep] - shift) / gains, conf[keep], cls[keep]))
        if not found:
            return no_detections()
        xyxy, conf, cls = (np.concatenate(parts) for parts in zip(*found, strict=True))
        return self._detections(xyxy, conf, cls, bgr.shape[:2])

    @staticmethod
    def _check_image(bgr: np.ndarray) -> None:
        if not isinstance(bgr, np.ndarray) or bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError("detect() expects an HxWx3 uint8 BGR image")

    def _infer(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x1 y1 x2 y2 in input pixels), scores and our class indices the network keeps for one input."""
        return self._decode(self._run(blob)[0])

    def _run(self, blob: np.ndarray) -> np.ndarray:
        """The network's raw (batch, 4 + nc, N) output for a (batch, 3, H, W) input."""
        (out,) = self._session.run(None, {self._input.name: blob})
        if out.ndim != 3 or out.shape[0] != len(blob) or out.shape[1] != 4 + len(self._model_to_ours):
            raise DetectorError(f"{self.path}: model returned shape {out.shape}, expected ({len(blob)}, 4+nc, N)")
        return out

    def _decode(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (x1 y1 x2 y2 in input pixels), scores and our class indices kept from one input's (4 + nc, N)
        output."""
        scores = pred[4:]
        # Best class per anchor first, then the threshold: exactly Ultralytics' single-label path.
        best = scores.argmax(axis=0)
        conf = np.take_along_axis(scores, best[None], axis=0)[0]
        ours = self._model_to_ours[best]
        keep = (conf > self.conf_threshold) & (ours >= 0)
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)
        cxcywh, conf, cls = pred[:4, keep].T, conf[keep], ours[keep]
        if len(conf) > MAX_NMS_CANDIDATES:
            top_k = np.argsort(-conf, kind="stable")[:MAX_NMS_CANDIDATES]
            cxcywh, conf, cls = cxcywh[top_k], conf[top_k], cls[top_k]
        half = cxcywh[:, 2:] / 2
        xyxy = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
        kept = nms(xyxy + (cls * _CLASS_OFFSET)[:, None], conf, self.iou_threshold)[:MAX_DETECTIONS]
        return xyxy[kept], conf[kept], cls[kept]

    def _detections(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, shape: tuple[int, ...]) -> sv.Detections:
        """Frame-pixel boxes clipped to the frame, with class names and whether each touches its border."""
        if not len(conf):
            return no_detections()
        h0, w0 = shape[:2]
        xyxy = np.clip(xyxy, 0, [w0, h0, w0, h0]).astype(np.float32)
        at_edge = at_border(xyxy, (h0, w0))
        names = np.asarray(self.class_names)
        return sv.Detections(
            xyxy=xyxy,
            confidence=conf.astype(np.float32),
            class_id=cls.astype(int),
            data={"class_name": names[cls], "at_edge": at_edge},
        )
