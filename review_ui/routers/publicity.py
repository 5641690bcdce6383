"""The 双公示 page (issue 27 item 6, `/publicity`, legal reviewers and supervisors): the decisions the export would
publish and the withdrawals it would list, with `publicity.csv` and `publicity.json` to download.

Both are made by the export itself (`cases.publicity_export.PublicityExporter` and `cases.publicity.write`, as
`feixian publicity export` runs them) into a folder dropped after the answer, so the page and the downloads hold
exactly what the command writes. The blurred images stay with the command: the bureau's platform takes them from
its folder.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cases.lifecycle import Role
from cases.models import User
from cases.publicity import ExportResult, write
from cases.publicity_export import PublicityExporter
from review_ui.dependencies import render, require_role, review_services

# Those who decide and publish penalties; reviewers confirm evidence, ops and admin keep cameras and accounts.
PUBLICITY_ROLES = frozenset({Role.LEGAL.value, Role.SUPERVISOR.value})
PublicityUser = Annotated[User, Depends(require_role(PUBLICITY_ROLES, "the publicity export"))]
DOWNLOADS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}

router = APIRouter()


def export(request: Request, user: User) -> tuple[ExportResult, dict[str, bytes]]:
    """The export as the command makes it now, and its `publicity.csv` and `publicity.json` by extension; each
    evidence file it reads is logged as read by `user`, who asked for it (legal requirement 5)."""
    services = review_services(request)

    def log_access(_exporter: str, key: str, case_id: int) -> None:
        services.cases.log_access(user.username, key, case_id)

    exporter = PublicityExporter(
        services.cases.sessions, services.store, services.publicity, services.sla.calendar.tz, log_access
    )
    with TemporaryDirectory(prefix="feixian-publicity-") as folder:
        out = Path(folder)
        result = exporter.export(out)
        write(out, result)
        return result, {ext: (out / f"publicity.{ext}").read_bytes() for ext in DOWNLOADS}


@router.get("/publicity", include_in_schema=False)
def publicity_page(request: Request, user: PublicityUser) -> HTMLResponse:
    result, _ = export(request, user)
    return render(request, "publicity.html", user, published=result.published, withdrawn=result.withdrawn)


@router.get("/publicity/export.csv", include_in_schema=False)
def export_csv(request: Request, user: PublicityUser) -> Response:
    return _download(request, user, "csv")


@router.get("/publicity/export.json", include_in_schema=False)
def export_json(request: Request, user: PublicityUser) -> Response:
    return _download(request, user, "json")


def _download(request: Request, user: User, ext: str) -> Response:
    _, files = export(request, user)
    disposition = f'attachment; filename="publicity.{ext}"'
    return Response(files[ext], media_type=DOWNLOADS[ext], headers={"Content-Disposition": disposition})
