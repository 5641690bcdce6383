"""The camera-gateway push API: `POST /api/v1/points/{point_id}/frames` with one JPEG per request.

A gateway authenticates with its bearer token (only the token's SHA-256 is configured), may push only
for its own points, and gets 503 + Retry-After when the point's queue on the frame bus is full, so a
slow pipeline pushes back on the camera side instead of buffering without bound. A gateway pushing faster
than its `max_fps` gets 429 + Retry-After (`ingest.rate_limit`), and every frame gets 507 while the
evidence disk is below its free-space floor (`ingest.disk_space`). A frame stamped ahead of
the server clock, before the point's announcement or before the point's last accepted frame, and a JPEG
declaring more pixels than allowed, are refused with the reason (`ingest.frame_checks`) and counted.

>>> from fastapi import FastAPI
>>> frames = []
>>> router = make_push_router(gateways=[], point_ids=["JDZ-001"], max_frame_bytes=4_000_000,
...                           publish=frames.append)
>>> FastAPI().include_router(router)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from feixian.domain import Gateway
from ingest.disk_space import FreeSpaceGuard
from ingest.frame_checks import FrameRejected, RejectionCounts, check_capture_time, check_image
from ingest.rate_limit import GatewayRateLimits
from ingest.sources import Publish
from pipeline.frames import Frame, FrameLimits

log = logging.getLogger(__name__)

PUSH_PATH = "/api/v1/points/{point_id}/frames"


class PushAccepted(BaseModel):
    """The frame is queued for the point's pipeline worker."""

    point_id: str = Field(description="The point the frame was queued for.")
    seq: int = Field(ge=0, description="The frame's per-point sequence number (the gateway's or assigned).")
    captured_at: datetime = Field(description="Capture time, normalised to UTC.")


class GatewayAuth:
    """Maps a presented bearer token to its gateway by SHA-256, comparing in constant time.

    >>> gw = Gateway(id="gw1", token_sha256=hashlib.sha256(b"s3cret").hexdigest(), points=["P1"])
    >>> GatewayAuth([gw]).gateway_for("s3cret").id, GatewayAuth([gw]).gateway_for("guess")
    ('gw1', None)
    """

    def __init__(self, gateways: Sequence[Gateway]):
        self._gateways = list(gateways)

    def gateway_for(self, token: str) -> Gateway | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        # Every gateway is compared, so the answer's timing does not tell which prefix matched.
        for gw in self._gateways:
            if hmac.compare_digest(digest, gw.token_sha256):
                found = gw
        return found


class PointSequencer:
    """Numbers a point's frames and publishes them under that point's lock, so sequence order and bus
    order agree even when a gateway pushes concurrently. A gateway's own numbers are kept; frames
    without one continue after the highest number seen, and a refused publish uses up no number. A frame
    captured before the point's last accepted one is refused (`FrameRejected`), so the worker sees time
    go forward only.

    >>> sent = []
    >>> s = PointSequencer(sent.append)
    >>> at = datetime.fromisoformat("2026-01-01T08:00:00+08:00")
    >>> [s.publish("P1", n, at, b"").seq for n in (None, 10, None)]
    [0, 10, 11]
    """

    def __init__(self, publish: Publish):
        self._publish = publish
        self._next: dict[str, int] = {}
        self._last_at: dict[str, datetime] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def publish(self, point_id: str, sent_seq: int | None, captured_at: datetime, jpeg: bytes) -> Frame:
        with self._guard:
            lock = self._locks.setdefault(point_id, threading.Lock())
        with lock:
            last_at = self._last_at.get(point_id)
            if last_at is not None and captured_at < last_at:
                raise FrameRejected(
                    "out_of_order",
                    f"capture time {captured_at.isoformat()} is before the point's last accepted frame "
                    f"({last_at.isoformat()})",
                )
            following = self._next.get(point_id, 0)
            frame = Frame(point_id, following if sent_seq is None else sent_seq, captured_at, jpeg)
            self._publish(frame)
            self._next[point_id] = max(following, frame.seq + 1)
            self._last_at[point_id] = captured_at
            return frame


def parse_capture_time(value: str) -> datetime:
    """ISO 8601 with an explicit offset; naive times are refused because the camera's zone is unknown.

    >>> parse_capture_time("2026-03-01T08:00:00+08:00").isoformat()
    '2026-03-01T08:00:00+08:00'
    """
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"X-Capture-Time is not ISO 8601: {value!r}") from e
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("X-Capture-Time needs a timezone offset (e.g. +08:00 or Z)")
    try:
        # 0001-01-01T00:00+00:01 is a valid ISO time that has no UTC equivalent; every later check needs one.
        at.astimezone(UTC)
    except OverflowError as e:
        raise ValueError(f"X-Capture-Time has no UTC equivalent: {value!r}") from e
    return at


# Declared as the operation's security scheme, so the schema tells gateway authors (and tools) how to sign in.
# auto_error off: a missing or non-bearer Authorization is answered by the guard, with WWW-Authenticate.
_BEARER = HTTPBearer(auto_error=False, description="The gateway's token (only its SHA-256 is configured).")


def _too_large(limit: int) -> FrameRejected:
    return FrameRejected("too_large", f"frame larger than {limit} bytes", status.HTTP_413_CONTENT_TOO_LARGE)


async def _read_limited(request: Request, limit: int) -> bytes:
    # Content-Length can be absent (chunked) or lie, so the body itself is counted as it arrives.
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


class Refusal(BaseModel):
    """Why a request was refused."""

    detail: str = Field(description="The reason, in words a gateway's operator can act on.")


class Unprocessable(BaseModel):
    """A frame or header refused as invalid: the reason in words, or the invalid parameters as FastAPI lists them
    (a missing X-Capture-Time, an X-Frame-Seq that is no number)."""

    detail: str | list[dict[str, Any]] = Field(description="The reason, or one entry per invalid parameter.")


_RETRY_AFTER = {"Retry-After": {"required": True, "schema": {"type": "integer"}, "description": "Seconds to wait."}}
_RESPONSES: dict[int | str, dict] = {
    202: {"description": "Queued for the point's pipeline worker."},
    401: {
        "model": Refusal,
        "description": "Missing or unknown bearer token.",
        "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}, "description": "Bearer"}},
    },
    403: {
        "model": Refusal,
        "description": "The token's gateway may not push for this point, or the point takes no pushed frames.",
    },
    404: {"model": Refusal, "description": "No point with this id is registered."},
    413: {
        "model": Refusal,
        "description": "The body is larger than `server.max_frame_bytes`, or its JPEG header declares more "
        "pixels than `server.max_frame_pixels`.",
    },
    415: {"model": Refusal, "description": "Content-Type is not image/jpeg."},
    422: {
        "model": Unprocessable,
        "description": "The body is not a decodable JPEG; X-Frame-Seq or X-Capture-Time is invalid; or the capture "
        "time is ahead of the server clock (beyond `server.max_clock_ahead_s`), before the point's announcement "
        "or before the point's last accepted frame. The detail names the reason.",
    },
    429: {
        "model": Refusal,
        "description": "The gateway pushes faster than its `gateways[].max_fps`; retry after the number of seconds "
        "in Retry-After.",
        "headers": _RETRY_AFTER,
    },
    503: {
        "model": Refusal,
        "description": "The point's queue is full; retry after the number of seconds in Retry-After.",
        "headers": _RETRY_AFTER,
    },
    507: {
        "model": Refusal,
        "description": "The evidence folder's disk has less free space than `evidence.min_free_mb`: no frame is "
        "taken until space is freed (nothing stored is touched).",
    },
}

_ROUTE_DOCS: dict[str, Any] = {
    "status_code": status.HTTP_202_ACCEPTED,
    "response_model": PushAccepted,
    "responses": _RESPONSES,
    "summary": "Push one camera frame",
    "description": "The body is one JPEG image (`Content-Type: image/jpeg`) captured at `X-Capture-Time` "
    "(ISO 8601 with offset). Authenticate with `Authorization: Bearer <gateway token>`; a gateway "
    "may push only for its own points. `X-Frame-Seq` is the gateway's per-point frame number; "
    "without it the server numbers the point's frames in arrival order. Capture times must not run "
    "backwards, lie ahead of the server clock or before the point's announcement.",
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "description": "One JPEG image, at most `server.max_frame_bytes` bytes and `server.max_frame_pixels` "
            "pixels.",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
}


@dataclass(frozen=True)
class Admitted:
    """A request the point guard let through: which point, pushed by which gateway."""

    point_id: str
    gateway_id: str


def _point_guard(auth: GatewayAuth, pushed: frozenset[str], registered: frozenset[str]):
    """The dependency that admits a request for a point: 401 without a known token, 404 for an id not in
    the registry, 403 for a point not this gateway's or not taking pushed frames."""
    known = pushed | registered

    # A dependency runs before the endpoint's headers are validated, so a caller without a valid token
    # learns nothing about the request format.
    async def allowed_point(
        point_id: str, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> Admitted:
        token = credentials.credentials.strip() if credentials is not None else None
        gateway = auth.gateway_for(token) if token else None
        if gateway is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or unknown bearer token",
                {"WWW-Authenticate": "Bearer"},
            )
        if point_id not in known:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no point {point_id!r} is registered")
        if point_id not in gateway.points:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"gateway {gateway.id!r} may not push for {point_id!r}")
        if point_id not in pushed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"point {point_id!r} takes no pushed frames")
        return Admitted(point_id, gateway.id)

    return allowed_point


class _Capacity:
    """The refusals that protect the server rather than judge the frame: the gateway's rate and the
    evidence disk's free space. They come first, before any byte of the body is read."""

    def __init__(self, rate_limits: GatewayRateLimits, free_space: FreeSpaceGuard | None):
        self.rate_limits = rate_limits
        self.free_space = free_space

    def check(self, gateway_id: str) -> None:
        wait_s = self.rate_limits.retry_after(gateway_id)
        if wait_s is not None:
            raise FrameRejected(
                "rate_limited",
                f"gateway {gateway_id!r} pushes faster than its max_fps; retry after {wait_s} s",
                status.HTTP_429_TOO_MANY_REQUESTS,
                {"Retry-After": str(wait_s)},
            )
        shortage = self.free_space.shortage() if self.free_space is not None else None
        if shortage is not None:
            raise FrameRejected(
                "disk_full", f"{shortage}: no frame is taken until space is freed", status.HTTP_507_INSUFFICIENT_STORAGE
            )


class _Intake:
    """Checks and queues one pushed frame, cheapest checks first; raises `FrameRejected` with the reason."""

    def __init__(
        self,
        capacity: _Capacity,
        sequencer: PointSequencer,
        max_frame_bytes: int,
        limits: FrameLimits,
        announced_on: Mapping[str, date | None],
        full_errors: tuple[type[Exception], ...],
        retry_after_s: int,
    ):
        self.capacity = capacity
        self.sequencer = sequencer
        self.max_frame_bytes = max_frame_bytes
        self.limits = limits
        self.announced_on = dict(announced_on)
        self.full_errors = full_errors
        self.retry_after_s = retry_after_s

    async def accept(
        self,
        request: Request,
        admitted: Admitted,
        x_capture_time: str,
        x_frame_seq: int | None,
        content_type: str | None,
    ) -> Frame:
        point_id = admitted.point_id
        self.capacity.check(admitted.gateway_id)
        media_type = (content_type or "").partition(";")[0].strip().lower()
        if media_type != "image/jpeg":
            raise FrameRejected(
                "content_type", "Content-Type must be image/jpeg", status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_frame_bytes:
            raise _too_large(self.max_frame_bytes)
        try:
            captured_at = parse_capture_time(x_capture_time)
        except ValueError as e:
            raise FrameRejected("bad_time", str(e)) from e
        check_capture_time(captured_at, self.limits, self.announced_on.get(point_id))
        jpeg = await _read_limited(request, self.max_frame_bytes)
        await run_in_threadpool(check_image, jpeg, self.limits)
        try:
            return await run_in_threadpool(self.sequencer.publish, point_id, x_frame_seq, captured_at, jpeg)
        except self.full_errors as e:
            raise FrameRejected(
                "busy",
                f"point {point_id!r} is busy: {e}",
                status.HTTP_503_SERVICE_UNAVAILABLE,
                {"Retry-After": str(self.retry_after_s)},
            ) from e


def make_push_router(
    *,
    gateways: Sequence[Gateway],
    point_ids: Collection[str],
    max_frame_bytes: int,
    publish: Publish,
    full_errors: tuple[type[Exception], ...] = (),
    retry_after_s: int = 1,
    registered: Collection[str] = (),
    announced_on: Mapping[str, date | None] | None = None,
    limits: FrameLimits | None = None,
    rejections: RejectionCounts | None = None,
    free_space: FreeSpaceGuard | None = None,
) -> APIRouter:
    """The push endpoint as a router to mount on the web app.

    `point_ids` are the points that take pushed frames, `registered` every other point of the registry
    (pushing for one answers 403, an id in neither 404); `publish` queues a frame (the frame bus) and
    raises one of `full_errors` when the point's queue is full, which becomes 503 + Retry-After.
    `announced_on` holds the points' announcement dates, `limits` the pixel and clock bounds, and
    `rejections` counts refused frames per point and reason. Each gateway's `max_fps` limits its pushes
    (429), and `free_space` refuses every frame while the evidence disk is below its floor (507).
    """
    if max_frame_bytes < 1:
        raise ValueError("max_frame_bytes must be positive")
    allowed_point = _point_guard(GatewayAuth(gateways), frozenset(point_ids), frozenset(registered))
    intake = _Intake(
        _Capacity(GatewayRateLimits(gateways), free_space),
        PointSequencer(publish),
        max_frame_bytes,
        limits or FrameLimits(),
        announced_on or {},
        full_errors,
        retry_after_s,
    )
    rejections = rejections if rejections is not None else RejectionCounts()
    router = APIRouter(tags=["ingest"])

    @router.post(PUSH_PATH, **_ROUTE_DOCS)
    async def push_frame(
        request: Request,
        # Not Annotated[...]: under postponed annotations FastAPI could not see this router's own dependency.
        admitted: Admitted = Depends(allowed_point),  # noqa: B008
        x_capture_time: str = Header(
            description="Capture time, ISO 8601 with timezone offset.",
            json_schema_extra={"format": "date-time", "examples": ["2026-03-01T08:00:00.250+08:00"]},
        ),
        x_frame_seq: int | None = Header(default=None, ge=0, description="Gateway's per-point frame number."),
        content_type: str | None = Header(default=None, include_in_schema=False),
    ) -> PushAccepted:
        try:
            frame = await intake.accept(request, admitted, x_capture_time, x_frame_seq, content_type)
        except FrameRejected as e:
            n = rejections.add(admitted.point_id, e.reason)
            # Logged the 1st, 2nd, 4th, 8th... time per point and reason: a gateway with a wrong clock
            # pushes several frames a second, and the counters (/readyz) keep the exact figures.
            if n & (n - 1) == 0:
                log.warning("point %s: frame refused (%s, %d so far): %s", admitted.point_id, e.reason, n, e)
            raise HTTPException(e.status_code, str(e), e.headers) from e
        return PushAccepted(point_id=frame.point_id, seq=frame.seq, captured_at=frame.captured_at)

    return router
