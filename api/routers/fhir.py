"""FHIR R4 in (role ``integration``): ``POST /fhir/r4/Bundle`` (batch or transaction) and ``POST /fhir/r4/{type}``
for the resource types the feed maps. The payload is handed as received to ``feeds.fhir.accept`` (through
``api.fhir_service``): 201 only after the durable append; an OperationOutcome (``application/fhir+json``) for
every answer of FHIR processing (400 not JSON, 413 too large, 415 not JSON content, 422 invalid R4, 503 the feed
buffer unreachable, with Retry-After). Authentication and role errors are problem details like the rest of
the API."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from api.deps import Integration, Svc
from api.fhir_service import RETRY_AFTER_S
from api.problems import MEDIA_TYPE as PROBLEM
from feeds.fhir import MAX_BYTES, RESOURCE_TYPES

FHIR_JSON = "application/fhir+json"
ACCEPTED_CONTENT = ("application/fhir+json", "application/json")


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


OUTCOME_SCHEMA = {
    "type": "object", "required": ["resourceType", "issue"],
    "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                   "id": {"type": "string", "description": "the stream entry id (201 only)"},
                   "issue": {"type": "array", "items": {
                       "type": "object", "required": ["severity", "code"],
                       "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                                      "diagnostics": {"type": "string"}}}}}}
_PROBLEM_SCHEMA = {"schema": {"$ref": "#/components/schemas/Problem"}}
_OUTCOME = {FHIR_JSON: {"schema": OUTCOME_SCHEMA}}
_BODY_SCHEMA = {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}}}
BODY = {"requestBody": {"required": True, "description": "a FHIR R4 resource (JSON)",
                        "content": {t: {"schema": _BODY_SCHEMA} for t in ACCEPTED_CONTENT}}}
RESPONSES = {
    201: {"description": "stored durably in the feed stream", "content": _OUTCOME},
    400: {"description": "not JSON", "content": _OUTCOME},
    401: {"description": "Authentication required", "content": {PROBLEM: _PROBLEM_SCHEMA}},
    403: {"description": "Forbidden", "content": {PROBLEM: _PROBLEM_SCHEMA}},
    413: {"description": "too large, or too many Bundle entries", "content": _OUTCOME},
    415: {"description": "not JSON content", "content": _OUTCOME},
    422: {"description": "not valid FHIR R4, or a type not accepted",
          "content": {**_OUTCOME, PROBLEM: _PROBLEM_SCHEMA}},
    429: {"description": "Too many requests", "content": {PROBLEM: _PROBLEM_SCHEMA}},
    503: {"description": "the feed buffer is unreachable; nothing stored, retry", "content": _OUTCOME},
}

TYPE_DOC = "the resource type: " + ", ".join(RESOURCE_TYPES) + " (any other: 422 OperationOutcome)"
router = APIRouter(prefix="/fhir/r4", tags=["fhir"], default_response_class=FhirResponse)


def _outcome(status: int, code: str, text: str) -> FhirResponse:
    return FhirResponse({"resourceType": "OperationOutcome",
                         "issue": [{"severity": "error", "code": code, "diagnostics": text}]}, status_code=status)


async def _submit(request: Request, resource_type: str, svc) -> FhirResponse:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in ACCEPTED_CONTENT:
        return _outcome(415, "not-supported", f"send {' or '.join(ACCEPTED_CONTENT)}, not {media}")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        return _outcome(413, "too-costly", f"payload of {int(length)} bytes exceeds the limit of {MAX_BYTES}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            return _outcome(413, "too-costly", f"payload exceeds the limit of {MAX_BYTES} bytes")
    peer = request.client.host if request.client else ""
    status, outcome = await asyncio.to_thread(svc.fhir.accept, bytes(body), resource_type, peer)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return FhirResponse(outcome, status_code=status, headers=headers)


@router.post("/Bundle", status_code=201, responses=RESPONSES, openapi_extra=BODY,
             summary="Submit a FHIR R4 Bundle (batch or transaction)")
async def post_bundle(request: Request, _: Integration, svc: Svc):
    return await _submit(request, "Bundle", svc)


@router.post("/{type}", status_code=201, responses=RESPONSES, openapi_extra=BODY,
             summary="Submit one FHIR R4 resource")
async def post_resource(type: Annotated[str, Path(min_length=1, max_length=64, description=TYPE_DOC)],
                        request: Request, _: Integration, svc: Svc):
    # any other type is refused by feeds.fhir.accept with an OperationOutcome (422), like a mismatched body
    return await _submit(request, type, svc)
