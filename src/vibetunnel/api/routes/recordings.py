"""Recordings: the index, one .cast file, delete. Ids never reach outside the folder.

Every index call runs in a worker thread: none of them touches the disk on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from vibetunnel.api.models import errors
from vibetunnel.errors import Conflict
from vibetunnel.recording.recorder import Recordings

router = APIRouter(prefix="/api/recordings", tags=["recordings"])

CAST_TYPE = "application/x-asciicast"


class RecordingOut(BaseModel):
    id: str
    name: str
    command: str
    """The command line, shell-quoted."""
    argv: list[str] | None
    """The program and its arguments; null when only the line is known."""
    cwd: str | None
    size: str
    startedAt: str
    endedAt: str | None
    duration: float | None
    exitCode: int | None
    bytes: int


def recordings(request: Request) -> Recordings:
    r: Recordings = request.app.state.recordings
    return r


@router.get("", response_model=list[RecordingOut])
async def list_recordings(request: Request) -> list[dict[str, Any]]:
    """The index, newest first."""
    # Off the loop: list() stats the files still being written.
    return await asyncio.to_thread(recordings(request).index.list)


@router.get(
    "/{recording_id}",
    response_class=FileResponse,
    responses={200: {"content": {CAST_TYPE: {}}}, **errors(404)},
)
async def get_recording(request: Request, recording_id: str) -> FileResponse:
    """The asciicast v2 file."""
    path = await asyncio.to_thread(recordings(request).index.path_for, recording_id)
    return FileResponse(path, media_type=CAST_TYPE, filename=f"{recording_id}.cast")


@router.delete("/{recording_id}", status_code=204, responses=errors(404, 409))
async def delete_recording(request: Request, recording_id: str) -> Response:
    rec = recordings(request)
    if recording_id in rec.active:
        raise Conflict(f"recording {recording_id} is still being written; end the session first")
    await asyncio.to_thread(rec.index.delete, recording_id)
    return Response(status_code=204)
