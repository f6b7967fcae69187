"""Provider clients (SendGrid, Twilio) on httpx with tenacity retries."""

from rps_port.integrations.errors import PermanentProviderError, ProviderError, TransientProviderError

__all__ = ["PermanentProviderError", "ProviderError", "TransientProviderError"]
