"""Containers and their files: the request and object models of the real API (openai-python's
types/container_*.py and types/containers/)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import MAX_COUNT, ListParams, Request

MemoryLimit = Literal["1g", "4g", "16g", "64g"]
MEMORY_MB: dict[MemoryLimit, int] = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}
DEFAULT_MEMORY_LIMIT: MemoryLimit = "1g"  # "Defaults to 1g", as documented
DEFAULT_EXPIRY_MINUTES = 20  # a container expires after 20 idle minutes, as documented
MOUNT = "/mnt/data"  # where a container's files are, as its code sees them
ContainerStatus = Literal["running", "expired"]
FileSource = Literal["user", "assistant"]


class ExpiresAfter(Request):
    anchor: Literal["last_active_at"]
    minutes: Annotated[int, Field(ge=1, le=MAX_COUNT)]


class NetworkPolicyDisabled(Request):
    type: Literal["disabled"]


class DomainSecret(Request):
    domain: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    value: Annotated[str, Field(min_length=1)]


class NetworkPolicyAllowlist(Request):
    type: Literal["allowlist"]
    allowed_domains: Annotated[list[str], Field(min_length=1)]
    domain_secrets: Annotated[list[DomainSecret], Field(min_length=1)] | None = None


NetworkPolicy = Annotated[NetworkPolicyDisabled | NetworkPolicyAllowlist, Field(discriminator="type")]


class ContainerCreate(Request):
    name: str
    expires_after: ExpiresAfter | None = None
    file_ids: list[str] = []
    memory_limit: MemoryLimit | None = None
    network_policy: NetworkPolicy | None = None
    # Skill references and inline skills; there is no skills API offline, so any is refused (engine/containers.py).
    skills: list[dict[str, Any]] | None = None


class ContainerListParams(ListParams):
    name: str | None = None


class ContainerFileCreate(Request):
    """The JSON form of adding a file: one already uploaded through /v1/files (the other form is a multipart
    upload of `file`)."""

    file_id: str


class ExpiresAfterObject(BaseModel):
    anchor: Literal["last_active_at"] = "last_active_at"
    minutes: int


class NetworkPolicyObject(BaseModel):
    type: Literal["allowlist", "disabled"]
    allowed_domains: list[str] | None = None


class Container(BaseModel):
    id: str
    object: Literal["container"] = "container"
    created_at: int
    name: str
    status: ContainerStatus
    expires_after: ExpiresAfterObject
    last_active_at: int
    memory_limit: MemoryLimit
    network_policy: NetworkPolicyObject = NetworkPolicyObject(type="disabled")  # the sandbox has no network


class ContainerFile(BaseModel):
    id: str
    object: Literal["container.file"] = "container.file"
    bytes: int
    container_id: str
    created_at: int
    path: str
    source: FileSource
