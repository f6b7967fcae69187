"""Twilio Messages (`POST /2010-04-01/Accounts/{Sid}/Messages.json`, basic auth, form-encoded); 201."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from rps_port.integrations.http import RetryPolicy, post_with_retries


@dataclass
class SMS:
    to: str
    body: str
    # Stable per (handler, event): Twilio deduplicates requests carrying the same token.
    idempotency_key: str | None = None


@dataclass
class SentSMS:
    sid: str | None
    num_segments: int | None
    status: str | None


class TwilioClient:
    provider = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = "https://api.twilio.com",
        from_number: str = "+15005550006",
        messaging_service_sid: str | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.policy = policy or RetryPolicy()
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=(account_sid, auth_token),
            headers={"User-Agent": "rps-port"},
            transport=transport,
        )

    @property
    def path(self) -> str:
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def build_form(self, sms: SMS) -> dict[str, str]:
        form = {"To": sms.to, "Body": sms.body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number
        return form

    def send(self, sms: SMS) -> SentSMS:
        headers = {"I-Twilio-Idempotency-Token": sms.idempotency_key} if sms.idempotency_key else {}
        response = post_with_retries(
            self._client, self.provider, self.path, policy=self.policy, data=self.build_form(sms), headers=headers
        )
        try:
            data = response.json()
        except ValueError:
            data = {}
        segments = data.get("num_segments")
        return SentSMS(
            sid=data.get("sid"),
            num_segments=int(segments) if segments not in (None, "") else None,
            status=data.get("status"),
        )

    def close(self) -> None:
        self._client.close()
