"""The customer's language for the transcriber: identity first, then the directory."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.envelope import Channel, Envelope, Identity, Sender
from pipeline.identify.directory import Account, DirectoryEmployee
from pipeline.settings import Settings
from pipeline.transcribe.language import AccountLanguages, identity_language


def voicemail(phone: str, identity: Identity | None = None) -> Envelope:
    return Envelope(channel=Channel.VOICEMAIL, source_id="RE1", sender=Sender(phone=phone),
                    received_at=datetime(2026, 11, 24, 9, tzinfo=UTC), identity=identity)


def languages_with(*employees: DirectoryEmployee) -> AccountLanguages:
    found = AccountLanguages(Settings.model_validate({"kafka": {"bootstrap": "x:1"}}))
    for employee in employees:
        found.reader.directory.apply(employee.id, employee)
    found.loaded = True
    return found


LYON = DirectoryEmployee(id="EMP-1", name="Claire Martin", phones=["06 12 34 56 78"],
                         account=Account(id="ACC-77", language="fr"))
LEEDS = DirectoryEmployee(id="EMP-2", name="Mark Hill", phones=["+44 20 7183 8750"],
                          account=Account(id="ACC-90", language="en"))


def test_the_callers_account_language_from_the_directory():
    found = languages_with(LYON, LEEDS)
    assert found.language_of(voicemail("+33612345678")) == "fr"
    assert found.language_of(voicemail("+442071838750")) == "en"


def test_unknown_caller_or_directory_not_loaded_gives_no_language():
    found = languages_with(LYON)
    assert found.language_of(voicemail("+33799999999")) is None
    found.loaded = False
    assert found.language_of(voicemail("+33612345678")) is None


def test_an_identity_already_on_the_envelope_wins():
    identified = Identity(identified=True, account_id="ACC-90", language="en")
    assert identity_language(voicemail("+33612345678", identified)) == "en"
    assert languages_with(LYON).language_of(voicemail("+33612345678", identified)) == "en"
    assert identity_language(voicemail("+33612345678", Identity(identified=False))) is None
