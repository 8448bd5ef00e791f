"""``POST /v1/feedback``: a thumbs up or down, and optionally a corrected answer, on an answer.

The answer is named by its ``answer_id`` (the request id ``/v1/ask`` returns, which its audit
line carries) and must be one of the server's recent answers (:mod:`assistant.api.recent`); only
the key that asked may rate it. The rating is kept with the question, the sources and the adapter
version (:mod:`assistant.feedback`), and gets an audit line of its own, without the texts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from assistant.api.auth import Caller
from assistant.api.schemas import ERROR_RESPONSES, FeedbackOut, FeedbackRequest
from assistant.api.services import ServicesDep
from assistant.feedback import Feedback

router = APIRouter(tags=["asking"], responses=ERROR_RESPONSES)


@router.post("/v1/feedback", status_code=201, response_model=FeedbackOut)
async def give_feedback(body: FeedbackRequest, caller: Caller, services: ServicesDep) -> Any:
    """Rate a recent answer (404: not one of the server's recent answers; 403: another key's)."""
    given = services.answering.recent.find(body.answer_id)
    if given is None:
        raise HTTPException(
            404,
            f"no recent answer {body.answer_id!r}: feedback names the answer_id of one of the "
            f"last {services.settings.api.feedback_answers} answers (api.feedback_answers) "
            "since the server started",
        )
    if given.key_id != caller.key_id:
        raise HTTPException(403, f"answer {body.answer_id!r} was given to another key")
    feedback = Feedback.of_answer(
        given.answer,
        answer_id=body.answer_id,
        key_id=caller.key_id,
        rating=body.rating,
        correction=body.correction,
        collection=given.collection,
        adapter=given.adapter,
    )
    await run_in_threadpool(services.runtime.feedback.append, feedback)
    services.audit.change(
        key_id=caller.key_id,
        action="feedback",
        target={
            "request_id": body.answer_id,
            "feedback_id": feedback.feedback_id,
            "collection": feedback.collection,
            "adapter": feedback.adapter,
            "rating": feedback.rating,
            "corrected": feedback.correction is not None,
        },
    )
    return {
        "feedback_id": feedback.feedback_id,
        "answer_id": feedback.answer_id,
        "rating": feedback.rating,
        "corrected": feedback.correction is not None,
        "collection": feedback.collection,
        "adapter": feedback.adapter,
    }
