"""Where the protocol simulators keep their state: this process's memory, or Redis shared by every worker.

A simulator plays an outside service (WeChat, WeChat Pay, an SMS vendor): what it knows — minted login codes,
access tokens, JSAPI orders, refunds, notifies sent — must be the same whichever worker or host a request
reaches, as it would be at the real service. With ``GC_REDIS_URL`` set (the production shape, required for more
than one worker) :func:`store_for` gives a :class:`RedisStore`; otherwise one process serves everything and a
:class:`MemoryStore` is enough (and is what unit tests build directly).

A store gives named tables (a ``MutableMapping[str, V]`` per table, values encoded as JSON: dataclasses,
tuples, ``datetime`` and ``bytes`` survive the round trip), append-only logs, and one ``lock``: re-entrant in
a thread, exclusive across every process that shares the store. A simulator reads, decides and writes back
under it (``order = orders[no]; order.state = ...; orders[no] = order``): a fetched object is a copy, so
every change is written back explicitly.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import threading
import typing
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

V = TypeVar("V")
LOCK_TIMEOUT = 30.0  # seconds a holder may keep the lock (a crashed worker's lock lapses after this)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$dt"}:
            return dt.datetime.fromisoformat(value["$dt"])
        if value.keys() == {"$b64"}:
            return base64.b64decode(value["$b64"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class Codec(Generic[V]):
    """JSON for one table's values: ``kind`` is a dataclass, ``tuple`` or a plain JSON type."""

    def __init__(self, kind: type | None = None) -> None:
        self.kind = kind

    def dumps(self, value: V) -> str:
        return json.dumps(_encode(value), ensure_ascii=False, separators=(",", ":"))

    def loads(self, raw: str | bytes) -> V:
        data = _decode(json.loads(raw))
        if self.kind is tuple:
            return tuple(data)  # type: ignore[return-value]
        if self.kind is not None and dataclasses.is_dataclass(self.kind):
            hints = typing.get_type_hints(self.kind)
            fields = {f.name for f in dataclasses.fields(self.kind) if f.init}
            args = {k: (tuple(v) if hints.get(k) is tuple and isinstance(v, list) else v)
                    for k, v in data.items() if k in fields}
            return self.kind(**args)
        return data


class MemoryStore:
    """One process's memory (dicts and lists) behind a re-entrant thread lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def table(self, name: str, kind: type | None = None) -> MutableMapping[str, Any]:  # noqa: ARG002
        return {}

    def log(self, name: str, kind: type | None = None) -> list[Any]:  # noqa: ARG002
        return []


class _DistributedLock:
    """Re-entrant within a thread (a depth count behind a thread lock), exclusive across processes (a Redis
    lock with a lease: a holder that dies without releasing frees it after :data:`LOCK_TIMEOUT`)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._local = threading.RLock()
        self._make = make
        self._depth = 0
        self._held: Any = None

    def __enter__(self) -> _DistributedLock:
        self._local.acquire()
        if self._depth == 0:
            lock = self._make()
            if not lock.acquire(blocking=True, blocking_timeout=LOCK_TIMEOUT):
                self._local.release()
                raise TimeoutError("simulator state lock not obtained")
            self._held = lock
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                held, self._held = self._held, None
                with contextlib.suppress(Exception):  # a lapsed lease: nothing left to release
                    held.release()
        finally:
            self._local.release()


class RedisTable(MutableMapping[str, V]):
    """A Redis hash as a mapping of JSON-encoded values."""

    def __init__(self, client: Any, key: str, codec: Codec[V]) -> None:
        self._r, self._key, self._codec = client, key, codec

    def __getitem__(self, k: str) -> V:
        raw = self._r.hget(self._key, k)
        if raw is None:
            raise KeyError(k)
        return self._codec.loads(raw)

    def __setitem__(self, k: str, value: V) -> None:
        self._r.hset(self._key, k, self._codec.dumps(value))

    def __delitem__(self, k: str) -> None:
        if not self._r.hdel(self._key, k):
            raise KeyError(k)

    def __contains__(self, k: object) -> bool:
        return isinstance(k, str) and bool(self._r.hexists(self._key, k))

    def __iter__(self) -> Iterator[str]:
        return iter([k.decode() if isinstance(k, bytes) else k for k in self._r.hkeys(self._key)])

    def __len__(self) -> int:
        return int(self._r.hlen(self._key))

    def values(self):  # one round trip instead of one per key
        return [self._codec.loads(v) for v in self._r.hvals(self._key)]

    def items(self):
        return [(k.decode() if isinstance(k, bytes) else k, self._codec.loads(v))
                for k, v in self._r.hgetall(self._key).items()]


class RedisLog(Generic[V]):
    """A Redis list as an append-only log (``append``, ``len``, iteration, indexing)."""

    def __init__(self, client: Any, key: str, codec: Codec[V]) -> None:
        self._r, self._key, self._codec = client, key, codec

    def append(self, value: V) -> None:
        self._r.rpush(self._key, self._codec.dumps(value))

    def __len__(self) -> int:
        return int(self._r.llen(self._key))

    def __iter__(self) -> Iterator[V]:
        return iter([self._codec.loads(v) for v in self._r.lrange(self._key, 0, -1)])

    def __getitem__(self, i: int) -> V:
        raw = self._r.lindex(self._key, i)
        if raw is None:
            raise IndexError(i)
        return self._codec.loads(raw)


class RedisStore:
    """Tables and logs under ``prefix`` in one Redis; the lock is ``<prefix>:lock``."""

    def __init__(self, url: str, *, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix
        self.lock = _DistributedLock(lambda: self.client.lock(f"{prefix}:lock", timeout=LOCK_TIMEOUT,
                                                                    sleep=0.002))

    def table(self, name: str, kind: type | None = None) -> MutableMapping[str, Any]:
        return RedisTable(self.client, f"{self.prefix}:{name}", Codec(kind))

    def log(self, name: str, kind: type | None = None) -> RedisLog[Any]:
        return RedisLog(self.client, f"{self.prefix}:{name}", Codec(kind))

    def clear(self) -> None:
        """Forget everything under the prefix (tests)."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*"))
        if keys:
            self.client.delete(*keys)


def store_for(*, redis_url: str, database_url: str) -> MemoryStore | RedisStore:
    """The store of the app's simulators: Redis when configured (shared by every worker and host of the
    deployment, keyed by its database so test runs sharing one Redis stay apart), else this process."""
    if not redis_url:
        return MemoryStore()
    namespace = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return RedisStore(redis_url, prefix=f"gc:sim:{namespace}")
