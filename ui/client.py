"""The UI's HTTP client of the lorag API: one typed method per route the UI uses.

Every failure comes out as one :class:`ApiError` whose :attr:`~ApiError.message` is a sentence
for the page (the API's own ``detail``, what the status means, and what to do about it): a
refused key, a missing right, an unknown name, a conflict, a file too large or of the wrong
type, an invalid field, a busy server, or an API that cannot be reached. Answers stream as
:class:`StreamToken` then :class:`StreamDone`, parsed from the API's server-sent events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, cast
from urllib.parse import unquote

import httpx

from ui.schemas import Adapter, Answer, Collection, Document, Erasure, Feedback, Job, Passage

UploadFile = tuple[str, bytes]
"""A file to upload: its name and its bytes."""

_MEANING: dict[int, str] = {
    400: "The request was refused",
    401: "The API refused the key",
    403: "This API key may not do that",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported file type",
    422: "Invalid request",
    429: "Too many requests",
    503: "The assistant is busy or not ready",
}
_HINTS: dict[int, str] = {
    401: "Set LORAG_UI__API_KEY, or enter a key under Connection in the sidebar.",
    403: "Ask an administrator for a key with that right.",
}
_FILENAME = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.IGNORECASE)


class ApiError(Exception):
    """A request to the API that did not succeed; ``status`` is ``None`` when no HTTP status
    came back (the API unreachable, or a failure in the middle of a stream)."""

    def __init__(self, status: int | None, detail: str, retry_after: float | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One readable paragraph: what went wrong, the API's words, and what to do."""
        if self.status is None:
            return self.detail
        meaning = _MEANING.get(self.status)
        if meaning is None:
            meaning = "The API failed" if self.status >= 500 else "The request was refused"
        text = f"{meaning} ({self.status}): {self.detail.rstrip('.')}."
        if self.status in _HINTS:
            text += f" {_HINTS[self.status]}"
        if self.retry_after is not None:
            text += f" Try again in {self.retry_after:g} s."
        return text


@dataclass(frozen=True)
class StreamToken:
    """A piece of the model's draft answer."""

    text: str


@dataclass(frozen=True)
class StreamDone:
    """The finished answer: it replaces the draft (an abstention withdraws it)."""

    answer: Answer


@dataclass(frozen=True)
class Download:
    """A file the API sent back."""

    filename: str
    content: bytes
    media_type: str


class LoragClient:
    """A client of the lorag API at ``base_url``, sending ``api_key`` as a bearer token."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 300.0):
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
        )
        self._passages: dict[tuple[str, str], Passage] = {}

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    # ------------------------------------------------------------------------------ asking

    def ask_stream(
        self,
        question: str,
        collection: str,
        adapter: str | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> Iterator[StreamToken | StreamDone]:
        """The answer to ``question`` from ``collection`` as it is written: tokens of the draft,
        then the finished answer (``adapter``: a ref, ``"base"``, or ``None`` for the
        collection's bound adapter; ``history``: the conversation's earlier (question, answer)
        pairs, oldest first)."""
        body: dict[str, Any] = {"question": question, "collection": collection, "stream": True}
        if history:
            body["history"] = [{"question": q, "answer": a} for q, a in history]
        if adapter is not None:
            body["adapter"] = adapter
        try:
            with self._http.stream("POST", "/v1/ask", json=body) as response:
                if response.is_error:
                    response.read()
                    raise _error_of(response)
                for event, data in parse_events(response.iter_lines()):
                    if event == "token":
                        yield StreamToken(str(data["text"]))
                    elif event == "done":
                        yield StreamDone(cast(Answer, data))
                        return
                    elif event == "error":
                        raise ApiError(None, f"The answer failed: {data['detail']}")
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        raise ApiError(None, "The answer stream ended before the answer was complete.")

    def feedback(self, answer_id: str, rating: str, correction: str | None = None) -> Feedback:
        """Rate the answer ``answer_id`` ``"up"`` or ``"down"``, with the answer it should have
        been (``correction``), if given."""
        body: dict[str, Any] = {"answer_id": answer_id, "rating": rating}
        if correction:
            body["correction"] = correction
        return cast(Feedback, self._json("POST", "/v1/feedback", json=body))

    # ------------------------------------------------------------------------------ collections

    def collections(self) -> list[Collection]:
        """The collections the key may read."""
        return cast(list[Collection], self._json("GET", "/v1/collections"))

    def create_collection(self, name: str) -> None:
        """Create an empty collection."""
        self._request("POST", "/v1/collections", json={"name": name})

    def delete_collection(self, name: str) -> None:
        """Delete a collection and everything in it."""
        self._request("DELETE", f"/v1/collections/{name}")

    def documents(self, collection: str) -> list[Document]:
        """The documents of ``collection``."""
        return cast(list[Document], self._json("GET", f"/v1/collections/{collection}/documents"))

    def delete_document(self, collection: str, doc_id: str) -> Erasure:
        """Erase one document (its chunks, and what was made from it): what the erasure
        reached."""
        path = f"/v1/collections/{collection}/documents/{doc_id}"
        self._request("DELETE", path)
        return cast(list[Erasure], self._json("GET", f"{path}/erasure")["erasures"])[-1]

    def upload(self, collection: str, files: list[UploadFile]) -> str:
        """Upload ``files`` to be ingested into ``collection``: the ingest job's id."""
        parts = [("files", (name, content)) for name, content in files]
        body = self._json("POST", f"/v1/collections/{collection}/documents", files=parts)
        return str(body["job_id"])

    # ------------------------------------------------------------------------------ jobs

    def jobs(self) -> list[Job]:
        """The jobs the key may see, newest first."""
        return cast(list[Job], self._json("GET", "/v1/jobs"))

    def job(self, job_id: str) -> Job:
        """One job's status, progress, errors, losses and result."""
        return cast(Job, self._json("GET", f"/v1/jobs/{job_id}"))

    # ------------------------------------------------------------------------------ adapters

    def adapters(self) -> list[Adapter]:
        """Every registered adapter version."""
        return cast(list[Adapter], self._json("GET", "/v1/adapters"))

    def promote(self, name: str, version: int) -> Adapter:
        """Make ``version`` the one ``name`` means."""
        body = self._json("POST", f"/v1/adapters/{name}/promote", json={"version": version})
        return cast(Adapter, body)

    def rollback(self, name: str) -> Adapter:
        """Promote again the version promoted before the current one."""
        return cast(Adapter, self._json("POST", f"/v1/adapters/{name}/rollback"))

    def finetune(
        self,
        name: str,
        *,
        collection: str | None = None,
        dataset: UploadFile | None = None,
        recipe: str | None = None,
        max_steps: int | None = None,
    ) -> str:
        """Start training the next version of adapter ``name`` on a collection or a JSONL
        dataset: the fine-tuning job's id."""
        form = {"name": name, "collection": collection, "recipe": recipe, "max_steps": max_steps}
        data = {key: str(value) for key, value in form.items() if value is not None}
        files = {"file": dataset} if dataset is not None else None
        return str(self._json("POST", "/v1/finetune", data=data, files=files)["job_id"])

    # ------------------------------------------------------------------------------ batch

    def batch(self, questions: UploadFile, collection: str, adapter: str | None = None) -> str:
        """Start answering a question file (CSV, JSONL or XLSX): the batch job's id."""
        data = {"collection": collection, **({"adapter": adapter} if adapter else {})}
        body = self._json("POST", "/v1/batch", data=data, files={"file": questions})
        return str(body["job_id"])

    def download_answers(self, job_id: str) -> Download:
        """The answers file of a finished batch job."""
        return self._download(f"/v1/batch/{job_id}/download", f"answers-{job_id[:8]}")

    # ------------------------------------------------------------------------------ sources

    def passage(self, collection: str, doc_id: str, chunk_id: str) -> Passage:
        """A cited passage with the document's text around it, and where its file is. A chunk
        id names one text (ids come from content), so a passage is fetched once per client."""
        cached = self._passages.get((collection, chunk_id))
        if cached is None:
            path = f"/v1/collections/{collection}/documents/{doc_id}/passages/{chunk_id}"
            cached = cast(Passage, self._json("GET", path))
            self._passages[(collection, chunk_id)] = cached
        return cached

    def original(self, passage: Passage) -> Download:
        """The original file of a passage's document, as it was ingested."""
        return self._download(passage["file"], PurePath(passage["source"]).name)

    # ------------------------------------------------------------------------------ plumbing

    def _download(self, path: str, fallback_name: str) -> Download:
        response = self._request("GET", path)
        found = _FILENAME.search(response.headers.get("content-disposition", ""))
        return Download(
            filename=unquote(found.group(1)) if found else fallback_name,
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise self._unreachable(error) from None
        if response.is_error:
            raise _error_of(response)
        return response

    def _unreachable(self, error: httpx.TransportError) -> ApiError:
        if isinstance(error, httpx.TimeoutException):
            what = "did not answer in time"
        else:
            what = f"cannot be reached ({error or type(error).__name__})"
        return ApiError(
            None,
            f"The lorag API at {self.base_url} {what}. Is it running? Start it with "
            "`lorag serve`, or `lorag ui --serve` to start both.",
        )


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """The ``(event, data)`` pairs of a server-sent event stream, ``data`` parsed as JSON."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, json.loads("\n".join(data))


def _error_of(response: httpx.Response) -> ApiError:
    """The :class:`ApiError` of an error response (``{"detail": ...}``, or whatever came)."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = response.text.strip()[:300] or response.reason_phrase
    retry_after = response.headers.get("retry-after")
    return ApiError(
        response.status_code,
        detail if isinstance(detail, str) else json.dumps(detail),
        float(retry_after) if retry_after and retry_after.isdigit() else None,
    )
