"""The transcribe agents: ``messages.normalized`` → ``messages.transcribed``.

Two agents, so that text never waits behind audio:

- ``transcribe`` reads ``messages.normalized``. A message without audio to transcribe goes
  straight to ``messages.transcribed`` (milliseconds); a message with audio is forwarded,
  unchanged and with the same key, to the internal topic ``transcribe.audio``.
- ``transcribe-audio`` reads ``transcribe.audio``, transcribes on a thread pool
  (``transcribe.concurrency`` recordings at once) and writes ``messages.transcribed``.

Both are plain at-least-once faust agents: an input offset is committed only after the
record it produced (forwarded or transcribed) was flushed by the producer, so a crash at
any point replays, never loses. Redelivery is harmless: transcripts are keyed by
attachment URI and a transcribed attachment is never transcribed twice.

The price is per-sender order: a text sent after a voice note by the same sender reaches
``messages.transcribed`` first. That is the point (a 2-minute recording must not hold up
the chat behind it); later stages order by ``received_at`` where it matters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import mode
from faust.types import StreamT

from pipeline.envelope import Attachment, Envelope, Transcript
from pipeline.errors import BlobNotFound
from pipeline.stage import Output, RecordMeta, StageContext
from pipeline.topics import Topic
from pipeline.transcribe import core
from pipeline.transcribe.engine import Transcriber
from pipeline.transcribe.errors import AudioError, ModelUnavailable
from pipeline.transcribe.language import AccountLanguages, identity_language

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


def register(ctx: StageContext) -> None:
    config = ctx.settings.transcribe
    metrics = ctx.stage_metrics(STAGE)
    transcriber = Transcriber(config)
    ctx.app.service(TranscriberService(transcriber))  # type: ignore[arg-type]
    metrics.info.update({"model": config.model, "concurrency": config.concurrency})
    languages: AccountLanguages | None = None
    if config.language_from_directory:
        languages = AccountLanguages(ctx.settings)
        ctx.app.task(languages.follow)

    async def route(envelope: Envelope, meta: RecordMeta) -> Sequence[Output]:
        """Text passes through; audio goes to the transcribers' queue."""
        key = _key(meta, envelope)
        if core.needs_transcriber(envelope):
            metrics.count("queued.audio")
            return [Output(Topic.TRANSCRIBE_AUDIO, key, envelope)]
        missing = [core.unavailable_transcript(a, config.model)
                   for a in core.unavailable_audio(envelope)]
        env = envelope
        if missing:
            env = core.with_transcripts(envelope, missing)
            metrics.count("attachment_unavailable", len(missing))
        metrics.count("passed_through")
        ctx.mark(env, STAGE)
        return [Output(Topic.TRANSCRIBED, key, env)]

    async def transcribe_one(attachment: Attachment, account_language: str | None) -> Transcript:
        assert attachment.uri is not None
        try:
            data = await ctx.blobs.aget(attachment.uri)
        except BlobNotFound as exc:  # BlobStoreUnavailable propagates: the stage retries
            metrics.count("error.blob_missing")
            return core.failed_transcript(attachment, f"blob_missing: {exc}", config.model)
        started = time.perf_counter()
        try:
            recognition = await transcriber.transcribe(data, account_language)
        except AudioError as exc:
            metrics.count(f"error.{exc.code}")
            return core.failed_transcript(attachment, exc.describe(), config.model)
        except ModelUnavailable:
            raise  # an operations problem, not a verdict on the audio: the stage retries
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
        account_language = (languages.language_of(envelope) if languages is not None
                            else identity_language(envelope))
        for attachment in core.pending_audio(envelope):
            transcripts.append(await transcribe_one(attachment, account_language))
        log.info("event=transcribed message_id=%s attachments=%d errors=%d", envelope.id,
                 len(transcripts), sum(1 for t in transcripts if t.error))
        env = ctx.mark(core.with_transcripts(envelope, transcripts), STAGE)
        return [Output(Topic.TRANSCRIBED, _key(meta, envelope), env)]

    async def audio_agent(stream: StreamT) -> None:
        # A batch of at most `concurrency` recordings is transcribed at once; each result is
        # sent as soon as it is ready, and faust acknowledges the batch after the loop body,
        # i.e. after every output was queued (committed once flushed): at-least-once.
        batches = stream.take_events(  # type: ignore[attr-defined]
            config.concurrency, within=ctx.settings.worker.batch_within_seconds)
        async for events in batches:
            await asyncio.gather(*(
                ctx.process_event(STAGE, Topic.TRANSCRIBE_AUDIO, event, transcribe_message,
                                  in_counter="in.audio")
                for event in events))

    ctx.envelope_agent(STAGE, Topic.NORMALIZED, route)
    ctx.app.agent(ctx.topic(Topic.TRANSCRIBE_AUDIO), name=f"{STAGE}-audio")(audio_agent)
