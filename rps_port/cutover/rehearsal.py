"""The whole migration rehearsed on embedded defaults: what `rps-port cutover dry-run` and `rps-port demo` run.

Legacy MongoDB is an in-process mongomock database seeded from generated dump files (the same
files the legacy emulator serves), the target is a SQLite file, and both the emulator and the new
API are served over real HTTP on local ports. Each step either passes, fails (and names why), or
is `skipped (not available)` when the component it exercises is not installed: never faked.
A failed step stops the run; later steps are reported as not run.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from rps_port.cutover.evidence import Metrics, RecordedEvidence, ShadowStats, SyncLag, VerifyResult
from rps_port.timeutil import ensure_utc, utcnow

PLANTS = ("row-changed", "shadow-mismatch", "sync-lag", "lost-write")
REHEARSAL_MAX_MISMATCH = 0.10  # a rehearsal-sized sample cannot bound a rate below several percent
SHADOW_SAMPLE_PER_COLLECTION = 150
REHEARSAL_MAX_P99_MS = 5000.0
PROBE_REQUESTS = 120


class Unavailable(Exception):
    """The component this step exercises is not installed (yet)."""


class StepFailed(Exception):
    """The step ran and found a problem; the message says what."""


@dataclass
class StepResult:
    name: str
    title: str
    status: str  # passed | failed | skipped
    detail: str = ""
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "detail": self.detail,
                "seconds": round(self.seconds, 3), "data": self.data}


@dataclass
class RehearsalResult:
    workdir: Path
    steps: list[StepResult] = field(default_factory=list)
    plants: list[str] = field(default_factory=list)
    seconds: float = 0.0
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.status == "passed" for s in self.steps)

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def counts(self) -> Counter:
        return Counter(s.status for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        f = self.failed
        return {"ok": self.ok, "workdir": str(self.workdir), "plants": self.plants, "seconds": round(self.seconds, 2),
                "failed_step": f.name if f else None, "counts": dict(self.counts()), "artifacts": self.artifacts,
                "steps": [s.to_json() for s in self.steps]}


# ---------------------------------------------------------------------------- narration


class Narrator:
    """Tells the story: rich tables and progress bars in a terminal, plain lines in CI, nothing when None."""

    def __init__(self, console: Any | None, *, plain: bool = False) -> None:
        self.console = console
        self.plain = plain

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def table(self, table: Any) -> None:
        if self.console is not None:
            self.console.print(table)

    def begin(self, index: int, title: str) -> None:
        if self.console is not None and not self.plain:
            self.console.rule(f"[bold]{index}. {title}[/bold]", align="left", style="dim")

    def step(self, result: StepResult, index: int) -> None:
        if self.console is None:
            return
        mark = {"passed": "[green]passed[/green]", "failed": "[red]FAILED[/red]",
                "skipped": "[yellow]skipped[/yellow]"}[result.status]
        self.console.print(f"[bold]{index:>2}. {result.title}[/bold] ... {mark} ({result.seconds:.1f}s)"
                           + (f"\n    {result.detail}" if result.detail else ""))

    @contextmanager
    def progress(self, label: str, total: int | None = None) -> Iterator[Callable[[int, int | None], None]]:
        if self.console is None:
            yield lambda done, total=None: None
            return
        if self.plain:
            last = [-1]

            def plain(done: int, tot: int | None = None) -> None:
                tot = tot or total or 0
                tenth = done * 10 // tot if tot else 0
                if tenth != last[0]:
                    last[0] = tenth
                    self.console.print(f"    {label}: {done}/{tot or '?'}")

            yield plain
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn(f"    {label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=self.console, transient=True) as bar:
            task = bar.add_task(label, total=total)

            def update(done: int, tot: int | None = None) -> None:
                bar.update(task, completed=done, total=tot or total)

            yield update


# ---------------------------------------------------------------------------- the rehearsal


class Rehearsal:
    def __init__(self, workdir: Path, *, plants: set[str], customers: int, narrator: Narrator, seed: int = 1,
                 shadow_sample: int = SHADOW_SAMPLE_PER_COLLECTION) -> None:
        self.shadow_sample = shadow_sample
        self.workdir = workdir
        self.plants = plants
        self.customers = customers
        self.seed = seed
        self.say = narrator
        self.data = workdir / "legacy"
        self.db_path = workdir / "rps-port.db"
        self.db_url = f"sqlite:///{self.db_path}"
        self.jwt_secret = secrets.token_hex(24)
        self.evidence = RecordedEvidence()
        self.available: dict[str, bool] = {}
        self.stack = ExitStack()
        self.mapping: Any = None
        self.mongo: Any = None
        self.engine: Any = None
        self.settings: Any = None
        self.controller: Any = None
        self.legacy_url = ""
        self.new_url = ""  # new API, routing off (what the shadow tool compares)
        self.routed_url = ""  # new API behind the cutover routing (what the portal would call)
        self.org = ""
        self.order_ids: list[str] = []
        self.live_writes: list[tuple[str, str]] = []
        self.artifacts: dict[str, str] = {}

    # ------------------------------------------------------------------ helpers
    def token(self, org: str | None = None) -> str:
        import jwt

        now = int(time.time())
        claims = {"sub": "rps-port-rehearsal", "org": org or self.org, "roles": ["admin"], "clients": ["*"],
                  "projects": ["*"], "iss": self.settings.jwt_issuer, "aud": self.settings.jwt_audience,
                  "iat": now, "exp": now + 3600}
        return jwt.encode(claims, self.jwt_secret, algorithm="HS256")

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", **extra}

    def need(self, *modules: str) -> None:
        import importlib

        for name in modules:
            mod, _, attr = name.partition(":")
            try:
                m = importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                raise Unavailable(f"{mod} is not installed ({exc.name})") from None
            if attr and not hasattr(m, attr):
                raise Unavailable(f"{mod}.{attr} does not exist yet")

    # ------------------------------------------------------------------ steps
    def step_generate(self) -> tuple[str, dict]:
        self.need("rps_port.legacy.generate:generate")
        from rps_port.legacy.generate import expected_documents, generate

        with self.say.progress("generating legacy documents", expected_documents(self.customers)) as bar:
            manifest = generate(self.data, self.customers, seed=self.seed, fmt="bson",
                                secret=self._settings().legacy_secret.get_secret_value(), progress=bar)
        from rich.table import Table

        t = Table("collection", "documents", "soft-deleted", "planted broken", title="Legacy MongoDB (generated dump)")
        for name, c in manifest.collections.items():
            t.add_row(name, f"{c.total:,}", f"{c.soft_deleted:,}", f"{c.broken:,}")
        self.say.table(t)
        return (f"{manifest.total_documents:,} documents for {self.customers} customers in {self.data}",
                {"documents": manifest.total_documents})

    def _settings(self) -> Any:
        if self.settings is None:
            from rps_port.config import load_settings

            self.settings = load_settings(
                database_url=self.db_url, jwt_secret=self.jwt_secret, cutover_audit_log=self.workdir / "audit.jsonl",
                cutover_max_mismatch_rate=REHEARSAL_MAX_MISMATCH, cutover_min_shadow_sample=20,
                cutover_min_requests=100, cutover_max_sync_lag_seconds=60.0, cutover_require_approval=False,
                # everything shares one process on a laptop or CI runner: latency there says nothing about
                # production, so the p99 gate only catches the pathological (the error-rate gate stays at 1%)
                cutover_max_p99_ms=REHEARSAL_MAX_P99_MS,
                cutover_dry_run_gates="", cutover_ramp_steps="1,5,25,50,100", cutover_routing=False,
                cutover_state_cache_seconds=0,
                # the rehearsal's own traffic (shadow, probes) is not a portal user: no per-caller rate limit
                rate_limit="1000000/minute", rate_limit_org="1000000/minute",
            )
        return self.settings

    def step_migrate(self) -> tuple[str, dict]:
        from rps_port import schema
        from rps_port.db import make_engine

        schema.upgrade(self.db_url)
        self.engine = self.stack.enter_context(_disposing(make_engine(self.db_url)))
        return f"{self.db_path} at {', '.join(sorted(schema.current(self.db_url)))}", {}

    def step_legacy_mongo(self) -> tuple[str, dict]:
        self.need("mongomock")
        import mongomock

        from rps_port.legacy.emulator_store import iter_documents
        from rps_port.legacy.quirks import COLLECTIONS

        self.mongo = mongomock.MongoClient(tz_aware=True)["rps"]
        counts = {}
        for c in COLLECTIONS:
            docs = list(iter_documents(self.data, c))
            if docs:
                self.mongo[c].insert_many(docs)
            counts[c] = len(docs)
        orgs = Counter(str(d["org"]) for d in self.mongo["orders"].find({}, {"org": 1}) if d.get("org"))
        from rps_port.ids import normalize_object_id

        self.org = normalize_object_id(orgs.most_common(1)[0][0])
        return "in-process MongoDB (mongomock) seeded from the dump: " + ", ".join(f"{n} {c}" for c, n in counts.items()), counts

    def step_serve(self) -> tuple[str, dict]:
        self.need("rps_port.legacy.emulator:create_legacy_app", "rps_port.api.app:create_app")
        from rps_port.api.app import create_app
        from rps_port.cutover.serving import serve_in_thread
        from rps_port.legacy.emulator import LegacyStore, create_legacy_app

        s = self._settings()
        self.legacy_store = LegacyStore(self.data)
        legacy_app = create_legacy_app(self.data, jwt_secret=self.jwt_secret, store=self.legacy_store)
        self.legacy_url = self.stack.enter_context(serve_in_thread(legacy_app))
        self.settings = s.model_copy(update={"legacy_url": self.legacy_url})
        self.new_url = self.stack.enter_context(serve_in_thread(create_app(self.settings)))
        routed = self.settings.model_copy(update={"cutover_routing": True})
        self.routed_url = self.stack.enter_context(serve_in_thread(create_app(routed)))
        return f"legacy emulator {self.legacy_url}, new API {self.new_url}, routed API {self.routed_url}", {}

    def step_backfill(self) -> tuple[str, dict]:
        self.need("rps_port.etl.backfill:run_backfill", "rps_port.etl.sources:open_source", "rps_port.etl.mapping:load_mapping")
        from rich.table import Table

        from rps_port.etl.backfill import run_backfill
        from rps_port.etl.mapping import load_mapping
        from rps_port.etl.sources import open_source

        self.mapping = load_mapping(secret=self._settings().legacy_secret.get_secret_value())
        source = open_source("mongodb://rehearsal", client=self.mongo.client, db="rps")
        total = sum(self.mongo[c].count_documents({}) for c in self.mapping.order())
        done = Counter()
        with self.say.progress("backfilling", total) as bar:
            def progress(ev: dict) -> None:
                if ev.get("event") == "batch":
                    done[ev["collection"]] = ev["loaded"] + ev["rejected"] + ev["skipped"]
                    bar(sum(done.values()), total)

            summary = run_backfill(self.engine, source, self.mapping, progress=progress)
        t = Table("collection", "source", "loaded", "rejected", "skipped", "balanced", title="Backfill reconciliation")
        for r in summary.reconciliations:
            t.add_row(r.collection, f"{r.source_total:,}", f"{r.loaded:,}", f"{r.rejected:,}", f"{r.skipped_total:,}",
                      "[green]yes[/green]" if r.balanced else "[red]NO[/red]")
        self.say.table(t)
        if summary.rejects_by_reason:
            self.say.say("    rejects by reason: " + "; ".join(
                f"{c}: " + ", ".join(f"{k} {v}" for k, v in reasons.items()) for c, reasons in summary.rejects_by_reason.items()))
        if not summary.balanced:
            raise StepFailed("the reconciliation does not balance: " + ", ".join(
                r.collection for r in summary.reconciliations if not r.balanced))
        loaded = sum(r.loaded for r in summary.reconciliations)
        with self.engine.connect() as conn:
            from sqlalchemy import text

            self.order_ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM orders WHERE org_id = :org AND deleted_at IS NULL ORDER BY id"), {"org": self.org})]
        return (f"{loaded:,} documents loaded, every collection reconciles (source = loaded + rejected + skipped)",
                summary.as_dict())

    def _plant_row_changed(self) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            oid = conn.execute(text("SELECT order_id FROM order_items ORDER BY order_id LIMIT 1")).scalar_one()
            price = conn.execute(text("SELECT unit_price FROM order_items WHERE order_id = :o AND position = 0"),
                                 {"o": oid}).scalar_one()
            conn.execute(text("UPDATE order_items SET unit_price = :p WHERE order_id = :o AND position = 0"),
                         {"p": format(Decimal(str(price)) + Decimal("0.01"), "f"), "o": oid})
        self.say.say(f"    [magenta]planted:[/magenta] order {oid} item 0 unit_price +0.01 in SQL")

    def legacy_write(self, collection: str, doc_id: Any, fields: dict[str, Any]) -> None:
        """A write by the legacy app: its MongoDB and the API the emulator serves both see it."""
        self.mongo[collection].update_one({"_id": doc_id}, {"$set": fields})
        store = getattr(self, "legacy_store", None)
        if store is not None:
            from rps_port.legacy.emulator_store import ref

            doc = store.collections[collection].by_id.get(ref(doc_id))
            if doc is not None:
                doc.update(fields)

    def _source(self) -> Any:
        from rps_port.etl.sources import open_source

        return open_source("mongodb://rehearsal", client=self.mongo.client, db="rps")

    def step_sync(self) -> tuple[str, dict]:
        self._need_etl("sync")
        from rps_port.etl.sync import run_watermark_sync

        # the legacy app keeps writing during the migration
        changed = []
        for doc in self.mongo["customers"].find({"deletedAt": None, "name": {"$type": "string"}}).limit(2):
            self.legacy_write("customers", doc["_id"], {"name": doc["name"] + " (renamed in legacy)",
                                                         "updatedAt": utcnow()})
            changed.append(f"customers/{doc['_id']}")
        result = run_watermark_sync(self.engine, self._source(), self.mapping)
        counts = result.counts  # documents the backfill rejected are seen again (no version in SQL) and re-rejected
        with self.engine.connect() as conn:
            from sqlalchemy import text

            missing = [c for c in changed if not conn.execute(
                text("SELECT 1 FROM customers WHERE id = :i AND name LIKE '%(renamed in legacy)'"),
                {"i": c.split("/")[1]}).first()]
        if missing:
            raise StepFailed("changes made in legacy did not reach SQL: " + ", ".join(missing))
        return (f"{len(changed)} legacy changes made during the migration applied by the watermark sync "
                f"({counts.upserted} upserted, {counts.rejected} still rejected, {counts.deleted} deleted, "
                f"lag {result.lag_seconds:.1f}s)", result.as_dict())

    def _need_etl(self, what: str) -> None:
        if self.mapping is None:
            raise Unavailable("needs the backfill")
        import importlib.util

        module = "rps_port.etl.sync" if what == "sync" else "rps_port.etl.verify"
        if importlib.util.find_spec(module) is None:
            label = "incremental sync" if what == "sync" else "row-by-row verify"
            raise Unavailable(f"the ETL's {label} ({module}, issue 4) is not in this build")

    def measure_lag(self) -> SyncLag:
        """How far SQL is behind legacy: the age of the oldest source change (version read through the
        mapping) that the target does not hold yet; 0 when every change is applied."""
        from datetime import datetime

        from sqlalchemy import text

        now, oldest = utcnow(), None
        for name in self.mapping.order():
            table = self.mapping.collection(name).table
            with self.engine.connect() as conn:
                held = {rid: v for rid, v in conn.execute(text(f"SELECT id, src_updated_at FROM {table}"))}  # noqa: S608
            for doc in self.mongo[name].find():
                try:
                    mapped = self.mapping.map_document(name, doc)
                except Exception:  # noqa: BLE001 - rejected documents are accounted for by the backfill
                    continue
                version = mapped.row.get("src_updated_at")
                if version is None:
                    continue
                version = ensure_utc(version)
                have = held.get(mapped.record_id)
                if have is not None:
                    have = ensure_utc(have if isinstance(have, datetime) else datetime.fromisoformat(str(have)))
                if mapped.record_id in held and have is not None and have >= version:
                    continue
                if oldest is None or version < oldest:
                    oldest = version
        lag = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        return SyncLag(lag, "oldest legacy change not yet in SQL", now)

    def step_lag(self) -> tuple[str, dict]:
        if self.mapping is None:
            raise Unavailable("needs the backfill")
        if "sync-lag" in self.plants:
            self._plant_sync_lag()
        self.evidence.lag = self.measure_lag()
        self.available["sync_lag"] = True
        bound = self._settings().cutover_max_sync_lag_seconds
        if self.evidence.lag.seconds > bound:
            raise StepFailed(f"target is {self.evidence.lag.seconds:,.0f}s behind the source (bound {bound:g}s): "
                             "changes in legacy MongoDB are not in SQL; run the sync")
        return f"SQL is {self.evidence.lag.seconds:.1f}s behind legacy ({self.evidence.lag.source})", {
            "lag_seconds": self.evidence.lag.seconds}

    def _plant_sync_lag(self) -> None:
        doc = next(d for d in self.mongo["customers"].find({"deletedAt": None, "name": {"$type": "string"}})
                   if "(renamed in legacy)" not in d["name"])  # a record the sync step did not just touch
        from datetime import timedelta

        # changed ten minutes ago in legacy, and the sync has not applied it
        self.legacy_write("customers", doc["_id"], {"name": "Changed After Sync",
                                                     "updatedAt": utcnow() - timedelta(minutes=10)})
        self.say.say(f"    [magenta]planted:[/magenta] customer {doc['_id']} changed in legacy and not synced")

    def step_verify(self) -> tuple[str, dict]:
        self._need_etl("verify")
        from rps_port.etl.verify import run_verify

        if "row-changed" in self.plants and not self.available.get("verify"):
            self._plant_row_changed()  # a row changed in SQL by something else than the ETL
        report = run_verify(self.engine, self._source(), self.mapping)
        checked = sum(max(c.expected_rows, c.source_documents) for c in report.collections)
        self.evidence.verify = VerifyResult(report.finished_at, len(report.differences), checked,
                                            f"etl verify {report.id}")
        self.available["verify"] = True
        if not report.clean:
            shown = "; ".join(f"{d.kind} {d.collection}/{d.record_id} {','.join(d.columns)}".rstrip()
                              for d in report.differences[:5])
            raise StepFailed(f"{len(report.differences)} difference(s) between MongoDB and SQL: {shown}")
        return f"{checked:,} records compared through the mapping: no missing, extra or different row", {
            "collections": [c.as_dict() for c in report.collections]}

    def step_shadow(self) -> tuple[str, dict]:
        self.need("rps_port.shadow.runner:run_shadow", "rps_port.shadow.corpus:sample_corpus")
        if not self.new_url:
            raise Unavailable("needs the served APIs")
        if self.mapping is None:
            raise Unavailable("needs the backfill (nothing to compare)")
        from rich.table import Table

        from rps_port.shadow.corpus import Principals, sample_corpus
        from rps_port.shadow.runner import ShadowConfig, run_shadow

        if "shadow-mismatch" in self.plants:
            self._plant_shadow_mismatch()
        corpus = sample_corpus(self.data, self.shadow_sample, seed=self.seed)
        with self.say.progress("shadow requests", len(corpus)) as bar:
            report = run_shadow(ShadowConfig(
                legacy_url=self.legacy_url, new_url=self.new_url, corpus=corpus,
                principals=Principals(secret=self.jwt_secret, issuer=self.settings.jwt_issuer,
                                      audience=self.settings.jwt_audience),
                max_mismatch_rate=REHEARSAL_MAX_MISMATCH, min_samples=20, source=str(self.data), sql_url=self.db_url,
                legacy_secret=self.settings.legacy_secret.get_secret_value(), progress=lambda d, t: bar(d, t),
            ))
        path = report.save(self.workdir / "shadow-report.json")
        self.artifacts["shadow report (JSON)"] = str(path)
        html = self._shadow_html(report)
        t = Table("endpoint", "compared", "mismatches", "upper bound", "verdict", title="Shadow: legacy vs new")
        for e in report.endpoints:
            style = {"pass": "green", "fail": "red"}.get(e.verdict, "yellow")
            t.add_row(e.endpoint, str(e.compared), str(e.mismatches), f"{e.upper_bound:.2%}", f"[{style}]{e.verdict}[/{style}]")
        self.say.table(t)
        for fp in report.fingerprints[:5]:
            self.say.say(f"    fingerprint {fp.endpoint} {fp.path} ({fp.kind}) x{fp.count}")
        try:
            from rps_port.shadow.store import gate_evidence, save_results

            save_results(report, self.db_url)
            ev = gate_evidence(report, html or str(path))
            self.evidence.shadow_stats = ShadowStats(ev["samples"], ev["mismatches"], ev["source"], ev["upper_bound"],
                                                     ev["report"])
        except ImportError:
            bound = max((e.upper_bound for e in report.endpoints), default=1.0)
            self.evidence.shadow_stats = ShadowStats(report.totals.compared, report.totals.mismatches,
                                                     f"shadow run {report.run_id}", bound, html or str(path))
        bound = self.evidence.shadow_stats.bound()
        self.available["shadow"] = True
        code = report.exit_code()
        detail = (f"{report.totals.compared} compared, {report.totals.mismatches} mismatches, worst upper bound "
                  f"{bound:.2%} (threshold {REHEARSAL_MAX_MISMATCH:.0%}); report {html or path}")
        if code == 1:
            raise StepFailed("mismatch rate above the threshold: " + detail)
        if code == 3:
            raise StepFailed("inconclusive (too few samples): " + detail)
        return detail, report.gate_summary()

    def _shadow_html(self, report: Any) -> str | None:
        try:
            from rps_port.shadow.render import write_html
        except ImportError:
            return None
        out = write_html(report, self.workdir / "shadow-report.html")
        self.artifacts["shadow report (HTML)"] = str(out)
        return str(out)

    def _plant_shadow_mismatch(self) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            n = conn.execute(text("UPDATE orders SET notes = 'planted shadow difference'")).rowcount
        self.say.say(f"    [magenta]planted:[/magenta] notes changed on {n} orders in SQL")

    # ------------------------------------------------------------------ the stage walk
    def probe(self) -> Metrics:
        """Client-side request metrics of the new side: reads of known orders, errors = 5xx."""
        import httpx

        ids = self.order_ids or ["000000000000000000000000"]
        latencies, errors = [], 0
        with httpx.Client(base_url=self.new_url, headers=self.headers(), timeout=10) as client:
            for i in range(PROBE_REQUESTS):
                started = time.perf_counter()
                try:
                    errors += client.get(f"/orders/{ids[i % len(ids)]}").status_code >= 500
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return Metrics(PROBE_REQUESTS, errors, round(p99, 1), "rehearsal probe (client-side, new API)")

    def expected_canary_side(self, percent: float) -> str:
        """Which side must serve the rehearsal's org at this canary share (its sha256 bucket decides)."""
        from rps_port.cutover.cohorts import CohortPolicy

        return "new" if CohortPolicy(percent, self.settings.cutover_cohort_by).contains(self.org) else "legacy"

    def served_by(self) -> str:
        import httpx

        r = httpx.get(f"{self.routed_url}/orders", params={"limit": 1}, headers=self.headers(), timeout=10)
        return r.headers.get("x-rps-served-by", "?")

    def controller_(self) -> Any:
        if self.controller is None:
            from rps_port.cutover.controller import Controller
            from rps_port.cutover.reverse import build_reverse_sync

            # Gates whose evidence step is not available are reported, not enforced (and say so).
            missing = [g for g, src in (("sync_lag", "sync_lag"), ("verify", "verify"), ("shadow", "shadow"))
                       if not self.available.get(src)]
            s = self.settings.model_copy(update={"cutover_dry_run_gates": ",".join(missing)})
            reverse = build_reverse_sync(s, self.engine, mongo_db=self.mongo) if self.mongo is not None else None
            self.controller = Controller(s, engine=self.engine, evidence=self.evidence, reverse_sync=reverse,
                                         actor="rps-port-rehearsal")
        return self.controller

    def advance(self, expect_serve: str) -> tuple[str, dict]:
        from rich.table import Table

        from rps_port.cutover.gates import Outcome

        if not self.routed_url:
            raise Unavailable("needs the served APIs")
        if self.mapping is not None:
            self.evidence.lag = self.measure_lag()
        from rps_port.cutover.sources import PrometheusEvidence, metrics_between

        # The new API's own metrics over the probe's window (the process also ran the backfill and the
        # shadow load, which say nothing about serving latency); the client-side probe when it has none.
        before = PrometheusEvidence(f"{self.new_url}/metrics").counts()
        probe = self.probe()
        after = PrometheusEvidence(f"{self.new_url}/metrics").counts()
        self.evidence.app_metrics = (metrics_between(before, after, source=f"prometheus {self.new_url}/metrics, "
                                                     "over the probe's window") if after else probe)
        ctl = self.controller_()
        move = ctl.advance(execute=True)
        t = Table("gate", "outcome", "enforced", "evidence", title=f"{move.from_stage} {move.from_percent:g}% -> "
                  f"{move.to_stage} {move.to_percent:g}%")
        for g in move.gates:
            style = {"passed": "green", "failed": "red"}.get(g.outcome.value, "yellow")
            t.add_row(g.gate, f"[{style}]{g.outcome.value}[/{style}]", "yes" if g.enforced else "no", g.message)
        self.say.table(t)
        gates = {g.gate: g.outcome.value for g in move.gates}
        if not move.applied:
            bad = [f"{g.gate} {g.outcome.value}: {g.message}" for g in move.gates if g.enforced and g.outcome != Outcome.PASSED]
            raise StepFailed(f"gate refused {move.to_stage}: " + "; ".join(bad or [move.message]))
        served = self.served_by()
        if served != expect_serve:
            raise StepFailed(f"stage {move.to_stage}: the routed API served from {served}, expected {expect_serve}")
        not_enforced = [g.gate for g in move.gates if not g.enforced]
        note = f" (not enforced, evidence step not available: {', '.join(not_enforced)})" if not_enforced else ""
        return (f"now {move.to_stage} {move.to_percent:g}%; org {self.org} is served by {served}, as its stage "
                f"and cohort bucket say{note}",
                {"gates": gates, "served_by": served})

    def step_live_writes(self) -> tuple[str, dict]:
        import httpx

        if not self.routed_url:
            raise Unavailable("needs the served APIs")
        if self.controller_().state().stage != "live":
            raise StepFailed("not live")
        from sqlalchemy import text

        with self.engine.connect() as conn:
            cust = conn.execute(text("SELECT id FROM customers WHERE org_id = :o AND deleted_at IS NULL LIMIT 1"),
                                {"o": self.org}).scalar()
            placed = conn.execute(text("SELECT id FROM orders WHERE org_id = :o AND status = 'placed' "
                                       "AND deleted_at IS NULL LIMIT 1"), {"o": self.org}).scalar()
        made = []
        with httpx.Client(base_url=self.routed_url, timeout=10) as client:
            if cust is None:
                r = client.post("/customers", json={"name": "Rehearsal Customer", "email": "rehearsal@example.com"},
                                headers=self.headers(**{"Idempotency-Key": uuid.uuid4().hex}))
                if r.status_code != 201:
                    raise StepFailed(f"POST /customers answered {r.status_code}: {r.text[:200]}")
                cust = r.json()["id"]
                made.append(("customers", cust))
            r = client.post("/orders", json={"customer_id": cust, "currency": "EUR", "notes": "written while live",
                                             "items": [{"sku": "RH-1", "name": "Rehearsal widget", "quantity": 2,
                                                        "unit_price": "12.50"}]},
                            headers=self.headers(**{"Idempotency-Key": uuid.uuid4().hex}))
            if r.status_code != 201 or r.headers.get("x-rps-served-by") != "new":
                raise StepFailed(f"POST /orders answered {r.status_code} from {r.headers.get('x-rps-served-by')}: {r.text[:200]}")
            made.append(("orders", r.json()["id"]))
            if placed:
                r = client.patch(f"/orders/{placed}", json={"status": "paid"},
                                 headers=self.headers(**{"Idempotency-Key": uuid.uuid4().hex}))
                if r.status_code != 200:
                    raise StepFailed(f"PATCH /orders/{placed} answered {r.status_code}: {r.text[:200]}")
                made.append(("orders", placed))
        self.live_writes = made
        if "lost-write" in self.plants:
            self._plant_lost_write(made[-1 if len(made) == 1 else -2])
        return f"{len(made)} writes on the new side while live: " + ", ".join(f"{c}/{i}" for c, i in made), {
            "writes": [f"{c}/{i}" for c, i in made]}

    def step_reverse_sync_live(self) -> tuple[str, dict]:
        import httpx

        if self.mongo is None or self.mapping is None:
            raise Unavailable("needs the legacy MongoDB and the mapping")
        move = self.controller_().keep_legacy_in_step(execute=True)
        rs = move.reverse_sync
        if rs.conflicts or rs.errors:
            raise StepFailed(f"reverse sync while live: {rs.summary()}: " + "; ".join((rs.conflicts + rs.errors)[:3]))
        # one more write on a record legacy already has: the rollback's reverse sync must carry it too
        again = next((rid for c, rid in self.live_writes if c == "orders" and rid != self.live_writes[0][1]), None)
        if again:
            r = httpx.patch(f"{self.routed_url}/orders/{again}", json={"status": "fulfilled"}, timeout=10,
                            headers=self.headers(**{"Idempotency-Key": uuid.uuid4().hex}))
            if r.status_code != 200:
                raise StepFailed(f"PATCH /orders/{again} answered {r.status_code}: {r.text[:200]}")
        return (f"legacy kept in step while live: {rs.summary()}"
                + (f"; then order {again} fulfilled on the new side" if again else ""), rs.to_json())

    def _plant_lost_write(self, record: tuple[str, str]) -> None:
        from datetime import timedelta

        from sqlalchemy import text

        collection, rid = record
        table = self.mapping.collection(collection).table
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM outbox WHERE aggregateid = :i"), {"i": rid})
            conn.execute(text(f"UPDATE {table} SET updated_at = :t WHERE id = :i"),
                         {"t": (utcnow() - timedelta(days=3650)).replace(tzinfo=None), "i": rid})
        self.say.say(f"    [magenta]planted:[/magenta] {collection}/{rid} hidden from reverse sync (no outbox event, old updated_at)")

    def step_rollback(self) -> tuple[str, dict]:
        if self.mongo is None or self.mapping is None:
            raise Unavailable("needs the legacy MongoDB and the mapping")
        ctl = self.controller_()
        dry = ctl.rollback(to="legacy")
        self.say.say(f"    dry run: {dry.reverse_sync.summary() if dry.reverse_sync else dry.message}")
        move = ctl.rollback(to="legacy", execute=True)
        rs = move.reverse_sync
        if not move.applied:
            raise StepFailed(move.message)
        if rs is not None and rs.conflicts:
            raise StepFailed(f"{len(rs.conflicts)} conflict(s): " + "; ".join(rs.conflicts[:3]))
        served = self.served_by()
        if served != "legacy":
            raise StepFailed(f"after rollback the routed API still serves from {served}")
        return (f"back to legacy; reverse sync {rs.summary() if rs else '-'}; portal requests served by {served}",
                rs.to_json() if rs else {})

    def step_after_rollback(self) -> tuple[str, dict]:
        if self.mongo is None or self.mapping is None:
            raise Unavailable("needs the legacy MongoDB and the mapping")
        from bson import ObjectId
        from sqlalchemy import text

        from rps_port.cutover.reverse import _rows, _same

        lost, differ = [], []
        for name in self.mapping.order():
            table = self.mapping.collection(name).table
            with self.engine.connect() as conn:
                sql_ids = set(conn.scalars(text(f"SELECT id FROM {table}")))
            legacy_ids = {str(d["_id"]) for d in self.mongo[name].find({}, {"_id": 1})}
            lost += [f"{name}/{i}" for i in sorted(sql_ids - legacy_ids)]
        for collection, rid in dict.fromkeys(self.live_writes):
            doc = self.mongo[collection].find_one({"_id": ObjectId(rid)})
            parent, children = _rows(self.engine, self.mapping, collection, rid)
            if doc is not None and not _same(self.mapping, collection, doc, parent, children):
                differ.append(f"{collection}/{rid}")
        if lost or differ:
            raise StepFailed("writes lost on rollback: " + ", ".join(lost[:5]) + (" differ: " + ", ".join(differ) if differ else ""))
        detail = (f"every SQL record exists in legacy MongoDB; the {len(self.live_writes)} writes made while live "
                  "read back through the mapping equal to SQL")
        return detail, {"lost": lost, "differ": differ}

    def step_audit(self) -> tuple[str, dict]:
        ctl = self.controller_()
        check = ctl.verify_audit()
        self.artifacts["audit log"] = str(ctl.audit.path)
        if not check.ok:
            raise StepFailed(f"audit log: {check.problem}")
        return f"{check.entries} hash-chained entries intact in {ctl.audit.path}", {"entries": check.entries}

    # ------------------------------------------------------------------ order
    def plan(self) -> list[tuple[str, str, Callable[[], tuple[str, dict]]]]:
        steps: list[tuple[str, str, Callable[[], tuple[str, dict]]]] = [
            ("generate", "Generate the legacy data (mongodump layout)", self.step_generate),
            ("migrate", "Create the target schema (SQLite)", self.step_migrate),
            ("legacy-mongo", "Start the legacy MongoDB (in-process)", self.step_legacy_mongo),
            ("serve", "Serve the legacy emulator and the new API", self.step_serve),
            ("backfill", "Backfill MongoDB -> SQL", self.step_backfill),
            ("sync", "Incremental sync", self.step_sync),
            ("sync-lag", "Measure sync lag", self.step_lag),
            ("verify", "Verify row by row", self.step_verify),
            ("shadow", "Shadow: legacy vs new API", self.step_shadow),
            ("advance-shadow", "Cutover: legacy -> shadow", lambda: self.advance("legacy")),
        ]
        ramp = self._settings().cutover_ramp_steps
        from rps_port.cutover.cohorts import parse_steps

        for pct in parse_steps(ramp):
            steps.append((f"advance-canary-{pct:g}", f"Cutover: canary {pct:g}%",
                          lambda pct=pct: self.advance(self.expected_canary_side(pct))))
        steps += [
            ("advance-live", "Cutover: canary -> live", lambda: self.advance("new")),
            ("live-writes", "Write on the new side while live", self.step_live_writes),
            ("reverse-sync-live", "Keep legacy in step while live (reverse sync)", self.step_reverse_sync_live),
            ("rollback", "Roll back from live to legacy (reverse sync)", self.step_rollback),
            ("verify-after-rollback", "Check no write was lost on rollback", self.step_after_rollback),
            ("verify-again", "Verify again after the rollback", self.step_verify),
            ("audit", "Verify the audit log's hash chain", self.step_audit),
        ]
        return steps


@contextmanager
def _logs_to(path: Path) -> Iterator[None]:
    """Server logs (a 500's traceback, access lines) go to a file, not into the story."""
    import logging

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    saved = []
    for name in ("rps_port", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, list(logger.handlers)))
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate, handlers in saved:
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()


@contextmanager
def _disposing(engine: Any) -> Iterator[Any]:
    try:
        yield engine
    finally:
        engine.dispose()


def run_rehearsal(
    *,
    workdir: Path | None = None,
    plants: set[str] | None = None,
    customers: int = 200,
    story: Any = None,
    plain: bool | None = None,
    seed: int = 1,
    shadow_sample: int = SHADOW_SAMPLE_PER_COLLECTION,
) -> RehearsalResult:
    """Run every step in order; stop at the first failure (later steps: not run)."""
    from rps_port.cli.common import is_ci

    plants = set(plants or ())
    unknown = plants - set(PLANTS)
    if unknown:
        raise ValueError(f"unknown plant {', '.join(sorted(unknown))}; choose from {', '.join(PLANTS)}")
    temp = workdir is None
    root = Path(tempfile.mkdtemp(prefix="rps-port-dry-run-")) if temp else Path(workdir)
    if not temp and root.exists():
        for name in ("legacy", "rps-port.db", "rps-port.db-wal", "rps-port.db-shm", "audit.jsonl",
                     "shadow-report.json", "shadow-report.html"):
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    narrator = Narrator(story, plain=is_ci() if plain is None else plain)
    log_path = root / "rehearsal.log"
    r = Rehearsal(root, plants=plants, customers=customers, narrator=narrator, seed=seed, shadow_sample=shadow_sample)
    result = RehearsalResult(root, plants=sorted(plants))
    started = time.monotonic()
    failed: str | None = None
    r.artifacts["server log"] = str(log_path)
    with _logs_to(log_path), r.stack:
        for index, (name, title, fn) in enumerate(r.plan(), start=1):
            if failed:
                res = StepResult(name, title, "skipped", f"not run: step {failed} failed")
            else:
                narrator.begin(index, title)
                t0 = time.monotonic()
                try:
                    detail, data = fn()
                    res = StepResult(name, title, "passed", detail, data=data)
                except Unavailable as exc:
                    res = StepResult(name, title, "skipped", f"skipped (not available): {exc}")
                except StepFailed as exc:
                    res = StepResult(name, title, "failed", str(exc))
                    failed = name
                except Exception as exc:  # a crash is a failure of this step, with its reason
                    res = StepResult(name, title, "failed", f"{type(exc).__name__}: {exc}")
                    failed = name
                res.seconds = time.monotonic() - t0
            result.steps.append(res)
            narrator.step(res, index)
    result.seconds = time.monotonic() - started
    result.artifacts = r.artifacts
    return result


def write_junit(result: RehearsalResult, path: Path) -> Path:
    """One testcase per step: failures and skips carry their reason."""
    from xml.etree import ElementTree as ET

    counts = result.counts()
    suite = ET.Element("testsuite", name="rps-port cutover dry-run", tests=str(len(result.steps)),
                       failures=str(counts.get("failed", 0)), skipped=str(counts.get("skipped", 0)),
                       errors="0", time=f"{result.seconds:.3f}")
    for step in result.steps:
        case = ET.SubElement(suite, "testcase", classname="cutover.dry_run", name=step.name, time=f"{step.seconds:.3f}")
        if step.status == "failed":
            ET.SubElement(case, "failure", message=step.detail[:500]).text = step.detail
        elif step.status == "skipped":
            ET.SubElement(case, "skipped", message=step.detail[:500])
        else:
            ET.SubElement(case, "system-out").text = step.detail
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
