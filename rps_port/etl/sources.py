"""Where legacy documents come from: a live MongoDB, a mongodump directory, mongoexport files.

Every source streams (no collection is held in memory) and reads by `_id` range [lo, hi) up to a
bound (the highest `_id` when the job started). `scan()` yields `(position, document)`; the position
is an opaque resume token (a byte offset in a file, the last `_id` for MongoDB) that a checkpoint
stores, so a resumed range continues exactly after the last committed batch.

Ids are compared as 24-hex strings (the same order as ObjectId); a document whose `_id` is not an
ObjectId gets the key "" and belongs to the first range, where the mapping rejects it.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import bson
from bson.codec_options import CodecOptions

from rps_port.etl import extjson
from rps_port.ids import normalize_object_id

_CODEC = CodecOptions(tz_aware=False)
_ID_PREFIX = b"\x07_id\x00"
_JSON_ID = re.compile(rb'^\s*\{\s*"_id"\s*:\s*\{\s*"\$oid"\s*:\s*"([0-9a-fA-F]{24})"')


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message says which path/URI and why (no credentials)."""


SAMPLE_SIZE = 2048  # ids kept to cut a collection into ranges of about equal document counts


@dataclass
class SourceStats:
    count: int
    min_id: str | None
    max_id: str | None
    sample: tuple[str, ...] = ()  # ObjectId keys drawn uniformly from the collection, sorted


@dataclass(frozen=True)
class FileFingerprint:
    """What a source file was when a sync read it: equal fingerprints mean equal content."""

    size: int
    mtime_ns: int
    digest: str  # BLAKE2b-256 of the file's bytes (compressed ones for .gz), hex


def file_fingerprint(path: Path) -> FileFingerprint:
    """Size and mtime from one stat, then the digest streamed over the file (about 1 GB/s).

    The stat comes first: a file written while it is hashed yields a digest no later read matches.
    """
    st = path.stat()
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=32)).hexdigest()
    return FileFingerprint(st.st_size, st.st_mtime_ns, digest)


def in_range(key: str, lo: str, hi: str | None, bound: str | None) -> bool:
    return key >= lo and (hi is None or key < hi) and (bound is None or key <= bound)


class Source(Protocol):
    description: str
    key: str

    def collections(self) -> list[str]: ...
    def stats(self, collection: str) -> SourceStats: ...
    def scan(
        self, collection: str, lo: str = "", hi: str | None = None, bound: str | None = None, start: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...
    def count(self, collection: str) -> int: ...
    def count_beyond(self, collection: str, bound: str | None) -> int: ...
    def fetch(self, collection: str, ids: Iterable[str]) -> Iterator[dict[str, Any]]: ...
    def close(self) -> None: ...


# --------------------------------------------------------------------------- files


class FileSource:
    """Shared logic of the file sources: one file per collection, scanned front to back."""

    suffixes: tuple[str, ...] = ()

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder = folder
        self.description = f"{kind}:{folder}"
        self.key = f"{kind}:{folder.resolve()}"
        self._stats: dict[str, SourceStats] = {}
        self._stats_state: dict[str, tuple[int, int]] = {}  # each file's (size, mtime) when its stats were read
        self._files: dict[str, Path] = {}
        for path in sorted(folder.iterdir()):
            for suffix in self.suffixes:
                if path.name.endswith(suffix) and path.is_file():
                    self._files.setdefault(path.name[: -len(suffix)], path)
        if not self._files:
            raise SourceError(f"{folder}: no {' or '.join(self.suffixes)} files")

    def collections(self) -> list[str]:
        return sorted(self._files)

    def _path(self, collection: str) -> Path:
        try:
            return self._files[collection]
        except KeyError:
            raise SourceError(f"{self.folder}: no file for collection {collection!r}") from None

    def fingerprint(self, collection: str) -> FileFingerprint:
        return file_fingerprint(self._path(collection))

    def _open(self, collection: str) -> Any:
        path = self._path(collection)
        return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb", buffering=1 << 20)

    def _raw(self, collection: str, start: int) -> Iterator[tuple[int, str, bytes]]:
        raise NotImplementedError

    def _decode(self, raw: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def _file_state(self, collection: str) -> tuple[int, int]:
        st = self._path(collection).stat()
        return st.st_size, st.st_mtime_ns

    def stats(self, collection: str) -> SourceStats:
        if collection not in self._stats:
            self._stats_state[collection] = self._file_state(collection)  # before the scan: a later write shows
            count, lo, hi = 0, None, None
            sample: list[str] = []
            draw = random.Random(0).randrange  # reservoir sampling: bounded memory, same sample every run
            for _pos, key, _raw in self._raw(collection, 0):
                count += 1
                if key:
                    lo = key if lo is None or key < lo else lo
                    hi = key if hi is None or key > hi else hi
                    if len(sample) < SAMPLE_SIZE:
                        sample.append(key)
                    elif (slot := draw(count)) < SAMPLE_SIZE:
                        sample[slot] = key
            self._stats[collection] = SourceStats(count, lo, hi, tuple(sorted(sample)))
        return self._stats[collection]

    def scan(
        self, collection: str, lo: str = "", hi: str | None = None, bound: str | None = None, start: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        for pos, key, raw in self._raw(collection, int(start or 0)):
            if in_range(key, lo, hi, bound):
                yield str(pos), self._decode(raw)

    def count(self, collection: str) -> int:
        return self.stats(collection).count

    def count_beyond(self, collection: str, bound: str | None) -> int:
        if bound is None:
            return 0
        # The file as its stats scan read it holds nothing beyond a bound at or past its largest id (the
        # usual case: a job's bound is that id), so that needs no second scan of the whole file.
        stats = self._stats.get(collection)
        if stats is not None and (stats.max_id is None or stats.max_id <= bound) and (
            self._stats_state.get(collection) == self._file_state(collection)
        ):
            return 0
        return sum(1 for _p, key, _r in self._raw(collection, 0) if key > bound)

    def fetch(self, collection: str, ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        wanted = set(ids)
        for _pos, key, raw in self._raw(collection, 0):
            if key in wanted:
                yield self._decode(raw)

    def close(self) -> None:
        pass


class DumpSource(FileSource):
    """A mongodump database folder: `<collection>.bson` (or `.bson.gz`), BSON documents back to back."""

    suffixes = (".bson", ".bson.gz")

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "mongodump")

    def _raw(self, collection: str, start: int) -> Iterator[tuple[int, str, bytes]]:
        with self._open(collection) as fh:
            if start:
                fh.seek(start)
            pos = start
            read = fh.read
            while True:
                head = read(4)
                if not head:
                    return
                if len(head) < 4:
                    raise SourceError(f"{self._path(collection)}: truncated BSON at byte {pos}")
                (size,) = struct.unpack("<i", head)
                body = read(size - 4)
                if len(body) != size - 4 or size < 5:
                    raise SourceError(f"{self._path(collection)}: truncated BSON document at byte {pos}")
                raw = head + body
                pos += size
                if raw[4:9] == _ID_PREFIX:
                    key = raw[9:21].hex()
                else:  # _id not first (rare): decode to find it
                    key = normalize_object_id(bson.decode(raw, _CODEC).get("_id")) or ""
                yield pos, key, raw

    def _decode(self, raw: bytes) -> dict[str, Any]:
        return bson.decode(raw, _CODEC)


class ExportSource(FileSource):
    """mongoexport files: `<collection>.json`, one Extended JSON (v1 or v2) document per line."""

    suffixes = (".json", ".json.gz", ".jsonl")

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "mongoexport")
        self._files = {k: v for k, v in self._files.items() if not k.endswith(".metadata") and k != "manifest"}

    def _raw(self, collection: str, start: int) -> Iterator[tuple[int, str, bytes]]:
        with self._open(collection) as fh:
            if start:
                fh.seek(start)
            pos = start
            for line in fh:
                pos += len(line)
                if not line.strip():
                    continue
                m = _JSON_ID.match(line)
                if m:
                    key = m.group(1).decode().lower()
                else:
                    try:
                        key = normalize_object_id(extjson.loads(line).get("_id")) or ""
                    except (ValueError, AttributeError):
                        key = ""
                yield pos, key, line

    def _decode(self, raw: bytes) -> dict[str, Any]:
        try:
            doc = extjson.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            return {"$unparseable": str(exc)[:200]}
        return doc if isinstance(doc, dict) else {"$unparseable": "not an object"}


# --------------------------------------------------------------------------- MongoDB


class MongoSource:
    """A live MongoDB through pymongo (or anything with its API, e.g. mongomock in tests)."""

    def __init__(self, uri: str | None = None, db: str | None = None, client: Any = None) -> None:
        if client is None:
            import pymongo

            if not uri:
                raise SourceError("a mongodb:// URI is required")
            self.description = _mask_mongo(uri)
            try:
                client = pymongo.MongoClient(uri, tz_aware=False)
                client.admin.command("ping")  # fail here, clearly, rather than mid-run with a traceback
            except pymongo.errors.PyMongoError as exc:
                raise SourceError(f"{self.description}: cannot reach MongoDB: {_reason(exc)}") from None
            db = db or pymongo.uri_parser.parse_uri(uri).get("database") or "rps"
        else:
            self.description = f"mongodb-client:{db or 'rps'}"
        self.client = client
        self.db = client[db or "rps"]
        self.key = f"mongodb:{self.description}/{self.db.name}"

    def collections(self) -> list[str]:
        return sorted(n for n in self.db.list_collection_names() if not n.startswith("system."))

    def stats(self, collection: str) -> SourceStats:
        coll = self.db[collection]
        first = next(iter(coll.find({}, {"_id": 1}).sort("_id", 1).limit(1)), None)
        last = next(iter(coll.find({}, {"_id": 1}).sort("_id", -1).limit(1)), None)
        drawn = coll.aggregate([{"$sample": {"size": SAMPLE_SIZE}}, {"$project": {"_id": 1}}])
        sample = {k for d in drawn if (k := normalize_object_id(d["_id"]))}
        return SourceStats(
            coll.count_documents({}),
            normalize_object_id(first["_id"]) if first else None,
            normalize_object_id(last["_id"]) if last else None,
            tuple(sorted(sample)),
        )

    def scan(
        self, collection: str, lo: str = "", hi: str | None = None, bound: str | None = None, start: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        cond = _id_range(lo, hi, bound, start)
        cursor = self.db[collection].find({"_id": cond}).sort("_id", 1).batch_size(1000)
        for doc in cursor:
            yield normalize_object_id(doc["_id"]) or "", doc

    def ids(self, collection: str, lo: str = "", hi: str | None = None) -> Iterator[str]:
        """The ids in [lo, hi), read from the `_id` index alone (a covered query: no document is fetched)."""
        cursor = self.db[collection].find({"_id": _id_range(lo, hi)}, {"_id": 1}).batch_size(10000)
        for doc in cursor:
            yield normalize_object_id(doc["_id"]) or ""

    def changed_since(
        self, collection: str, path: str, since: datetime, lo: str = "", hi: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Documents in [lo, hi) whose `path` is a date at or after `since`, or is not a date at all.

        A value that is missing, null, a string or a number cannot be compared by the server the way
        the mapping reads it (it converts strings and epoch numbers, and falls back to other fields),
        so those documents are always returned and compared with the target's version by the caller.
        """
        naive = since.astimezone(UTC).replace(tzinfo=None)  # stored dates are UTC; the client may be naive
        query = {"_id": _id_range(lo, hi),
                 "$or": [{path: {"$gte": naive}}, {path: {"$not": {"$type": "date"}}}]}
        yield from self.db[collection].find(query).batch_size(1000)

    def count(self, collection: str) -> int:
        return self.db[collection].count_documents({})

    def count_beyond(self, collection: str, bound: str | None) -> int:
        if bound is None:
            return 0
        from bson import ObjectId

        return self.db[collection].count_documents({"_id": {"$gt": ObjectId(bound)}})

    def fetch(self, collection: str, ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        from bson import ObjectId

        chunk: list[ObjectId] = []
        for i in ids:
            if normalize_object_id(i):
                chunk.append(ObjectId(i))
        for start in range(0, len(chunk), 1000):
            yield from self.db[collection].find({"_id": {"$in": chunk[start : start + 1000]}})

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


def _id_range(lo: str = "", hi: str | None = None, bound: str | None = None, start: str | None = None) -> dict[str, Any]:
    """The `_id` condition of a range: ObjectIds only, from `start` (exclusive) or `lo`, below `hi`, up to `bound`."""
    from bson import ObjectId

    cond: dict[str, Any] = {"$gt": ObjectId(start)} if start else {"$gte": ObjectId(lo or "0" * 24)}
    if hi is not None:
        cond["$lt"] = ObjectId(hi)
    if bound is not None:
        cond["$lte"] = ObjectId(bound)
    return cond


def _mask_mongo(uri: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", uri)


# --------------------------------------------------------------------------- opening


def open_source(location: str | Path, *, db: str | None = None, client: Any = None) -> Source:
    """`mongodb://...` (or a pymongo-compatible `client`), a mongodump root or database folder, or an export dir.

    A dump root with several databases needs `db` (default `rps`). A generator output directory
    (`rps/` and `export/` side by side) reads the BSON dump.
    """
    if client is not None:
        return MongoSource(client=client, db=db)
    text = str(location)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        return MongoSource(text, db)
    folder = Path(text)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a directory or mongodb:// URI")
    if _has(folder, (".bson", ".bson.gz")):
        return DumpSource(folder)
    if _has(folder, (".json", ".json.gz", ".jsonl")) and not (folder / "manifest.json").exists():
        return ExportSource(folder)
    dbs = [p for p in sorted(folder.iterdir()) if p.is_dir() and _has(p, (".bson", ".bson.gz"))]
    if dbs:
        chosen = [p for p in dbs if p.name == (db or "rps")] or (dbs if len(dbs) == 1 else [])
        if not chosen:
            raise SourceError(f"{folder}: several databases ({', '.join(p.name for p in dbs)}); name one with --db")
        return DumpSource(chosen[0])
    if (folder / "export").is_dir() and _has(folder / "export", (".json", ".json.gz", ".jsonl")):
        return ExportSource(folder / "export")
    raise SourceError(f"{folder}: neither a mongodump (… .bson) nor a mongoexport (… .json) directory")


def _reason(exc: Exception) -> str:
    """pymongo's own first words on why (its messages name hosts, never credentials), without the
    topology dump that follows."""
    text = str(exc).split(", Timeout:")[0].split(" (configured timeouts")[0]
    return (text[:300] + "...") if len(text) > 300 else text


def _has(folder: Path, suffixes: tuple[str, ...]) -> bool:
    return any(p.name.endswith(suffixes) and not p.name.endswith(".metadata.json") for p in folder.iterdir())


def manifest_path(location: str | Path) -> Path | None:
    """The generator's manifest.json next to (or above) a dump/export folder, if any."""
    p = Path(str(location))
    for candidate in (p / "manifest.json", p.parent / "manifest.json"):
        if candidate.is_file():
            return candidate
    return None


__all__ = ["DumpSource", "ExportSource", "FileFingerprint", "FileSource", "MongoSource", "Source", "SourceError",
           "SourceStats", "open_source"]
