"""SendGrid v3 Mail Send (`POST /v3/mail/send`, bearer API key, JSON); 202 with X-Message-Id."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from rps_port.integrations.http import RetryPolicy, post_with_retries


@dataclass
class Email:
    to: str
    subject: str
    text: str
    html: str | None = None
    to_name: str | None = None
    # Stable per (handler, event): sent as a custom arg and header so a duplicate can be recognised.
    idempotency_key: str | None = None
    categories: list[str] = field(default_factory=list)


class SendGridClient:
    provider = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.sendgrid.com",
        from_email: str = "orders@example.com",
        from_name: str | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.from_email = from_email
        self.from_name = from_name
        self.policy = policy or RetryPolicy()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "rps-port"},
            transport=transport,
        )

    def build_body(self, mail: Email) -> dict:
        to = {"email": mail.to} | ({"name": mail.to_name} if mail.to_name else {})
        sender = {"email": self.from_email} | ({"name": self.from_name} if self.from_name else {})
        content = [{"type": "text/plain", "value": mail.text}]
        if mail.html:
            content.append({"type": "text/html", "value": mail.html})
        body: dict = {
            "personalizations": [{"to": [to]}],
            "from": sender,
            "subject": mail.subject,
            "content": content,
        }
        if mail.idempotency_key:
            # Per-personalization custom_args is an object; the top-level one is a string in the spec.
            body["personalizations"][0]["custom_args"] = {"idempotency_key": mail.idempotency_key}
            body["headers"] = {"X-Idempotency-Key": mail.idempotency_key}
        if mail.categories:
            body["categories"] = mail.categories
        return body

    def send(self, mail: Email) -> str | None:
        """Send; returns SendGrid's message id (X-Message-Id) or None when the answer has none."""
        response = post_with_retries(
            self._client, self.provider, "/v3/mail/send", policy=self.policy, json=self.build_body(mail)
        )
        return response.headers.get("X-Message-Id")

    def close(self) -> None:
        self._client.close()
