"""A legacy database in mongomock, and a scripted stream of changes recorded as change events."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongomock
from bson import ObjectId, decode_file_iter, json_util


def mongo_from_dump(dump: Path) -> Any:
    client = mongomock.MongoClient()
    db = client["rps"]
    for name in ("customers", "orders", "transactions"):
        with (dump / "rps" / f"{name}.bson").open("rb") as fh:
            db[name].insert_many(list(decode_file_iter(fh)))
    return client


class Recorder:
    """Changes a mongomock database the way the legacy app would, and records each as a change event."""

    def __init__(self, db: Any, events: Path, seed: int = 7) -> None:
        self.db = db
        self.events = events
        self.rng = random.Random(seed)
        self.clock = datetime(2030, 1, 1, tzinfo=UTC)
        self.log: list[tuple[str, str, str]] = []

    def _now(self) -> datetime:
        self.clock += timedelta(milliseconds=self.rng.randint(1, 50))
        return self.clock.replace(tzinfo=None)

    def _record(self, op: str, coll: str, _id: Any, doc: dict[str, Any] | None, at: datetime) -> None:
        change = {"_id": {"seq": len(self.log)}, "operationType": op, "ns": {"db": "rps", "coll": coll},
                  "documentKey": {"_id": _id}, "wallTime": at}
        if doc is not None:
            change["fullDocument"] = doc
        with self.events.open("a", encoding="utf-8") as fh:
            fh.write(json_util.dumps(change) + "\n")
        self.log.append((op, coll, str(_id)))

    def _live(self, coll: str) -> dict[str, Any]:
        docs = list(self.db[coll].find({"deletedAt": None, "org": {"$exists": True}}).limit(200))
        return self.rng.choice(docs)

    def update_order(self) -> None:
        doc = self._live("orders")
        at = self._now()
        self.db.orders.update_one({"_id": doc["_id"]}, {"$set": {"notes": f"changed at {at.isoformat()}", "updatedAt": at}})
        self._record("update", "orders", doc["_id"], self.db.orders.find_one({"_id": doc["_id"]}), at)

    def replace_customer(self) -> None:
        doc = self._live("customers")
        at = self._now()
        new = {**doc, "name": f"Renamed {self.rng.randint(1, 10**6)}", "updatedAt": at}
        new.pop("firstName", None)
        new.pop("lastName", None)
        self.db.customers.replace_one({"_id": doc["_id"]}, new)
        self._record("replace", "customers", doc["_id"], new, at)

    def insert_customer(self) -> None:
        doc = copy.deepcopy(self._live("customers"))
        at = self._now()
        doc.update({"_id": ObjectId(), "name": f"New customer {len(self.log)}", "createdAt": at, "updatedAt": at})
        doc.pop("firstName", None)
        doc.pop("lastName", None)
        self.db.customers.insert_one(doc)
        self._record("insert", "customers", doc["_id"], doc, at)

    def delete_transaction(self) -> None:
        doc = self._live("transactions")
        at = self._now()
        self.db.transactions.delete_one({"_id": doc["_id"]})
        self._record("delete", "transactions", doc["_id"], None, at)

    def random_change(self) -> None:
        self.rng.choice([self.update_order, self.replace_customer, self.insert_customer, self.delete_transaction])()
