"""What the routes share in one running app: the runtime, the queue, the jobs, the audit log.

:func:`start_services` is called by the app's lifespan: it loads the models and opens the store
(so ``/readyz`` is true once the server listens), recovers the job records of earlier runs, and
starts the workers; :meth:`Services.stop` stops them. Routes get the services with the
:data:`ServicesDep` dependency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assistant.api.answering import Answering
from assistant.api.audit import AuditLog, audit_path
from assistant.api.generating import ModelServing
from assistant.api.jobs import JobManager
from assistant.api.metrics import Metrics
from assistant.api.queue import GenerationQueue
from assistant.api.tasks import clear_uploads
from assistant.core.settings import Settings
from assistant.runtime import Runtime

API_DIR = "api"


@dataclass
class Services:
    """The running parts of one app."""

    settings: Settings
    runtime: Runtime
    metrics: Metrics
    queue: GenerationQueue
    jobs: JobManager
    audit: AuditLog
    answering: Answering
    serving: ModelServing
    started_at: float
    owns_runtime: bool

    def stop(self) -> None:
        """Stop the workers (running jobs are asked to stop) and close what this app opened."""
        self.jobs.shutdown()
        self.queue.shutdown()
        if self.owns_runtime:
            self.runtime.close()


def start_services(settings: Settings, metrics: Metrics, runtime: Runtime | None) -> Services:
    """Load the models, open the store, recover the jobs; ``runtime`` is used when given."""
    owns = runtime is None
    runtime = runtime or Runtime(settings)
    try:
        runtime.engine  # noqa: B018 - loads the embedder, the generator and the store now
        runtime.registry  # noqa: B018
        queue = GenerationQueue(settings.api.queue_size, metrics)
        audit = AuditLog(audit_path(settings), question_text=settings.api.log_question_text)
        jobs = JobManager(settings.data_dir / API_DIR, metrics)
        jobs.recover()
        clear_uploads(runtime)
        answering = Answering(runtime, queue, metrics, audit)
    except BaseException:
        if owns:
            runtime.close()
        raise
    return Services(
        settings=settings,
        runtime=runtime,
        metrics=metrics,
        queue=queue,
        jobs=jobs,
        audit=audit,
        answering=answering,
        serving=ModelServing(runtime, answering, metrics, audit),
        started_at=time.time(),
        owns_runtime=owns,
    )


def services(request: Request) -> Services:
    """The running app's services."""
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]
