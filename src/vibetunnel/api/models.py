"""Request and response bodies of the HTTP API (they also make /api/openapi.json)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from vibetunnel.protocol.messages import typeable
from vibetunnel.protocol.sessions import env_problem

Size = Annotated[StrictInt, Field(ge=1, le=1000)]


class Body(BaseModel):
    # Unknown fields are an error, not silently ignored: a typo must not be a no-op.
    model_config = ConfigDict(extra="forbid")


class CreateSession(Body):
    """The body of POST /api/sessions (docs/protocol.md): every field optional."""

    id: (
        Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")]
        | None
    ) = None
    name: Annotated[StrictStr, Field(max_length=256)] | None = None
    cols: Size = 80
    rows: Size = 24
    cwd: StrictStr | None = None
    env: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    command: StrictStr | None = None
    args: list[StrictStr] = Field(default_factory=list)
    node: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    """The cluster node to run it on (docs/cluster.md); default: the node asked."""

    @field_validator("env")
    @classmethod
    def _passable(cls, env: dict[str, str]) -> dict[str, str]:
        # Before the keeper sees it: exec cannot pass such a variable (contract.md).
        for name, value in env.items():
            if (problem := env_problem(name, value)) is not None:
                raise ValueError(problem)
        return env


class InputBody(Body):
    data: StrictStr

    @field_validator("data")
    @classmethod
    def _typeable(cls, value: str) -> str:
        if not typeable(value):
            raise ValueError("not valid Unicode (lone surrogate)")
        return value


class ResizeBody(Body):
    cols: Size
    rows: Size


class RenameBody(Body):
    name: StrictStr = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    id: str
    name: str
    command: str
    args: list[str]
    cwd: str
    cols: int
    rows: int
    status: Literal["running", "exited"]
    exitCode: int | None
    pid: int
    createdAt: str
    exitedAt: str | None
    clients: int
    lost: str | None = None
    """Why the program can no longer be reached or its exit code known (its keeper died)."""
    title: str | None = None
    """The title the program last set (OSC 0 or 2), e.g. a shell's "user@host: ~/src"."""
    activityAt: str | None = None
    """When the program last wrote output (this server's view)."""
    recording: bool = False
    """The session is being recorded (false with --no-record, or when it cannot be)."""
    recordingError: str | None = None
    """Why it is not recorded though recording is on: the recordings folder cannot be
    written, or its file could not be."""
    node: str | None = None
    """The cluster node that runs it (this server's name when it is not in a cluster)."""


class NodeOut(BaseModel):
    name: str
    online: bool
    """Heart-beating (docs/cluster.md): false within 30 s of the node's death."""
    sessions: int
    lastSeen: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    uptime: float
    sessions: int
    node: str
    cluster: Literal["ok", "degraded"] | None = None
    """With --redis: "degraded" while Redis cannot be reached (this node's own sessions
    still work); None for a server that is not in a cluster."""


class ErrorDetail(BaseModel):
    code: str
    message: str
    requestId: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entry for the error statuses a route really returns."""
    return {status: {"model": ErrorBody} for status in statuses}
