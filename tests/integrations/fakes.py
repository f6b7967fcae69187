"""Local HTTP fakes of SendGrid and Twilio that validate every request against the providers'
own OpenAPI documents (../shared/specs beside the repo) and answer with the shapes they define.

Each fake is a real HTTP server on 127.0.0.1 in a thread. `script` queues scripted answers
(e.g. a 429 with Retry-After, a 503) served before the normal ones; `down_for(n)` answers 503 to
the next n requests. Twilio's fake honours `I-Twilio-Idempotency-Token` like Twilio does: a
repeated token returns the first message instead of sending another, so `effective` counts what
a customer would actually receive.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters

SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs"
SENDGRID_SPEC = SPECS / "sendgrid_mail_v3.json"
TWILIO_SPEC = SPECS / "twilio_api_v2010.json"


@lru_cache(maxsize=4)
def load_spec(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def openapi(path: Path) -> OpenAPI:
    return OpenAPI.from_dict(load_spec(path), config=Config(spec_validator_cls=None))


class _SpecRequest:
    """The request protocol openapi-core validates."""

    def __init__(self, host_url: str, path: str, method: str, headers: dict[str, str], body: bytes, ctype: str):
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body = body
        self.content_type = ctype
        self.parameters = RequestParameters(header=httpx.Headers(headers), query={}, cookie={})

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


def contract_errors(spec_path: Path, method: str, path: str, headers: dict[str, str], body: bytes) -> list[str]:
    """Why the provider's spec would reject this request ([] when it accepts it)."""
    spec = load_spec(spec_path)
    errors: list[str] = []
    ctype = headers.get("content-type", "").split(";")[0].strip()
    schemes = spec["components"]["securitySchemes"]
    auth = headers.get("authorization", "")
    for requirement in spec.get("security", []):
        for name in requirement:
            scheme = schemes[name]["scheme"].lower()
            if not auth.lower().startswith(scheme + " ") or len(auth.split(" ", 1)[1].strip()) == 0:
                errors.append(f"auth: expected HTTP {scheme} credentials")
    host = spec["servers"][0]["url"]
    try:
        openapi(spec_path).validate_request(_SpecRequest(host, path, method, headers, body, ctype))
    except Exception as exc:  # openapi-core raises one exception summarising what is wrong
        cause = exc.__cause__
        errors.append(f"{type(exc).__name__}: {exc}" + (f" ({cause})" if cause else ""))
    return errors


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    errors: list[str]

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Fake:
    spec_path: Path

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[Scripted] = deque()
        self._down = 0
        self._lock = threading.Lock()
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = fake._answer("POST", self.path, headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> _Fake:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def down_for(self, n: int) -> None:
        with self._lock:
            self._down = n

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        errors = contract_errors(self.spec_path, method, path, headers, body)
        with self._lock:
            if errors:
                status, payload, extra = 400, self.error_body(errors[0]), {}
            elif self._down > 0:
                self._down -= 1
                status, payload, extra = 503, self.error_body("service unavailable"), {}
            elif self.script:
                s = self.script.popleft()
                status, payload, extra = s.status, s.body, s.headers
            else:
                status, payload, extra = self.accept(headers, body)
            self.requests.append(Recorded(method, path, headers, body, status, errors))
        return status, payload, extra

    # overridden per provider
    def accept(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        raise NotImplementedError

    def error_body(self, message: str) -> Any:
        raise NotImplementedError

    @property
    def contract_violations(self) -> list[str]:
        return [e for r in self.requests for e in r.errors]

    @property
    def accepted(self) -> list[Recorded]:
        return [r for r in self.requests if 200 <= r.status < 300]


def _sendgrid_key(body: dict[str, Any]) -> str | None:
    personalization = (body.get("personalizations") or [{}])[0]
    return (personalization.get("custom_args") or {}).get("idempotency_key")


class FakeSendGrid(_Fake):
    spec_path = SENDGRID_SPEC

    def __init__(self) -> None:
        super().__init__()
        self.by_key: dict[str, str] = {}

    def accept(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        # 202 Accepted, no body (the spec), plus the X-Message-Id header SendGrid sends.
        key = _sendgrid_key(json.loads(body))
        message_id = self.by_key.setdefault(key, uuid.uuid4().hex[:22]) if key else uuid.uuid4().hex[:22]
        return 202, None, {"X-Message-Id": message_id}

    def error_body(self, message: str) -> Any:
        return {"errors": [{"message": message, "field": None}]}

    @property
    def effective(self) -> set[str]:
        """Distinct emails a recipient would get (one per idempotency key)."""
        return {_sendgrid_key(r.json()) or str(id(r)) for r in self.accepted}


class FakeTwilio(_Fake):
    spec_path = TWILIO_SPEC

    def __init__(self) -> None:
        super().__init__()
        self.by_token: dict[str, dict[str, Any]] = {}

    def accept(self, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict]:
        token = headers.get("i-twilio-idempotency-token")
        if token and token in self.by_token:
            return 201, self.by_token[token], {}
        op = load_spec(TWILIO_SPEC)["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]
        example = dict(op["responses"]["201"]["content"]["application/json"]["examples"]["create"]["value"])
        form = dict(parse_qsl(body.decode()))
        from rps_port.usage.segments import sms_segments

        example.update(
            sid="SM" + uuid.uuid4().hex,
            to=form["To"],
            body=form.get("Body", ""),
            status="queued",
            num_segments=str(sms_segments(form.get("Body", ""))),
        )
        if "From" in form:
            example["from"] = form["From"]
        if token:
            self.by_token[token] = example
        return 201, example, {}

    def error_body(self, message: str) -> Any:
        return {"code": 21211, "message": message, "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}

    @property
    def effective(self) -> set[str]:
        """Distinct messages sent (Twilio returns the first message for a repeated token)."""
        return {r.headers.get("i-twilio-idempotency-token") or str(id(r)) for r in self.accepted}
