"""POST /v1/bills: upload bills; small uploads answer with their claims, larger ones (or ?async=true) with a job."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from api.deps import Clerk, Svc
from api.problems import ApiProblem, problem_responses
from api.schemas import JobOut, UploadResult

router = APIRouter(tags=["bills"], responses=problem_responses(401, 403, 413, 415, 422, 429, 503))


async def _read_all(files: list[UploadFile], limit: int) -> list[bytes]:
    out = []
    for f in files:
        data = await f.read(limit + 1)
        out.append(data)
    return out


@router.post("/bills", response_model=UploadResult, status_code=200,
             responses={202: {"model": JobOut, "description": "a job runs the upload in the background"}})
async def upload_bills(*, request: Request, files: Annotated[list[UploadFile], File(description="bill images or PDFs")],
                       run_async: Annotated[bool, Query(alias="async")] = False,
                       who: Clerk, svc: Svc):
    if not files or len(files) > svc.settings.api_max_files:
        raise ApiProblem(413 if files else 422, "limit:api_max_files" if files else "no-files",
                         f"send 1 to {svc.settings.api_max_files} files (MEDKG_API_MAX_FILES)")
    blobs = await _read_all(files, svc.settings.max_file_bytes)
    for data in blobs:
        svc.bills.check_size(data)
    big = len(blobs) > svc.settings.api_sync_max_files or sum(map(len, blobs)) > svc.settings.api_sync_max_bytes
    if run_async or big:
        paths = await asyncio.to_thread(svc.bills.stage, blobs)
        job_id = svc.jobs.submit(paths, who.name)
        return JSONResponse(JobOut(**svc.jobs.get(job_id)).model_dump(mode="json"), status_code=202,
                            headers={"Location": f"/v1/jobs/{job_id}"})
    ids = await asyncio.to_thread(svc.bills.structure, blobs, f"upload:{who.name}")
    return {"claims": [svc.claims.get(i) for i in ids]}
