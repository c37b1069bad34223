"""Phone/e-mail/WhatsApp/app matching against the directory: formats, ambiguous, unknown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.envelope import AppIdentity, Channel, Envelope, Sender
from pipeline.identify.addresses import normalise_email, normalise_phone
from pipeline.identify.core import identify, partition_key
from pipeline.identify.directory import Account, Directory, DirectoryEmployee

DUPONT = Account(id="ACC-1042", name="Boulangerie Dupont", tier="standard", country="FR",
                 language="fr")
LEFEVRE = Account(id="ACC-2077", name="Maison Lefèvre", tier="premium", country="FR",
                  language="fr")
HARBOUR = Account(id="ACC-3150", name="Harbour Outfitters", tier="premium", country="GB",
                  language="en")


@pytest.fixture
def directory() -> Directory:
    d = Directory(default_region="FR")
    d.apply("EMP-1", DirectoryEmployee(id="EMP-1", name="Marie Dupont", account=DUPONT,
                                       emails=["Marie.Dupont@Boulangerie-Dupont.fr"],
                                       phones=["06 12 34 56 78"]))
    d.apply("EMP-2", DirectoryEmployee(id="EMP-2", name="Karim Benali", account=DUPONT,
                                       whatsapp_ids=["whatsapp:+33781223344"]))
    d.apply("EMP-3", DirectoryEmployee(id="EMP-3", name="Claire Lefèvre", account=LEFEVRE,
                                       emails=["compta@maison-lefevre.fr"],
                                       phones=["0033 1 42 68 53 00"]))
    d.apply("EMP-4", DirectoryEmployee(id="EMP-4", name="James Whitaker", account=HARBOUR,
                                       emails=["james@harbour-outfitters.co.uk"],
                                       phones=["+44 20 7946 0958"]))
    # A freelance accountant registered by two customers: her address is ambiguous.
    d.apply("EMP-5", DirectoryEmployee(id="EMP-5", name="Sophie Martin", account=DUPONT,
                                       emails=["sophie@cabinet-martin.fr"],
                                       phones=["+33 6 99 88 77 66"]))
    d.apply("EMP-6", DirectoryEmployee(id="EMP-6", name="Sophie Martin", account=LEFEVRE,
                                       emails=["SOPHIE@cabinet-martin.fr"],
                                       phones=["06 99 88 77 66"]))
    return d


def message(channel: Channel = Channel.WHATSAPP, **sender: object) -> Envelope:
    return Envelope(channel=channel, source_id="SM1",
                    received_at=datetime(2026, 11, 23, tzinfo=UTC), sender=Sender(**sender),
                    text="Où configurer la TVA ?")


@pytest.mark.parametrize("raw", [
    "whatsapp:+33612345678", "+33 6 12 34 56 78", "06 12 34 56 78", "0033612345678",
    "06.12.34.56.78", "+33612345678", "tel:+33-6-12-34-56-78", "0033 6 12 34 56 78",
])
def test_french_phone_formats_all_read_as_one_number(raw):
    assert normalise_phone(raw, "FR") == "+33612345678"


@pytest.mark.parametrize("raw,region,expected", [
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 20 7946 0958", "FR", "+442079460958"),
    ("12", "FR", None),
    ("not a phone", "FR", None),
    ("", "FR", None),
])
def test_phone_regions_and_invalid(raw, region, expected):
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw,expected", [
    ("Marie.Dupont@Boulangerie-Dupont.FR", "marie.dupont@boulangerie-dupont.fr"),
    ('"Marie Dupont" <marie.dupont@boulangerie-dupont.fr>', "marie.dupont@boulangerie-dupont.fr"),
    ("mailto:Compta@Maison-Lefevre.fr", "compta@maison-lefevre.fr"),
    ("<james@harbour-outfitters.co.uk>", "james@harbour-outfitters.co.uk"),
    ("marie.dupont", None),
])
def test_email_forms(raw, expected):
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("channel,sender,employee,matched_by", [
    (Channel.WHATSAPP, {"whatsapp_id": "whatsapp:+33612345678", "phone": "+33612345678"},
     "EMP-1", "whatsapp"),
    (Channel.VOICEMAIL, {"phone": "+33 6 12 34 56 78"}, "EMP-1", "phone"),
    (Channel.VOICEMAIL, {"phone": "06 12 34 56 78"}, "EMP-1", "phone"),
    (Channel.VOICEMAIL, {"phone": "0033612345678"}, "EMP-1", "phone"),
    (Channel.EMAIL, {"email": '"DUPONT Marie" <MARIE.DUPONT@boulangerie-dupont.fr>'},
     "EMP-1", "email"),
    (Channel.EMAIL, {"email": "mailto:compta@maison-lefevre.fr"}, "EMP-3", "email"),
    (Channel.WHATSAPP, {"whatsapp_id": "whatsapp:+33781223344"}, "EMP-2", "whatsapp"),
    (Channel.VOICEMAIL, {"phone": "+33142685300"}, "EMP-3", "phone"),
    (Channel.EMAIL, {"email": "james@harbour-outfitters.co.uk"}, "EMP-4", "email"),
])
def test_known_senders_are_identified(directory, channel, sender, employee, matched_by):
    identity = identify(message(channel, **sender), directory)
    owner = directory.employees[employee]
    assert identity.identified and not identity.ambiguous
    assert identity.employee_id == employee
    assert identity.employee_name == owner.name
    assert (identity.account_id, identity.tier, identity.country, identity.language) == (
        owner.account.id, owner.account.tier, owner.account.country, owner.account.language)
    assert identity.matched_by == matched_by


@pytest.mark.parametrize("sender", [
    {"email": "sophie@cabinet-martin.fr"},
    {"phone": "+33699887766"},
    {"whatsapp_id": "whatsapp:+33699887766"},
])
def test_address_under_two_accounts_is_ambiguous_never_guessed(directory, sender):
    identity = identify(message(**sender), directory)
    assert not identity.identified and identity.ambiguous
    assert identity.account_id is None
    assert identity.candidates == ["ACC-1042", "ACC-2077"]


@pytest.mark.parametrize("sender,tried", [
    ({"phone": "+33 6 00 00 00 01"}, ["phone:+33600000001"]),
    ({"email": "Inconnu@Gmail.com"}, ["email:inconnu@gmail.com"]),
    ({"whatsapp_id": "whatsapp:+33700000002", "phone": "07 00 00 00 02"},
     ["phone:+33700000002"]),
    ({}, []),
])
def test_unknown_senders_say_what_was_tried(directory, sender, tried):
    identity = identify(message(**sender), directory)
    assert not identity.identified and not identity.ambiguous
    assert identity.tried == tried


def test_second_address_resolves_the_ambiguity_of_the_first(directory):
    # Sophie writes from her phone that only Dupont registered under her other address.
    directory.apply("EMP-5", directory.employees["EMP-5"].model_copy(
        update={"phones": ["+33 6 11 11 11 11"]}))
    identity = identify(message(Channel.EMAIL, email="sophie@cabinet-martin.fr",
                                phone="+33611111111"), directory)
    assert identity.identified and identity.account_id == "ACC-1042"


def test_address_shared_inside_one_account_names_the_account_not_an_employee(directory):
    # The shop's landline, registered for two employees of the same customer.
    for employee_id in ("EMP-1", "EMP-2"):
        directory.apply(employee_id, directory.employees[employee_id].model_copy(
            update={"phones": ["01 45 00 00 00"]}))
    identity = identify(message(Channel.VOICEMAIL, phone="+33145000000"), directory)
    assert identity.identified and identity.account_id == "ACC-1042"
    assert identity.employee_id is None


def test_app_identity_of_unknown_account_has_no_tier(directory):
    env = message(Channel.CHAT, app_identity=AppIdentity(user_id="u-1", account_id="ACC-NEW"))
    identity = identify(env, directory)
    assert identity.identified and identity.account_id == "ACC-NEW" and identity.tier is None


def test_signed_app_identity_is_trusted(directory):
    env = message(Channel.CHAT, app_identity=AppIdentity(user_id="EMP-3", account_id="ACC-2077"))
    identity = identify(env, directory)
    assert identity.identified and identity.matched_by == "app_identity"
    assert (identity.account_id, identity.employee_name, identity.tier) == (
        "ACC-2077", "Claire Lefèvre", "premium")


def test_app_identity_matched_to_employee_by_signed_email_within_its_account(directory):
    env = message(Channel.CHAT, app_identity=AppIdentity(
        user_id="app-user-981", account_id="ACC-1042", email="Marie.Dupont@boulangerie-dupont.fr"))
    identity = identify(env, directory)
    assert (identity.account_id, identity.employee_id) == ("ACC-1042", "EMP-1")
    # The same e-mail signed for another account does not borrow Marie's identity.
    env.sender.app_identity.account_id = "ACC-3150"  # type: ignore[union-attr]
    identity = identify(env, directory)
    assert identity.account_id == "ACC-3150" and identity.employee_id == "app-user-981"


def test_app_identity_of_user_not_in_directory_still_names_the_account(directory):
    env = message(Channel.CHAT, app_identity=AppIdentity(user_id="u-77", account_id="ACC-1042",
                                                         name="Nouvel employé"))
    identity = identify(env, directory)
    assert identity.identified and identity.account_id == "ACC-1042"
    assert identity.tier == "standard" and identity.employee_name == "Nouvel employé"


def test_directory_change_applies_to_the_next_lookup(directory):
    assert not identify(message(phone="+33600000001"), directory).identified
    directory.apply("EMP-9", DirectoryEmployee(id="EMP-9", name="Léa", account=HARBOUR,
                                               phones=["06 00 00 00 01"]))
    assert identify(message(phone="+33600000001"), directory).account_id == "ACC-3150"
    directory.apply("EMP-9", None)  # tombstone
    assert not identify(message(phone="+33600000001"), directory).identified
    # A changed address stops matching the old one.
    directory.apply("EMP-1", directory.employees["EMP-1"].model_copy(update={"phones": []}))
    assert not identify(message(phone="0612345678"), directory).identified


def test_rekeyed_by_account_or_sender(directory):
    known = message(phone="0612345678")
    known.identity = identify(known, directory)
    unknown = message(phone="+33600000001")
    unknown.identity = identify(unknown, directory)
    assert partition_key(known) == "ACC-1042"
    assert partition_key(unknown) == unknown.sender_key == "whatsapp:+33600000001"
