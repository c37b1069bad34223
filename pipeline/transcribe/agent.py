"""The transcribe step, first of the transcription hop (``transcribe.audio``, key: account).

Only identified messages with audio get here: the intake hop judged them on what needs
no content first, so an unknown sender's voice note never costs a transcription, and the
identity carries the account's language. ``transcribe.concurrency`` recordings are
transcribed at once (a thread pool); each result goes on, through the spam filter's content
checks, as soon as it is ready. The hop is at-least-once: an input offset is committed only
after what it produced was flushed, so a crash replays, never loses. Redelivery is
harmless: transcripts are keyed by attachment URI and a transcribed attachment is never
transcribed twice.

Text never waits behind audio: it leaves the intake hop directly, so a text sent after a
voice note by the same sender may reach ``messages.accepted`` first (later stages order by
``received_at`` where it matters).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import mode

from pipeline.envelope import Attachment, Envelope, Transcript
from pipeline.errors import BlobNotFound
from pipeline.stage import Output, RecordMeta, StageContext, Step
from pipeline.topics import Topic
from pipeline.transcribe import core
from pipeline.transcribe.config import TranscribeConfig
from pipeline.transcribe.engine import Transcriber
from pipeline.transcribe.errors import AudioError, ModelUnavailable
from pipeline.transcribe.language import identity_language

log = logging.getLogger(__name__)

STAGE = "transcribe"


class TranscriberService(mode.Service):
    """Loads the model when the worker starts, off the loop, without delaying readiness."""

    def __init__(self, transcriber: Transcriber, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.transcriber = transcriber

    async def on_start(self) -> None:
        if self.transcriber.config.preload:
            self.add_future(self._preload())

    async def _preload(self) -> None:
        try:
            await self.transcriber.aload()
        except ModelUnavailable as exc:
            # Not fatal: text still flows; audio messages are dead-lettered (replayable).
            log.error("event=model_load_failed model=%s error=%s",
                      self.transcriber.config.model, exc)


def _key(meta: RecordMeta, envelope: Envelope) -> str:
    return meta.key.decode("utf-8", "replace") if meta.key is not None else envelope.sender_key


def build(ctx: StageContext) -> Step:
    config = ctx.section(STAGE, TranscribeConfig)
    metrics = ctx.stage_metrics(STAGE)
    transcriber = Transcriber(config)
    ctx.service(TranscriberService(transcriber))
    metrics.info.update({"model": config.model, "concurrency": config.concurrency})

    async def transcribe_one(attachment: Attachment, account_language: str | None) -> Transcript:
        assert attachment.uri is not None
        try:
            data = await ctx.blobs.aget(attachment.uri)
        except BlobNotFound as exc:  # BlobStoreUnavailable propagates: the hop retries
            metrics.count("error.blob_missing")
            return core.failed_transcript(attachment, f"blob_missing: {exc}", config.model)
        started = time.perf_counter()
        try:
            recognition = await transcriber.transcribe(data, account_language)
        except AudioError as exc:
            metrics.count(f"error.{exc.code}")
            return core.failed_transcript(attachment, exc.describe(), config.model)
        except ModelUnavailable:
            raise  # an operations problem, not a verdict on the audio: the hop retries
        except Exception as exc:  # a decoder or model failure on this one file
            metrics.count("error.transcription_failed")
            return core.failed_transcript(
                attachment, f"transcription_failed: {type(exc).__name__}: {exc}"[:300],
                config.model)
        transcript = core.summarise(recognition, attachment, config.model,
                                    config.min_speech_seconds)
        metrics.count("no_speech" if transcript.no_speech else "transcribed")
        for flag in transcript.flags:
            metrics.count(f"flag.{flag}")
        if transcript.language_source:
            metrics.count(f"language.{transcript.language_source}")
        metrics.count("audio_ms", int(recognition.duration_s * 1000))
        metrics.count("inference_ms", int((time.perf_counter() - started) * 1000))
        return transcript

    async def transcribe_message(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        transcripts = [core.unavailable_transcript(a, config.model)
                       for a in core.unavailable_audio(envelope)]
        if transcripts:
            metrics.count("attachment_unavailable", len(transcripts))
        account_language = identity_language(envelope)
        for attachment in core.pending_audio(envelope):
            transcripts.append(await transcribe_one(attachment, account_language))
        log.info("event=transcribed message_id=%s attachments=%d errors=%d", envelope.id,
                 len(transcripts), sum(1 for t in transcripts if t.error))
        env = ctx.mark(core.with_transcripts(envelope, transcripts), STAGE)
        return [Output(Topic.TRANSCRIBED, _key(meta, envelope), env)]

    return Step(STAGE, transcribe_message, parallel=config.concurrency)
