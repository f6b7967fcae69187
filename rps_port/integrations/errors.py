"""How a provider call failed: worth retrying later (transient) or not as is (permanent)."""

from __future__ import annotations


class ProviderError(RuntimeError):
    def __init__(self, provider: str, message: str, *, status_code: int | None = None, detail: str = "") -> None:
        self.provider = provider
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{provider}: {message}" + (f" ({detail})" if detail else ""))


class TransientProviderError(ProviderError):
    """429, 5xx, timeout or connection failure that outlived the client's retries."""


class PermanentProviderError(ProviderError):
    """A 4xx the provider will answer the same way again (bad request, auth, forbidden)."""
