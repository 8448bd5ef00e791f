"""Adapters: list every version, show one name's versions, promote a version, roll back.
A version's last promotion-gate report (:mod:`assistant.gating`) is shown with it.

Any valid key may list and show (a version tainted by an erasure says so, and by which); promoting
and rolling back change what every collection's ``NAME`` means, so they need ``admin`` on
``"*"``. A tainted version is not promoted, nor rolled back to (409, naming the erased document).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException

from assistant.api.auth import Caller
from assistant.api.schemas import ERROR_RESPONSES, AdapterDetail, AdapterOut, PromoteRequest
from assistant.api.services import Services, ServicesDep
from assistant.core.errors import AdapterError
from assistant.core.registry import AdapterRecord

router = APIRouter(tags=["adapters"], responses=ERROR_RESPONSES)


@router.get("/v1/adapters", response_model=list[AdapterOut])
def list_adapters(caller: Caller, services: ServicesDep) -> Any:
    """Every registered adapter version."""
    return [adapter_out(record) for record in services.runtime.registry.list()]


@router.get("/v1/adapters/{name}", response_model=AdapterDetail)
def show_adapter(name: str, caller: Caller, services: ServicesDep) -> Any:
    """One adapter's versions, and the version its name means now."""
    active = _record(services, name)
    versions = [r for r in services.runtime.registry.list() if r.name == active.name]
    return {
        "name": active.name,
        "versions": [adapter_out(record) for record in versions],
        "active_version": active.version,
    }


@router.post("/v1/adapters/{name}/promote", response_model=AdapterOut)
def promote_adapter(name: str, body: PromoteRequest, caller: Caller, services: ServicesDep) -> Any:
    """Make a version the one ``NAME`` means (the one promoted before is archived)."""
    caller.require(None, "admin")
    record = _record(services, f"{name}@{body.version}")
    promoted = services.runtime.registry.promote(record.ref)
    services.audit.change(
        key_id=caller.key_id, action="adapters.promote", target={"adapter": promoted.ref}
    )
    return adapter_out(promoted)


@router.post("/v1/adapters/{name}/rollback", response_model=AdapterOut)
def rollback_adapter(name: str, caller: Caller, services: ServicesDep) -> Any:
    """Promote again the version promoted before the current one (409 if there is none)."""
    caller.require(None, "admin")
    _record(services, name)
    try:
        promoted = services.runtime.registry.rollback(name)
    except AdapterError as error:  # no earlier version, or it is tainted
        raise HTTPException(409, str(error)) from None
    services.audit.change(
        key_id=caller.key_id, action="adapters.rollback", target={"adapter": promoted.ref}
    )
    return adapter_out(promoted)


def adapter_out(record: AdapterRecord) -> dict[str, Any]:
    """An adapter version as the API shows it."""
    return {
        "name": record.name,
        "version": record.version,
        "ref": record.ref,
        "status": record.status,
        "method": record.method,
        "base_model": record.base_model,
        "created_at": record.created,
        "metrics": record.metrics,
        "lora_gguf_sha256": record.lora_gguf_sha256,
        "source_doc_ids": list(record.source_doc_ids),
        "tainted": record.tainted,
        "tainted_by": [asdict(taint) for taint in record.tainted_by],
        "gate": record.gate,
    }


def _record(services: Services, ref: str) -> AdapterRecord:
    try:
        return services.runtime.registry.get(ref)
    except AdapterError as error:
        raise HTTPException(404, str(error)) from None
