"""Bearer API keys with rights per collection: read < write < admin.

Keys come from ``api.keys``; each names its rights per collection, ``"*"`` standing for every
collection. A request without a valid key gets 401; a valid key asking for more than its rights
gets 403, and a key over its ``requests_per_minute`` 429 with ``Retry-After``. Rights that
concern no one collection (promoting an adapter, a dataset upload) need the right on ``"*"``.
With no keys configured and ``api.allow_anonymous`` set, every request is
served as an admin named ``anonymous``; with keys configured, ``allow_anonymous`` changes nothing.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.core.errors import ConfigError
from assistant.core.settings import ApiSettings, Permission

LEVELS: dict[Permission, int] = {"read": 1, "write": 2, "admin": 3}
EVERY = "*"
ANONYMOUS = "anonymous"

bearer = HTTPBearer(auto_error=False, description="An API key from api.keys.")


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key's id and its rights."""

    key_id: str
    permissions: Mapping[str, Permission]

    def can(self, collection: str | None, level: Permission) -> bool:
        """Whether the key holds ``level`` on ``collection`` (``None``: on every collection)."""
        granted = [self.permissions.get(EVERY)]
        if collection is not None:
            granted.append(self.permissions.get(collection))
        return max((LEVELS[g] for g in granted if g is not None), default=0) >= LEVELS[level]

    def require(self, collection: str | None, level: Permission) -> None:
        """403 unless the key holds ``level`` on ``collection``."""
        if not self.can(collection, level):
            where = f"collection {collection!r}" if collection is not None else "every collection"
            raise HTTPException(403, f"key {self.key_id!r} has no {level} right on {where}")

    def readable(self, collections: Iterable[str]) -> list[str]:
        """The collections among ``collections`` the key may read."""
        return [name for name in collections if self.can(name, "read")]


class KeyRing:
    """Checks bearer keys against ``api.keys``."""

    def __init__(self, api: ApiSettings) -> None:
        if not api.keys and not api.allow_anonymous:
            raise ConfigError(
                "no API keys: set api.keys (env LORAG_API__KEYS, a JSON list of "
                '{"id", "key", "permissions"}) or, on loopback only, api.allow_anonymous=true'
            )
        self._keys = [(k.key.get_secret_value().encode(), k.id, k.permissions) for k in api.keys]

    def authenticate(self, token: str | None) -> Principal:
        """The principal the bearer ``token`` belongs to; 401 for a missing or unknown key."""
        if not self._keys:
            return Principal(ANONYMOUS, {EVERY: "admin"})
        if not token:
            raise _unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
        given = token.encode()
        found = None
        for secret, key_id, permissions in self._keys:  # every key compared, in constant time
            if hmac.compare_digest(secret, given):
                found = Principal(key_id, dict(permissions))
        if found is None:
            raise _unauthorized("invalid API key")
        return found


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The dependency every protected route takes: the caller, or 401; 429 when the key is
    over its requests per minute (:mod:`assistant.api.rate`)."""
    keys: KeyRing = request.app.state.keys
    found = keys.authenticate(credentials.credentials if credentials is not None else None)
    request.state.key_id = found.key_id
    wait_s = request.app.state.rate_limits.take(found.key_id)
    if wait_s > 0:
        request.app.state.metrics.rate_limited.labels(found.key_id).inc()
        raise HTTPException(
            429,
            f"key {found.key_id!r} is over its limit of requests per minute",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )
    return found


Caller = Annotated[Principal, Depends(principal)]
"""A route parameter of this type makes the route need a valid key."""
