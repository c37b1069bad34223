"""The voice line's contract: business hours, the TwiML for a call, voicemail envelopes.

Pure functions (the clock is passed in). How a call becomes a message:

* a recording with sound → ``RecordingStatus=completed`` callback → envelope with the audio,
  ``source_id`` = RecordingSid;
* a call that leaves no usable recording → an envelope *without* audio, ``source_id`` =
  CallSid, ``x-voicemail-recording`` saying why (``absent``: Twilio heard only silence,
  ``empty``: zero-length, ``failed``, ``none``: the caller hung up before the beep). It is
  produced by whichever callback learns it first (recording callback ``absent``/``failed``/
  zero duration, or the call status callback finding no recording); both use the CallSid,
  so ingest keeps one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from twilio.twiml.voice_response import VoiceResponse

from connectors.twilio.config import BusinessHours, VoiceConfig
from pipeline.envelope import Channel, Envelope, Sender
from pipeline.errors import InvalidPayload

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Call statuses after which nothing more happens on the call.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "canceled", "failed"})


def is_open(now: datetime, hours: BusinessHours) -> bool:
    """Whether the line is staffed at ``now`` (an aware datetime)."""
    local = now.astimezone(ZoneInfo(hours.timezone))
    if local.date().isoformat() in hours.closed_dates:
        return False
    if _WEEKDAYS[local.weekday()] not in hours.days:
        return False
    opens, closes = hours.opening()
    return opens <= local.time().replace(tzinfo=None) < closes


def incoming_call_twiml(config: VoiceConfig, *, open_now: bool, recording_callback: str,
                        record_done: str) -> str:
    """Greeting, then <Record> with a beep, a maximum length and the status callback."""
    response = VoiceResponse()
    greeting = config.greeting if open_now else config.greeting_closed
    say_options = {"language": config.language}
    if config.say_voice:
        say_options["voice"] = config.say_voice
    response.say(greeting, **say_options)
    response.record(
        action=record_done, method="POST",
        max_length=config.max_length_seconds, timeout=config.silence_timeout_seconds,
        play_beep=True, trim="trim-silence",
        recording_status_callback=recording_callback,
        recording_status_callback_method="POST",
        # "absent": Twilio tells us when the caller left only silence (no recording kept).
        recording_status_callback_event="completed absent",
    )
    # Reached only when <Record> heard nothing: hang up (the callbacks report the call).
    response.hangup()
    return str(response)


def hang_up_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def recording_callback_query(form: Mapping[str, str], open_now: bool) -> str:
    """What the recording callback must know that Twilio does not send it: the caller."""
    params = {"caller": form.get("From", ""), "line": form.get("To", ""),
              "hours": "open" if open_now else "closed"}
    if form.get("CallerName"):
        params["caller_name"] = form["CallerName"]
    return urlencode(params)


def _base(call_sid: str, source_id: str, caller: str, line: str, received_at: datetime,
          caller_name: str | None = None) -> Envelope:
    if not call_sid:
        raise InvalidPayload("CallSid is missing")
    return Envelope(
        channel=Channel.VOICEMAIL, source_id=source_id, received_at=received_at,
        sender=Sender(phone=caller or None, display_name=caller_name or None),
        headers={"x-twilio-call-sid": call_sid, "x-twilio-to": line},
    )


def recording_envelope(form: Mapping[str, str], query: Mapping[str, str],
                       received_at: datetime) -> tuple[Envelope, str | None]:
    """From a recording status callback: the envelope, and the audio URL to fetch (or None).

    ``query`` is the callback URL's query string, which we wrote into the TwiML.
    """
    call_sid = form.get("CallSid", "")
    recording_sid = form.get("RecordingSid", "")
    status = form.get("RecordingStatus", "")
    try:
        duration = int(form.get("RecordingDuration") or 0)
    except ValueError:
        duration = 0
    caller, line = query.get("caller", ""), query.get("line", "")
    name = query.get("caller_name")
    if status == "completed" and duration > 0 and form.get("RecordingUrl") and recording_sid:
        env = _base(call_sid, recording_sid, caller, line, received_at, name)
        env.headers.update({"x-voicemail-recording": "completed",
                            "x-voicemail-duration-s": str(duration),
                            "x-twilio-recording-sid": recording_sid})
        if query.get("hours"):
            env.headers["x-voicemail-hours"] = query["hours"]
        return env, form["RecordingUrl"]
    reason = {"absent": "absent", "failed": "failed"}.get(status, "empty")
    env = silent_call_envelope(call_sid, caller, line, received_at, reason, name)
    if query.get("hours"):
        env.headers["x-voicemail-hours"] = query["hours"]
    if recording_sid:
        env.headers["x-twilio-recording-sid"] = recording_sid
    return env, None


def silent_call_envelope(call_sid: str, caller: str, line: str, received_at: datetime,
                         reason: str, caller_name: str | None = None) -> Envelope:
    """A call that left no message; the spam filter quarantines these as calls without one."""
    env = _base(call_sid, call_sid, caller, line, received_at, caller_name)
    env.headers["x-voicemail-recording"] = reason
    env.notes.append(f"call ended without a voice message (recording: {reason})")
    return env
