"""Recordings: the index, one .cast file, delete. Ids never reach outside the folder, and
only plain files are served (recording/index.py: no links, symbolic or hard).

Every index call runs in a worker thread: none of them touches the disk on the event loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from vibetunnel.api.models import errors
from vibetunnel.errors import Conflict
from vibetunnel.recording.recorder import Recordings

router = APIRouter(prefix="/api/recordings", tags=["recordings"])

CAST_TYPE = "application/x-asciicast"
CHUNK = 64 * 1024


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
    response_class=StreamingResponse,
    responses={200: {"content": {CAST_TYPE: {}}}, **errors(404)},
)
async def get_recording(request: Request, recording_id: str) -> StreamingResponse:
    """The asciicast v2 file."""
    # Opened once, without following links (index.open): serving by path would open the
    # name again, after the check.
    f = await asyncio.to_thread(recordings(request).index.open, recording_id)
    size = os.fstat(f.fileno()).st_size
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{recording_id}.cast"',
    }
    return StreamingResponse(_chunks(f, size), media_type=CAST_TYPE, headers=headers)


async def _chunks(f: BinaryIO, size: int) -> AsyncIterator[bytes]:
    """The first `size` bytes of `f` (a recording still written grows meanwhile: the
    length was sent), read off the event loop; closes `f`."""
    try:
        while size > 0:
            chunk = await asyncio.to_thread(f.read, min(CHUNK, size))
            if not chunk:
                break
            size -= len(chunk)
            yield chunk
    finally:
        f.close()


@router.delete("/{recording_id}", status_code=204, responses=errors(404, 409))
async def delete_recording(request: Request, recording_id: str) -> Response:
    rec = recordings(request)
    if recording_id in rec.active:
        raise Conflict(f"recording {recording_id} is still being written; end the session first")
    await asyncio.to_thread(rec.index.delete, recording_id)
    return Response(status_code=204)
