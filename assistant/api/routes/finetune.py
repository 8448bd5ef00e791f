"""``POST /v1/finetune``: train an adapter in the background, on a collection or a dataset.

A multipart form: ``name``, and exactly one of ``collection`` (a RAFT dataset is made from its
documents; ``admin`` on it), ``feedback`` (a collection: rows are made from the feedback on its
answers, :mod:`assistant.feedback_dataset`; ``admin`` on it) or ``file`` (a JSONL dataset;
``admin`` on ``"*"``), with an optional
shipped ``recipe`` and ``max_steps``, and for the promotion gate (:mod:`assistant.gating`) an
optional ``eval_set`` question file (it becomes the collection's evaluation set) and ``gate``
(default: gate where the collection has an evaluation set). Everything is checked before the job
is queued: the name, the recipe, the collection, every record of the dataset, every row of the
evaluation set, a gate asked for with nothing to gate on. The job trains the next version of
``name`` (version 1 for a new name), reports its losses and, gated, promotes it or says which
figure failed; ``GET /v1/jobs/{id}`` follows it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool

from assistant.api.auth import Caller
from assistant.api.schemas import ERROR_RESPONSES, JobAccepted
from assistant.api.services import ServicesDep
from assistant.api.tasks import train
from assistant.api.uploads import safe_name, save_uploads
from assistant.batch.formats import SUFFIXES, BatchInputError
from assistant.core.errors import AdapterError, CollectionNotFoundError
from assistant.core.registry import parse_ref
from assistant.evalset import read_eval_set
from assistant.training import (
    DEFAULT_RECIPE,
    FinetunePlan,
    check_gate,
    load_train_config,
    makes_eval_set,
)

router = APIRouter(tags=["adapters"], responses=ERROR_RESPONSES)

_RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


@router.post("/v1/finetune", status_code=202, response_model=JobAccepted)
async def start_finetune(
    name: Annotated[str, Form(description="Adapter name; the job adds its next version.")],
    caller: Caller,
    services: ServicesDep,
    collection: Annotated[
        str | None, Form(description="Make the training data from this collection.")
    ] = None,
    recipe: Annotated[str, Form(description="A shipped recipe: lora-cpu, qlora.")] = DEFAULT_RECIPE,
    max_steps: Annotated[int | None, Form(ge=1, description="Optimiser steps.")] = None,
    feedback: Annotated[
        str | None, Form(description="Make the training data from this collection's feedback.")
    ] = None,
    file: Annotated[UploadFile | None, File(description="A JSONL training dataset.")] = None,
    eval_set: Annotated[
        UploadFile | None,
        File(
            description="A question file (csv/jsonl/xlsx with expected answers, sources or "
            "unanswerable flags): the collection's evaluation set from now on."
        ),
    ] = None,
    gate: Annotated[
        bool | None,
        Form(description="Gate the new version (default: where there is an evaluation set)."),
    ] = None,
) -> Any:
    """Start a fine-tuning job: its id."""
    from finetune.config import recipe_path
    from finetune.data import load_examples

    if sum(source is not None for source in (collection, feedback, file)) != 1:
        raise HTTPException(
            422, "give exactly one of 'collection', 'feedback' or 'file' to train on"
        )
    caller.require(collection or feedback, "admin")
    adapter, version = parse_ref(name)
    if version is not None:
        raise AdapterError(f"name {name!r}: give the adapter name alone, the job picks the version")
    store = services.runtime.store
    for named in (collection, feedback):
        if named is not None and not store.has_collection(named):
            raise CollectionNotFoundError(named, caller.readable(store.list_collections()))
    if not _RECIPE_NAME.fullmatch(recipe):
        raise HTTPException(422, f"recipe {recipe!r}: name a shipped recipe (lora-cpu, qlora)")
    plan = FinetunePlan(
        name=adapter,
        from_collection=collection,
        from_feedback=feedback,
        recipe=str(recipe_path(recipe)),
        overrides={"max_steps": str(max_steps)} if max_steps else {},
        gate=gate,
    )
    load_train_config(plan.recipe, plan.overrides)
    jobs = services.jobs
    with jobs.staging() as folder:
        dataset = questions = None
        if file is not None:
            [dataset] = await save_uploads([file], folder, (".jsonl",))
            await run_in_threadpool(load_examples, folder / dataset)
        if eval_set is not None:
            questions = await _eval_set(eval_set, folder, dataset)
        check_gate(
            services.runtime,
            replace(plan, eval_set=folder / questions if questions else None),
            makes_eval_set=makes_eval_set(services.runtime, plan),
        )
        job = jobs.submit(
            "finetune",
            collection or feedback,
            caller.key_id,
            train(services.runtime, plan, dataset, questions),
            folder,
        )
    services.audit.change(
        key_id=caller.key_id,
        action="finetune.start",
        target={"adapter": adapter, "collection": collection or feedback, "job_id": job.id},
    )
    return {"job_id": job.id}


async def _eval_set(upload: UploadFile, folder: Path, dataset: str | None) -> str:
    """Save the uploaded evaluation set into the job's ``folder`` (renamed to one no upload has)
    and check every row; its file name there."""
    if dataset is not None and safe_name(upload.filename) == dataset:
        raise HTTPException(400, f"{dataset!r} is uploaded as both the dataset and the eval set")
    [uploaded] = await save_uploads([upload], folder, SUFFIXES)
    name = f".eval-set{Path(uploaded).suffix.lower()}"  # no upload is named so (a dot first)
    os.replace(folder / uploaded, folder / name)
    try:
        await run_in_threadpool(read_eval_set, folder / name)
    except BatchInputError as error:  # name the user's file, not the staging path
        staged = repr(str(folder / name))
        raise BatchInputError(str(error).replace(staged, repr(uploaded))) from None
    return name
