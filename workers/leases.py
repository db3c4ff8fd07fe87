"""Leases in Redis: a worker claims mention ids for a while; a crashed worker's claims expire.

A lease is the key ``<namespace>:lease:<id>`` holding the owner's token, set with ``NX PX`` (only
if free, expiring after the visibility timeout). Renewing and releasing are Lua scripts that act
only on keys still holding the caller's token, so a worker can never extend or drop a lease that
expired and was taken over by another worker (the fencing that keeps work from being done twice).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

_CLAIM = """
local out = {}
local limit = tonumber(ARGV[3])
for i, key in ipairs(KEYS) do
  if limit >= 0 and #out >= limit then break end
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then out[#out + 1] = i end
end
return out
"""
_RENEW = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]); out[#out + 1] = i end
end
return out
"""
_RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""


def new_token(worker: str = "worker") -> str:
    """A token unique to one claim round of one worker."""
    return f"{worker}:{secrets.token_hex(8)}"


class RedisLeases:
    """Claim, renew and release leases on ids (one Redis round trip each)."""

    def __init__(self, client: Any, namespace: str = "langnghe", lease_seconds: float = 60.0) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.client = client
        self.namespace = namespace
        self.lease_ms = int(lease_seconds * 1000)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisLeases:
        import redis

        return cls(redis.Redis.from_url(url, decode_responses=True), **kwargs)

    def _keys(self, ids: Sequence[str]) -> list[str]:
        return [f"{self.namespace}:lease:{i}" for i in ids]

    def claim(self, ids: Sequence[str], token: str, limit: int | None = None) -> list[str]:
        """Claim the free ids among `ids` (at most `limit`, in order); returns those claimed."""
        claimed: list[str] = []
        for start in range(0, len(ids), 200):
            if limit is not None and len(claimed) >= limit:
                break
            chunk = list(ids[start:start + 200])
            left = -1 if limit is None else limit - len(claimed)
            got = self._claim(keys=self._keys(chunk), args=[token, self.lease_ms, left])
            claimed.extend(chunk[int(i) - 1] for i in got)
        return claimed

    def renew(self, ids: Sequence[str], token: str) -> list[str]:
        """Extend the leases still held with `token`; returns the ids still held."""
        if not ids:
            return []
        got = self._renew(keys=self._keys(ids), args=[token, self.lease_ms])
        return [ids[int(i) - 1] for i in got]

    def release(self, ids: Sequence[str], token: str) -> int:
        """Drop the leases still held with `token`; returns how many."""
        if not ids:
            return 0
        return int(self._release(keys=self._keys(ids), args=[token]))

    def holder(self, mention_id: str) -> str | None:
        value = self.client.get(self._keys([mention_id])[0])
        return None if value is None else str(value)
