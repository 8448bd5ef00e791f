"""The remote generator back end: an OpenAI-compatible server generates, lorag does the rest.

vLLM, the llama.cpp server, TGI, LoRAX or another ``lorag serve`` (its ``/generate/v1``) run
the model; lorag retrieves, builds the prompt with ``generator.model``'s tokenizer and chat
template (read here, so budgets and prompts are the ones the other back ends make) and checks
the answer. Messages go out through the official ``openai`` client, which brings timeouts and
retries with exponential backoff (``generator.remote``); a server that is down or failing is a
:class:`~assistant.core.errors.GeneratorUnavailableError` naming its URL.

Adapters are chosen per request by model name (the base: ``generator.remote.model``, else
``generator.model``; an adapter: its name here and its content hash, ``NAME.0123456789ab``, so
that clients sharing a server never get each other's adapter under one name) and pushed to the
server with its own API when first used (one already there under that name is used as it is):

- ``vllm`` and ``lorag``: ``POST /v1/load_lora_adapter`` with the folder's path as the server
  sees it (``generator.remote.adapter_dir``), ``/v1/unload_lora_adapter`` to drop it;
- ``llamacpp``: llama-server loads LoRA files only at start (``--lora FILE``); the adapter's
  GGUF LoRA is looked up in ``GET /lora-adapters`` and applied per request (``"lora"``);
- ``openai``: nothing is pushed; the adapter must already be served under its name.

The ``avoid`` of a redraft (its first token) is sent to lorag as is; other servers get the
avoided first tokens as a ``logit_bias`` of -100, which holds for the whole answer, not only its
first token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from assistant.core.errors import AdapterError, GeneratorUnavailableError
from assistant.core.models.hf_generator import (
    check_loaded,
    count_text_tokens,
    first_token_ids,
    render_chat,
)
from assistant.core.settings import RemoteGeneratorSettings, Settings

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionMessageParam
    from transformers import PreTrainedTokenizerBase

LoraFile = Callable[[Path], Path]


class RemoteGenerator:
    """A :class:`~assistant.core.protocols.Generator` whose tokens come from ``client``'s server;
    ``tokenizer`` renders and counts as the server's model does."""

    def __init__(
        self,
        client: openai.OpenAI,
        tokenizer: PreTrainedTokenizerBase,
        model_id: str,
        remote: RemoteGeneratorSettings,
        *,
        context_window: int,
        adapters_root: Path,
        lora_file: LoraFile,
    ) -> None:
        self.client = client
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.context_window = context_window
        self.url = str(remote.url).rstrip("/")
        self.server = remote.server
        self.served_model = remote.model or model_id
        self._remote = remote
        self._adapters_root = adapters_root
        self._lora_file = lora_file
        self._served: dict[str, str] = {}  # name here → model name on the server
        self._lora_ids: dict[str, int] = {}  # name here → llama-server adapter id

    @property
    def adapters(self) -> list[str]:
        return list(self._served)

    def count_tokens(self, text: str) -> int:
        return count_text_tokens(self.tokenizer, text)

    def render(self, messages: list[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages)

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        adapter: str | None = None,
        avoid: Sequence[str] = (),
    ) -> Iterator[str]:
        check_loaded(adapter, self.adapters)
        return self._pieces(messages, max_new_tokens, temperature, adapter, avoid)

    def generate_batch(
        self, batch: list[list[dict[str, str]]], max_new_tokens: int, adapter: str | None = None
    ) -> list[str]:
        """Greedy answers, ``generator.remote.concurrency`` requests in flight at once (the
        server batches them)."""
        check_loaded(adapter, self.adapters)
        if not batch:
            return []
        workers = min(self._remote.concurrency, len(batch))
        with ThreadPoolExecutor(workers, thread_name_prefix="lorag-remote") as pool:
            return list(
                pool.map(
                    lambda chat: "".join(self._pieces(chat, max_new_tokens, 0.0, adapter, ())),
                    batch,
                )
            )

    def load_adapter(self, path: str, name: str) -> None:
        if name in self._served:
            raise AdapterError(f"an adapter named {name!r} is already loaded")
        folder = Path(path)
        if self.server in ("vllm", "lorag"):
            served = f"{name}.{adapter_digest(folder)}"
            self._call(
                "load_lora_adapter",
                {"lora_name": served, "lora_path": self._server_path(folder)},
                f"load the adapter {name!r}",
            )
        elif self.server == "llamacpp":
            served = name
            self._lora_ids[name] = self._llamacpp_adapter_id(folder, name)
        else:
            served = name
            offered = self._served_models()
            if name not in offered:
                raise AdapterError(
                    f"the generator server at {self.url} serves no model {name!r} (it serves: "
                    f"{', '.join(offered) or 'none'}); serve the adapter there under that name"
                )
        self._served[name] = served

    def served_name(self, adapter: str | None) -> str:
        """The model name requests for ``adapter`` (``None``: the base) carry."""
        return self.served_model if adapter is None else self._served[adapter]

    def unload_adapter(self, name: str) -> None:
        check_loaded(name, self.adapters)
        if self.server in ("vllm", "lorag"):
            self._call(
                "unload_lora_adapter",
                {"lora_name": self._served[name]},
                f"unload the adapter {name!r}",
            )
        del self._served[name]
        self._lora_ids.pop(name, None)

    def problem(self) -> str | None:
        """What keeps the server from answering now (one call, 5 s at most, no retry), or
        ``None`` when it lists its models."""
        import openai

        try:
            self.client.with_options(timeout=5.0, max_retries=0).models.list()
        except openai.APIError as error:
            return f"{self.url}: {_message_of(error)}"
        return None

    # ----------------------------------------------------------------------------- requests

    def _pieces(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float,
        adapter: str | None,
        avoid: Sequence[str],
    ) -> Iterator[str]:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.served_name(adapter),
                messages=cast("list[ChatCompletionMessageParam]", messages),
                max_tokens=max_new_tokens,
                temperature=temperature,
                stream=True,
                extra_body=self._extra_body(adapter, avoid),
            )
            with response:
                for chunk in response:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content
        except openai.APIError as error:
            raise self._unavailable("generate", error) from error

    def _extra_body(self, adapter: str | None, avoid: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.server == "llamacpp":  # the chosen adapter at scale 1, every other at 0
            chosen = self._lora_ids.get(adapter) if adapter is not None else None
            body["lora"] = [] if chosen is None else [{"id": chosen, "scale": 1.0}]
        if avoid and self.server == "lorag":
            body["avoid"] = list(avoid)
        elif avoid:
            body["logit_bias"] = {str(t): -100 for t in first_token_ids(self.tokenizer, avoid)}
        return body

    def _call(self, path: str, body: dict[str, Any], doing: str) -> None:
        import openai

        try:
            self.client.post(f"/{path}", cast_to=str, body=body)
        except openai.APIStatusError as error:
            if error.status_code == 400 and "already been loaded" in _message_of(error).lower():
                return  # the same content under the same name: pushed before
            if error.status_code in (400, 404, 409, 422):
                raise AdapterError(
                    f"the generator server at {self.url} refused to {doing}: {_message_of(error)}"
                ) from error
            raise self._unavailable(doing, error) from error
        except openai.APIError as error:
            raise self._unavailable(doing, error) from error

    def _server_path(self, folder: Path) -> str:
        """``folder`` as the server sees it: under ``generator.remote.adapter_dir`` when it is
        one of the registry's folders and that setting is given."""
        mount = self._remote.adapter_dir
        folder = folder.resolve()
        root = self._adapters_root.resolve()
        if mount is None or not folder.is_relative_to(root):
            return str(folder)
        return f"{mount.rstrip('/')}/{folder.relative_to(root).as_posix()}"

    def _llamacpp_adapter_id(self, folder: Path, name: str) -> int:
        """The id llama-server gave the adapter's GGUF LoRA file (loaded with ``--lora``)."""
        import openai

        wanted = self._server_path(self._lora_file(folder))
        root = self.url.removesuffix("/v1")
        try:
            listed = self.client.get(f"{root}/lora-adapters", cast_to=object)
        except openai.APIError as error:
            raise self._unavailable("list its LoRA adapters", error) from error
        entries = listed if isinstance(listed, list) else []
        for entry in entries:
            if isinstance(entry, dict) and str(entry.get("path")) == wanted:
                return int(entry["id"])
        paths = ", ".join(str(e.get("path")) for e in entries if isinstance(e, dict)) or "none"
        raise AdapterError(
            f"the llama.cpp server at {root} has not loaded the LoRA file of adapter {name!r} "
            f"({wanted}; it has: {paths}); start llama-server with --lora {wanted}"
        )

    def _served_models(self) -> list[str]:
        import openai

        try:
            return [model.id for model in self.client.models.list()]
        except openai.APIError as error:
            raise self._unavailable("list its models", error) from error

    def _unavailable(self, doing: str, error: Exception) -> GeneratorUnavailableError:
        import openai

        if isinstance(error, openai.APIStatusError) and error.status_code in (401, 403):
            fix = "set generator.remote.api_key (LORAG_GENERATOR__REMOTE__API_KEY) to a key it "
            fix += "accepts for this"
        else:
            fix = "check that it runs, and generator.remote.url (LORAG_GENERATOR__REMOTE__URL)"
        return GeneratorUnavailableError(
            f"the generator server at {self.url} could not {doing}: {_message_of(error)} ({fix})"
        )


def adapter_digest(folder: Path) -> str:
    """12 hex digits of sha256 over the adapter's config and weights (``""`` where absent)."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        file = folder / name
        digest.update(file.read_bytes() if file.is_file() else b"-")
    return digest.hexdigest()[:12]


def _message_of(error: Exception) -> str:
    import openai

    if isinstance(error, openai.APIStatusError):
        body = error.body
        detail = body.get("message") or body.get("detail") if isinstance(body, dict) else None
        return f"HTTP {error.status_code}: {detail or error.message}"
    cause = error.__cause__ or error.__context__
    return f"{type(error).__name__}: {cause or error}"


def load_remote_generator(settings: Settings) -> RemoteGenerator:
    """The remote back end of ``generator.remote``, with ``generator.model``'s tokenizer."""
    import openai
    from transformers import AutoTokenizer

    from assistant.core.models.lora_gguf import lora_file_for
    from assistant.core.models.sources import model_not_found, resolve_generator_path

    spec = settings.generator
    remote = spec.remote
    folder = resolve_generator_path(settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise model_not_found(
            "generator.model", spec.model, [f"a tokenizer in {str(folder)!r}: {exc}"]
        ) from exc
    key = remote.api_key.get_secret_value() if remote.api_key else "none"
    client = openai.OpenAI(
        base_url=str(remote.url).rstrip("/"),
        api_key=key,
        timeout=remote.timeout_s,
        max_retries=remote.max_retries,
    )
    exports = settings.cache_dir / "lora-gguf"
    return RemoteGenerator(
        client,
        tokenizer,
        spec.model,
        remote,
        context_window=settings.generation.context_tokens + settings.generation.max_new_tokens,
        adapters_root=settings.data_dir / "adapters",
        lora_file=lambda adapter: lora_file_for(adapter, folder, exports),
    )
