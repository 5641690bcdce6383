"""Validated configuration: the settings file and the points registry it names (their records: `feixian.domain`).

Everything read from YAML passes through these pydantic models, so a bad file fails at load time with
the file, the key path and the reason (`ConfigError`), never deep inside a worker.

A settings file may start from another: `extends: default.yaml` (relative to the file that says it) loads
that file first and lays this file's mappings over it, section by section; a list or a value replaces the
one it inherits. Paths inherited this way (`points_file`, `model.path`, `plates.model`) stay relative to
the file that wrote them.

Example:
    >>> cfg = load_config("configs/demo.yaml")  # doctest: +SKIP
    >>> cfg.points[0].zones[0].kind  # doctest: +SKIP
    <ZoneKind.NO_OCCUPATION: 'no_occupation'>
"""

from __future__ import annotations

import io
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from cases.claims import ClaimSettings
from cases.party_settings import PartySettings
from cases.procedure_settings import ProcedureSettings, SlaSettings
from cases.publicity import PublicitySettings
from cases.store import EvidenceSettings
from feixian.domain import Category, Gateway, Point, StrictModel
from feixian.rule_settings import RuleSettings
from pipeline.crop_stages import Stage
from pipeline.item_check import ItemCheck, ItemCheckSettings
from pipeline.motion import MotionSettings
from pipeline.redis_bus import RedisBusSettings
from pipeline.truck_state import TruckStateJudge, TruckStateSettings


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; the message names file, key path and reason."""


class PointsFile(StrictModel):
    points: list[Point]

    # A field validator, so the message names the key (`points`), not the file's root.
    @field_validator("points")
    @classmethod
    def _unique_ids(cls, points: list[Point]) -> list[Point]:
        ids = [p.id for p in points]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate point ids: {sorted(dup)}")
        return points


class ModelSettings(StrictModel):
    path: str = Field(description="ONNX detector (Ultralytics export); relative to the config file.")
    conf_threshold: float = Field(
        default=0.35, gt=0, lt=1, description="Score an object must reach once to be tracked or judged."
    )
    track_threshold: float = Field(
        default=0.15,
        gt=0,
        lt=1,
        description="Weaker boxes down to this score are kept only to follow an object already found (a "
        "chair half hidden by a passer-by scores lower); nothing starts from them.",
    )
    iou_threshold: float = Field(default=0.5, gt=0, lt=1, description="NMS IoU threshold.")
    class_map: dict[str, str] | None = Field(
        default=None,
        description="Foreign model classes -> feixian classes (e.g. COCO 'dining table' -> table); "
        "unmapped classes are dropped. None = the model already speaks feixian classes.",
    )
    threads: int = Field(default=0, ge=0, le=64, description="ONNX Runtime intra-op threads; 0 = runtime default.")
    device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description="Where the detector runs: cpu, or cuda for ONNX Runtime's CUDAExecutionProvider (needs the "
        "onnxruntime-gpu package in place of onnxruntime, and a CUDA GPU; the start fails rather than quietly "
        "running on the CPU without them). The second looks (truck_state, item_check) stay on the CPU.",
    )
    truck_state: TruckStateSettings | None = Field(
        default=None,
        description="A second stage that judges each truck's state (clean, dirty, uncovered) on its crop and "
        "overrides the detector's; None: the detector's own truck classes stand.",
    )
    item_check: ItemCheckSettings | None = Field(
        default=None,
        description="A second look at each occupation item box on its crop: drops the stall, cart and goods boxes "
        "its classifier doubts and re-scores every item box by it; None: the detector's item boxes stand as found.",
    )

    def stages(self, base_dir: Path) -> list[Stage]:
        """The second looks behind the detector (`pipeline.crop_stages`), their paths relative to `base_dir`."""
        stages: list[Stage] = []
        if self.item_check is not None:
            check = self.item_check
            stages.append(ItemCheck(str(base_dir / check.path), check.min_confidence, check.score_weight, self.threads))
        if self.truck_state is not None:
            stage = self.truck_state
            stages.append(TruckStateJudge(str(base_dir / stage.path), stage.min_confidence, self.threads))
        return stages

    @model_validator(mode="after")
    def _track_below_conf(self) -> ModelSettings:
        if self.track_threshold > self.conf_threshold:
            raise ValueError("track_threshold must not exceed conf_threshold")
        return self


class PlateSettings(StrictModel):
    """Licence-plate reading for vehicle events: the plate identifies the party."""

    model: str | None = Field(
        default=None,
        description="ONNX plate reader (`make train-plates`), relative to the config file; None: plates "
        "are not read and vehicle cases carry no party.",
    )
    min_confidence: float = Field(
        default=0.85,
        gt=0,
        lt=1,
        description="A read whose least certain character scores below this names no party: a wrong plate is "
        "worse than none. Calibrated on real plate crops (`feixian plates eval`).",
    )
    province_confidence: float = Field(
        default=0.95,
        ge=0,
        lt=1,
        description="A read whose province character scores below this names no party: the province glyph is "
        "the one a reader confuses most (a wrong province at 0.89 named another party).",
    )
    province_model: str | None = Field(
        default=None,
        description="ONNX province glyph classifier (`feixian plates train-province`), relative to the config "
        "file: a province under province_confidence still names the party where this classifier names the same "
        "province (models/feixian-province-v1.md). None: province_confidence alone decides.",
    )
    province_agreed_confidence: float = Field(
        default=0.5,
        ge=0,
        lt=1,
        description="With province_model: the recogniser's own province score must still reach this for the "
        "classifier's agreement to count. Calibrated with `feixian plates eval --province-model`.",
    )
    province_model_confidence: float = Field(
        default=0.97,
        gt=0,
        lt=1,
        description="With province_model: the classifier's probability for the recogniser's province must reach "
        "this. Calibrated with `feixian plates eval --province-model`.",
    )
    views: int = Field(
        default=4, ge=1, le=50, description="Frames of a truck passage that are read: those where it is boxed largest."
    )

    def province_model_path(self, base_dir: Path) -> Path | None:
        """The province classifier's file, resolved against the config file's folder `base_dir`.

        >>> PlateSettings(province_model="m.onnx").province_model_path(Path("/etc/feixian"))
        PosixPath('/etc/feixian/m.onnx')
        """
        return None if self.province_model is None else (base_dir / self.province_model).resolve()


class SpoolSettings(StrictModel):
    """Evidence kept on local disk while the S3 store is unreachable, uploaded when it answers again."""

    retry_initial_s: float = Field(
        default=2.0, gt=0, le=600, description="First wait before trying the store again after it failed."
    )
    retry_max_s: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Longest wait between tries; each failed try doubles the wait up to this, a success resets it.",
    )


class RetentionSettings(StrictModel):
    """Deleting raw material that no case holds (legal requirement 6: raw video kept at least 30 days)."""

    raw_days: int = Field(
        default=30,
        ge=30,
        le=3650,
        description="Evidence objects no case refers to are deleted once stored longer than this many days; "
        "the law asks for at least 30. Case evidence is never deleted by retention.",
    )
    interval_h: float = Field(
        default=24.0, ge=1, le=168, description="`feixian run` / `serve` run the retention job this often."
    )


class BusSettings(StrictModel):
    backend: Literal["memory", "redis"] = Field(
        default="memory",
        description="memory: in-process, `feixian run` / `serve` run the points themselves; redis: `serve` "
        "publishes to Redis Streams and `feixian worker` processes run the points (pipeline.redis_bus).",
    )
    max_pending: int = Field(default=256, ge=1, le=100_000, description="Frames queued per point before push back.")
    redis: RedisBusSettings = Field(default_factory=RedisBusSettings, description="Used when backend is redis.")


class ServerSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key_env: str = Field(default="FEIXIAN_SECRET_KEY", description="Env var with the session secret.")
    max_frame_bytes: int = Field(default=4_000_000, ge=10_000, description="Largest pushed JPEG accepted.")
    max_frame_pixels: int = Field(
        default=4096 * 4096,
        ge=64 * 64,
        le=100_000_000,
        description="Most pixels a frame's JPEG header may declare; larger frames are refused before any decode "
        "(a few hundred bytes can declare 60000x60000).",
    )
    max_clock_ahead_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="A frame stamped further ahead of the server clock is refused (push API, 422) or dropped (live "
        "worker): one such frame would otherwise make every later, correctly stamped frame look out of order.",
    )
    ready_stale_s: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="/readyz reports a point's worker stalled when its loop has not come round for this long "
        "(one frame taking longer than this counts as stalled).",
    )
    shutdown_timeout_s: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="On SIGINT/SIGTERM, how long to wait for sources to stop and workers to drain their queues "
        "and file pending evidence before giving up (exit 1).",
    )


class Settings(StrictModel):
    """The whole settings file (configs/default.yaml), with whatever it extends laid under it."""

    points_file: str = Field(
        default="points.yaml", description="Points registry, relative to the settings file that names it."
    )
    database_url: str | None = Field(
        default=None, description="None = SQLite under the data dir; env DATABASE_URL wins."
    )
    model: ModelSettings
    plates: PlateSettings = PlateSettings()
    rules: RuleSettings = Field(
        default_factory=RuleSettings, description="How the rules judge detections; tuned per model (tune-rules)."
    )
    motion: MotionSettings = Field(
        default_factory=MotionSettings, description="When the detector may skip a frame (pipeline.motion)."
    )
    evidence: EvidenceSettings = EvidenceSettings()
    bus: BusSettings = BusSettings()
    spool: SpoolSettings = SpoolSettings()
    retention: RetentionSettings = RetentionSettings()
    procedure: ProcedureSettings = ProcedureSettings()
    sla: SlaSettings = SlaSettings()
    parties: PartySettings = PartySettings()
    claims: ClaimSettings = Field(
        default_factory=ClaimSettings, description="How long a reviewer's claim on an opened case holds (cases.claims)."
    )
    publicity: PublicitySettings = PublicitySettings()
    server: ServerSettings = ServerSettings()
    gateways: list[Gateway] = Field(default_factory=list)
    published_categories: list[Category] = Field(
        default_factory=lambda: [Category.OCCUPATION, Category.VEHICLE],
        description="Categories on the published list of non-site matters (legal requirement 2).",
    )


class Config:
    """Settings plus points, with paths resolved against the files they came from."""

    def __init__(
        self,
        settings: Settings,
        points: list[Point],
        base_dir: Path,
        points_dir: Path,
        data_dir: Path,
        database_url: str | None = None,
    ):
        self._database_url = database_url
        self.settings = settings
        self.points = points
        self.base_dir = base_dir
        self.points_dir = points_dir
        self.data_dir = data_dir

    def point(self, point_id: str) -> Point:
        for p in self.points:
            if p.id == point_id:
                return p
        raise KeyError(point_id)

    @property
    def model_path(self) -> Path:
        return (self.base_dir / self.settings.model.path).resolve()

    def stage_path(self, name: str) -> Path | None:
        """The file of the model's second look `name` (truck_state, item_check), or None where none is set."""
        stage = getattr(self.settings.model, name)
        return None if stage is None else (self.base_dir / stage.path).resolve()

    @property
    def plate_model_path(self) -> Path | None:
        model = self.settings.plates.model
        return None if model is None else (self.base_dir / model).resolve()

    def source_path(self, point: Point) -> str:
        """A file source's path resolved against the points file; other URIs unchanged."""
        assert point.source.uri is not None
        return self._resolved(point, point.source.uri)

    def detect_source_path(self, point: Point) -> str | None:
        """The point's sub-stream (`Source.detect_uri`), resolved as `source_path` resolves its main stream;
        None where the point has none."""
        uri = point.source.detect_uri
        return None if uri is None else self._resolved(point, uri)

    def _resolved(self, point: Point, uri: str) -> str:
        if point.source.kind == "file":
            return str((self.points_dir / uri).resolve())
        return uri

    @property
    def database_url(self) -> str:
        """An explicit URL (evaluation's throw-away databases), else env DATABASE_URL, the settings,
        and finally SQLite under the data dir."""
        if self._database_url:
            return self._database_url
        env = os.environ.get("DATABASE_URL")
        if env:
            return env
        if self.settings.database_url:
            return self.settings.database_url
        return f"sqlite:///{(self.data_dir / 'feixian.db').resolve()}"

    @property
    def evidence_dir(self) -> Path:
        return self.data_dir / "evidence"


def _format_errors(path: Path, err: ValidationError, note: str = "") -> str:
    lines = [f"{path}: invalid configuration{note}"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        # The value given, when it is short enough to read in one line (never a whole section).
        given = e.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float | bool) and len(repr(given)) <= 60 else ""
        lines.append(f"  {loc}: {e['msg']}{shown}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word; a second `server:` section would silently
    replace the first, so it is refused. And a date-like scalar that is no date (2024-13-45) made PyYAML raise a
    bare ValueError, a traceback; it stays a string here, and validation names its key."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            # An unhashable key is left to PyYAML, which refuses it with its own message.
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        stream = io.StringIO(text)
        stream.name = path.name  # PyYAML's marks then say "in points.yaml, line 8", not "<unicode string>"
        data = yaml.load(stream, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


# Settings keys that hold a path relative to the file that writes them.
_PATH_KEYS = (
    ("points_file",),
    ("model", "path"),
    ("model", "truck_state", "path"),
    ("model", "item_check", "path"),
    ("plates", "model"),
    ("plates", "province_model"),
)


def merge_settings(base: dict, over: dict) -> dict:
    """`over` laid on `base`: mappings merge key by key, anything else (a list, a value) replaces.

    >>> merge_settings({"rules": {"a": 1, "b": [1, 2]}, "x": 1}, {"rules": {"b": [3]}, "y": 2})
    {'rules': {'a': 1, 'b': [3]}, 'x': 1, 'y': 2}
    """
    merged = dict(base)
    for key, value in over.items():
        inherited = merged.get(key)
        both_mappings = isinstance(value, dict) and isinstance(inherited, dict)
        merged[key] = merge_settings(inherited, value) if both_mappings else value
    return merged


def _rebase_paths(data: dict, written_in: Path, used_in: Path) -> dict:
    """`data` read from a file in folder `written_in`, its relative paths made relative to `used_in`."""
    for *sections, key in _PATH_KEYS:
        holder = data
        for section in sections:
            holder = holder.get(section) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and isinstance(holder.get(key), str) and not Path(holder[key]).is_absolute():
            holder[key] = os.path.relpath(written_in / holder[key], used_in)
    return data


def _read_settings(path: Path, extended_by: tuple[Path, ...] = ()) -> tuple[dict, list[Path]]:
    """The settings in `path` laid over those of the file it `extends` (and so on), and the files extended."""
    data = _read_yaml(path)
    if "extends" not in data:
        return data, []
    target = data.pop("extends")
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"{path}: extends: expected the path of a settings file (got {target!r})")
    base = path.parent / target
    chain = (*extended_by, path.resolve())
    if base.resolve() in chain:
        cycle = " -> ".join(p.name for p in (*chain, base.resolve()))
        raise ConfigError(f"{path}: extends: {target} leads back to a file already on the way ({cycle})")
    if not base.is_file():
        raise ConfigError(f"{path}: extends: {base} does not exist or is not a file")
    inherited, further = _read_settings(base, chain)
    return merge_settings(_rebase_paths(inherited, base.parent, path.parent), data), [base, *further]


def load_points(path: str | Path) -> list[Point]:
    path = Path(path)
    try:
        return PointsFile.model_validate(_read_yaml(path)).points
    except ValidationError as e:
        raise ConfigError(_format_errors(path, e)) from e


def load_config(path: str | Path, data_dir: str | Path | None = None) -> Config:
    """Load and validate settings and the points registry they name."""
    path = Path(path)
    data, extended = _read_settings(path)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        note = f" (keys it does not set come from {', '.join(str(p) for p in extended)})" if extended else ""
        raise ConfigError(_format_errors(path, e, note)) from e
    base = path.parent.resolve()
    points_path = (base / settings.points_file).resolve()
    if not points_path.is_file():
        raise ConfigError(f"{path}: points_file: {points_path} does not exist or is not a file")
    points = load_points(points_path)
    known = {p.id for p in points}
    for i, gw in enumerate(settings.gateways):
        unknown = set(gw.points) - known
        if unknown:
            raise ConfigError(
                f"{path}: gateways.{i}.points: gateway {gw.id!r} names unknown point ids (not in {points_path.name}): "
                f"{sorted(unknown)}"
            )
    return Config(settings, points, base, points_path.parent, Path(data_dir or "data/run"))
