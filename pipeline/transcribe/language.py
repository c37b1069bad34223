"""The customer's language, for the transcriber: from the envelope's identity.

Whisper base misdetects phone-band French (Thai, English); the account's language from the
directory is a better prior than any detection. Identification runs before transcription
(the intake hop), so ``envelope.identity`` carries the account's language. An unknown
sender's recording never reaches the transcriber (quarantined first); an identified
sender whose account has no language gets the configured list (``transcribe.languages``).
"""

from __future__ import annotations

from pipeline.envelope import Envelope


def identity_language(envelope: Envelope) -> str | None:
    """The account language identification put on the envelope, if any."""
    identity = envelope.identity
    if identity is not None and identity.identified and identity.language:
        return identity.language
    return None
