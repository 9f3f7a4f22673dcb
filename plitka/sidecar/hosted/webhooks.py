"""Where Replicate reports on the predictions the sidecar created (signed, Standard Webhooks).

A delivery is trusted only if its signature verifies against REPLICATE_WEBHOOK_SECRET and its
timestamp is recent; then it is applied only to the slot still following that very prediction.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status

from plitka.sidecar.hosted.replicate_service import ReplicateService
from plitka.sidecar.services import ServicesDep

router = APIRouter(tags=["webhooks"], include_in_schema=False)


@router.post("/webhooks/replicate/{job_id}")
async def replicate_update(job_id: int, request: Request, services: ServicesDep) -> dict:
    slots = getattr(services.backend, "slots", [])
    if not slots or not isinstance(slots[0].service, ReplicateService):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="this sidecar does not use Replicate")
    body = await request.body()
    try:
        slots[0].service.verify(dict(request.headers), body)
        prediction = await request.json()
    except ValueError as error:
        # WebhookValidationError is a ValueError; so are a bad base64 signature and bad JSON.
        # The reason is not echoed: it could describe the secret.
        problem = {
            "field": "webhook-signature",
            "message": "the delivery is not signed with REPLICATE_WEBHOOK_SECRET, or is too old.",
            "fix": "only Replicate posts here; check that the secret is the account's current one.",
        }
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail={"error": "forbidden", "problems": [problem]}
        ) from error
    ours = [slot for slot in slots if slot.run is not None and slot.run.job_id == job_id]
    applied = [await slot.apply(prediction) for slot in ours]
    return {"applied": any(applied)}
