"""The email connector against a real IMAP server (dovecot) and the real broker.

The connector hub runs in the test's event loop; mail is APPENDed with imapclient, and
what the connector produced is read back from ``inbound.raw``, ``pipeline.deadletter`` and
``connectors.state``.
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from connectors.email.config import EmailConfig
from connectors.email.poller import EmailPoller, reconcile
from connectors.hub import ConnectorHub
from pipeline.blobstore import BlobStore
from pipeline.broker import EmbeddedBroker
from pipeline.errors import BrokerError
from pipeline.settings import Settings
from tests import email_samples as samples
from tests.fixtures.broker import override, tapped
from tests.fixtures.dovecot import PASSWORD
from tests.fixtures.kafka_io import KafkaIO
from tests.fixtures.reliability import frozen

pytestmark = pytest.mark.slow

FLAG = "$SupportIngested"


def email_settings(settings: Settings, dovecot, user: str, **overrides) -> Settings:
    values = dict(
        enabled=True, host=dovecot.host, port=dovecot.port, security="plain", username=user,
        password=PASSWORD, use_idle=True,
        # Long enough that only IDLE can explain a message arriving within the test's wait.
        poll_interval_seconds=600, idle_renew_seconds=600,
        reconnect_min_seconds=0.2, reconnect_max_seconds=2)
    config = EmailConfig(**{**values, **overrides})
    return settings.model_copy(update={"email": config})


def append(dovecot, user: str, folder: str, messages: list[bytes]) -> None:
    client = dovecot.client(user)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for raw in messages:
            client.append(folder, raw)
    finally:
        client.logout()


def flags_in(dovecot, user: str, folder: str) -> dict[int, tuple[bytes, ...]]:
    client = dovecot.client(user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {uid: data[b"FLAGS"] for uid, data in fetched.items()}
    finally:
        client.logout()


def poller_of(hub: ConnectorHub) -> EmailPoller:
    return next(s for s in hub._pollers if isinstance(s, EmailPoller))


async def test_every_kind_of_mail_arrives_once_and_idle_delivers_new_mail(
        settings, kafka_io, dovecot, mailbox_user):
    await kafka_io.create_topics()
    conf = email_settings(settings, dovecot, mailbox_user, max_message_bytes=20_000)
    mails = [samples.plain(1), samples.html_only(), samples.with_attachments(),
             samples.latin1(), samples.wrong_charset(), samples.reply(), samples.auto_reply(),
             samples.malformed(), samples.oversized(40_000)]
    append(dovecot, mailbox_user, "INBOX", mails)

    hub = ConnectorHub(conf, ["email"])
    await hub.start()
    try:
        raw = await kafka_io.read("inbound.raw", count=8, timeout=60)
        dead = await kafka_io.read("pipeline.deadletter", count=1, timeout=30)
        assert len(raw) == 8
        # IDLE: a message appended while the connector waits arrives without a poll.
        await asyncio.to_thread(append, dovecot, mailbox_user, "INBOX",
                                [samples.plain(99, text="Bonjour, la borne de caisse redémarre "
                                                        "en boucle.")])
        raw = await kafka_io.read("inbound.raw", count=9, timeout=60, quiet=1.0)
    finally:
        await hub.stop()

    sources = [r.value["source_id"] for r in raw]
    assert len(sources) == len(set(sources)) == 9
    by_source = {r.value["source_id"]: r.value for r in raw}
    assert by_source["<plain-1@boulangerie-martin.fr>"]["sender"] == {
        "email": "jeanne.martin@boulangerie-martin.fr", "display_name": "Jeanne Martin"}
    keys = {r.value["source_id"]: r.key for r in raw}
    assert keys["<plain-1@boulangerie-martin.fr>"] == "email:jeanne.martin@boulangerie-martin.fr"
    assert "Invoice INV-2026-0042 charges us twice" in by_source[
        "<html-only@retail-uk.example>"]["text"]

    attached = by_source["<attach@garage-durand.fr>"]
    kinds = {a["filename"]: a for a in attached["attachments"]}
    assert kinds["message-vocal.wav"]["kind"] == "audio"
    assert kinds["erreur-caisse.png"]["kind"] == "image"
    blobs = BlobStore(conf.blobs.url)
    assert blobs.get(kinds["message-vocal.wav"]["uri"]) == samples.WAV
    assert attached["headers"]["cc"] == "compta@garage-durand.fr"

    assert "le montant dû est déjà réglé" in by_source["<latin1@fromagerie.fr>"]["text"]
    assert by_source["<latin1@fromagerie.fr>"]["subject"] == "Problème de facture"
    assert "Très urgent" in by_source["<wrong-charset@opticien.fr>"]["text"]

    reply = by_source["<reply@boulangerie-martin.fr>"]
    assert reply["text"] == "Toujours bloquée ce soir, pouvez-vous me rappeler ?"
    assert reply["thread"]["in_reply_to"] == "<case-4411@hangers.example>"
    assert "nous regardons la commande MH38" in reply["quoted_text"]
    assert reply["signature"].startswith("-- \nJeanne Martin")

    ooo = by_source["<ooo@pharmacie-petit.fr>"]["headers"]
    assert (ooo["auto-submitted"], ooo["x-autoreply"], ooo["precedence"]) == (
        "auto-replied", "yes", "auto_reply")

    big = by_source["<oversized@photos.example>"]
    assert any("over the 20000-byte limit" in note for note in big["notes"])
    assert big["subject"] == "Photos of the broken till"

    assert "redémarre en boucle" in by_source["<plain-99@boulangerie-martin.fr>"]["text"]

    # The malformed one: dead-lettered with its raw bytes kept, and the connector moved on.
    assert dead[0].value["stage"] == "connector.email"
    assert dead[0].value["error_type"] == "MalformedEmail"
    assert ";UID=8" in dead[0].value["source_topic"]
    assert blobs.get(dead[0].value["raw_uri"]) == samples.malformed()

    # Every message, the malformed one included, was flagged once the broker had it.
    flags = flags_in(dovecot, mailbox_user, "INBOX")
    assert len(flags) == 10
    assert all(FLAG.encode() in f for f in flags.values())
    state = await kafka_io.read("connectors.state", until=lambda rs: any(
        r.value["position"]["last_uid"] == 10 for r in rs), timeout=10)
    assert state[-1].key == f"email:{mailbox_user}@{dovecot.host}/INBOX"
    assert state[-1].value["position"]["last_uid"] == 10


async def test_restart_in_the_middle_of_a_batch_loses_and_repeats_nothing(
        settings, kafka_io, dovecot, mailbox_user):
    await kafka_io.create_topics()
    # No flag: only the checkpoint on connectors.state can tell the restarted poller where
    # it stopped.
    conf = email_settings(settings, dovecot, mailbox_user, fetch_batch=50, after_publish="none")
    expected = [f"<plain-{n}@boulangerie-martin.fr>" for n in range(1, 13)]
    append(dovecot, mailbox_user, "INBOX", [samples.plain(n) for n in range(1, 13)])

    first = ConnectorHub(conf, ["email"])
    poller = poller_of(first)
    publish = first.publisher.publish
    stopping: list[asyncio.Task[None]] = []

    async def publish_then_stop(envelope):  # a SIGTERM right after the 4th acknowledgement
        result = await publish(envelope)
        if poller.published == 3:
            stopping.append(asyncio.create_task(first.stop()))
            await poller.stopping.wait()
        return result

    first.publisher.publish = publish_then_stop  # type: ignore[method-assign]
    await first.start()
    await kafka_io.read("inbound.raw", count=4, timeout=60)
    await asyncio.wait_for(asyncio.shield(_first(stopping)), 60)
    before = await kafka_io.read("inbound.raw", count=4, quiet=1.0)
    assert len(before) == 4  # stopped mid-batch: 8 of the 12 still waiting

    second = ConnectorHub(conf, ["email"])
    await second.start()
    try:
        after = await kafka_io.read("inbound.raw", count=12, timeout=60, quiet=2.0)
    finally:
        await second.stop()
    sources = [r.value["source_id"] for r in after]
    assert sorted(sources) == sorted(expected)  # nothing lost
    assert collections.Counter(sources).most_common(1)[0][1] == 1  # nothing sent twice


async def test_a_crash_between_ack_and_checkpoint_resends_only_that_message_same_id(
        settings, kafka_io, dovecot, mailbox_user):
    await kafka_io.create_topics()
    conf = email_settings(settings, dovecot, mailbox_user, after_publish="none")
    append(dovecot, mailbox_user, "INBOX", [samples.plain(n) for n in range(1, 6)])
    hub = ConnectorHub(conf, ["email"])
    publish = hub.publisher.publish
    crashed: list[str] = []

    async def publish_then_lose_connection(envelope):
        result = await publish(envelope)
        if len(crashed) == 0 and envelope.source_id == "<plain-3@boulangerie-martin.fr>":
            crashed.append(envelope.id)
            raise BrokerError("connection lost after the broker acknowledged")
        return result

    hub.publisher.publish = publish_then_lose_connection  # type: ignore[method-assign]
    await hub.start()
    try:
        raw = await kafka_io.read("inbound.raw", count=6, timeout=60, quiet=1.0)
    finally:
        await hub.stop()
    ids = collections.Counter(r.value["id"] for r in raw)
    # The poller reconnected and went on; only the message in flight came twice, with the
    # id ingest's idempotency recognises.
    assert len(ids) == 5
    assert ids[crashed[0]] == 2
    assert sum(ids.values()) == 6


async def _first(tasks: list[asyncio.Task[None]]) -> None:
    while not tasks:
        await asyncio.sleep(0.05)
    await tasks[0]


async def test_uidvalidity_change_rescans_with_stable_ids(settings, kafka_io, dovecot,
                                                          mailbox_user):
    await kafka_io.create_topics()
    conf = email_settings(settings, dovecot, mailbox_user, folders=["Support"],
                          after_publish="move", move_to="Traité")
    append(dovecot, mailbox_user, "Support", [samples.plain(1), samples.reply()])
    hub = ConnectorHub(conf, ["email"])
    await hub.start()
    try:
        first = await kafka_io.read("inbound.raw", count=2, timeout=60)
    finally:
        await hub.stop()
    # Moved once the broker had them: the folder is empty, the target holds both.
    assert flags_in(dovecot, mailbox_user, "Support") == {}
    assert len(flags_in(dovecot, mailbox_user, "Traité")) == 2
    old_state = await kafka_io.read("connectors.state", count=1, quiet=0.5)

    # The folder is deleted and recreated (a server migration does the same): new UIDs.
    client = dovecot.client(mailbox_user)
    client.delete_folder("Support")
    client.create_folder("Support")
    client.logout()
    append(dovecot, mailbox_user, "Support",
           [samples.plain(1), samples.reply(), samples.plain(3)])

    hub = ConnectorHub(conf, ["email"])
    await hub.start()
    try:
        after = await kafka_io.read("inbound.raw", count=5, timeout=60, quiet=1.0)
    finally:
        await hub.stop()
    state = await kafka_io.read("connectors.state", quiet=0.5, timeout=5, count=1)
    assert state[-1].value["position"]["uidvalidity"] != old_state[-1].value["position"]["uidvalidity"]
    assert state[-1].value["position"]["last_uid"] == 3

    # The re-sent copies carry the ids they had: ingest's idempotency drops them.
    copies = collections.Counter(r.value["source_id"] for r in after)
    assert copies["<plain-1@boulangerie-martin.fr>"] == 2
    assert copies["<reply@boulangerie-martin.fr>"] == 2
    assert copies["<plain-3@boulangerie-martin.fr>"] == 1
    ids = {r.value["id"] for r in after}
    assert len(ids) == 3 and {r.value["id"] for r in first} <= ids


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls_verify_the_server_certificate(settings, kafka_io, dovecot,
                                                              mailbox_user, security):
    await kafka_io.create_topics()
    conf = email_settings(settings, dovecot, mailbox_user, security=security,
                          port=dovecot.tls_port if security == "tls" else dovecot.port,
                          tls_ca_file=str(dovecot.ca_file))
    append(dovecot, mailbox_user, "INBOX", [samples.latin1()])
    hub = ConnectorHub(conf, ["email"])
    await hub.start()
    try:
        raw = await kafka_io.read("inbound.raw", count=1, timeout=60)
    finally:
        await hub.stop()
    assert raw[0].value["source_id"] == "<latin1@fromagerie.fr>"
    logins = [line for line in dovecot.log().splitlines()
              if "Login:" in line and f"user=<{mailbox_user}>" in line]
    assert any(", TLS," in line for line in logins)  # the test itself appends in plain


async def test_polling_mode_reconnects_after_the_server_drops_the_connection(
        settings, kafka_io, dovecot, mailbox_user):
    await kafka_io.create_topics()
    conf = email_settings(settings, dovecot, mailbox_user, use_idle=False,
                          poll_interval_seconds=0.3)
    append(dovecot, mailbox_user, "INBOX", [samples.plain(1)])
    hub = ConnectorHub(conf, ["email"])
    await hub.start()
    try:
        await kafka_io.read("inbound.raw", count=1, timeout=60)
        # The server kicks the connector's session (restart, failover, idle timeout).
        kicked = await asyncio.to_thread(dovecot.kick, mailbox_user)
        assert kicked
        await asyncio.to_thread(append, dovecot, mailbox_user, "INBOX", [samples.plain(2)])
        raw = await kafka_io.read("inbound.raw", count=2, timeout=60, quiet=1.0)
    finally:
        await hub.stop()
    assert sorted(r.value["source_id"] for r in raw) == [
        "<plain-1@boulangerie-martin.fr>", "<plain-2@boulangerie-martin.fr>"]
    assert dovecot.log().count(f"Login: user=<{mailbox_user}>") >= 3  # connector twice + test


async def test_reconcile_catches_up_once_then_has_nothing_to_do(settings, kafka_io, dovecot,
                                                                mailbox_user, capsys):
    conf = email_settings(settings, dovecot, mailbox_user, after_publish="none")
    append(dovecot, mailbox_user, "INBOX", [samples.plain(1), samples.malformed()])
    assert await reconcile(conf) == 0
    assert "1 published, 1 dead-lettered" in capsys.readouterr().out
    assert await reconcile(conf) == 0  # the checkpoint says both were taken
    assert "0 published, 0 dead-lettered" in capsys.readouterr().out
    raw = await kafka_io.read("inbound.raw", count=1, quiet=1.0)
    assert [r.value["source_id"] for r in raw] == ["<plain-1@boulangerie-martin.fr>"]


async def test_broker_unavailable_leaves_mail_unflagged_then_takes_it(
        settings, dovecot, mailbox_user, tmp_path, caplog):
    """The broker frozen (SIGSTOP, as in test_ops_broker_outage): mail that arrives meanwhile
    is not flagged, so nothing claims it was ingested; once the broker answers again the
    same poller publishes it and only then flags it. The request that timed out may still be
    written when the broker resumes: then the mail arrives twice with the same id, which
    ingest drops as a source retry."""
    with EmbeddedBroker(log_path=tmp_path / "outage.log") as dedicated:
        conf = email_settings(override(settings, kafka={"bootstrap": dedicated.bootstrap}),
                              dovecot, mailbox_user)
        kafka_io = KafkaIO(conf)
        await kafka_io.create_topics()
        append(dovecot, mailbox_user, "INBOX", [samples.plain(1)])
        hub = ConnectorHub(conf, ["email"])
        await hub.start()
        try:
            await kafka_io.read("inbound.raw", count=1, timeout=60)
            with frozen(dedicated):
                append(dovecot, mailbox_user, "INBOX", [samples.plain(2)])
                deadline = asyncio.get_running_loop().time() + 90
                while "event=email_reconnect" not in caplog.text:  # the publish failed
                    assert asyncio.get_running_loop().time() < deadline, "no publish failure"
                    await asyncio.sleep(0.2)
                during = flags_in(dovecot, mailbox_user, "INBOX")
            raw = await kafka_io.read("inbound.raw", count=2, timeout=90, quiet=1.0)
            after = flags_in(dovecot, mailbox_user, "INBOX")
        finally:
            await hub.stop()
    assert FLAG.encode() in during[1] and FLAG.encode() not in during[2]
    by_source = collections.defaultdict(set)
    for record in raw:
        by_source[record.value["source_id"]].add(record.value["id"])
    assert list(by_source) == ["<plain-1@boulangerie-martin.fr>",
                               "<plain-2@boulangerie-martin.fr>"]
    assert all(len(ids) == 1 for ids in by_source.values())  # a repeat keeps its id
    assert all(FLAG.encode() in flags for flags in after.values())


async def test_distinct_mails_sharing_a_message_id_both_reach_ingest_and_a_retry_does_not(
        settings, kafka_io, dovecot, mailbox_user, pipeline_process):
    """A broken mailer reuses one Message-ID for two different mails; the first is also
    stored twice (the same bytes: a re-delivery). Two messages come out of ingest, the
    second with a note; the copy is dropped as a source retry and counted."""
    await kafka_io.create_topics()
    conf = email_settings(settings, dovecot, mailbox_user)
    first = samples.plain(1)
    other = samples.plain(1, text="Bonjour,\n\nla facture FA-2026-118 est fausse.\n\nJeanne")
    append(dovecot, mailbox_user, "INBOX", [first, other, first])
    hub = ConnectorHub(conf, ["email"])
    await hub.start()
    try:
        raw = await kafka_io.read("inbound.raw", count=3, timeout=60)
    finally:
        await hub.stop()
    assert {r.value["source_id"] for r in raw} == {"<plain-1@boulangerie-martin.fr>"}
    assert len({r.value["id"] for r in raw}) == 2, "the copy has the id of the first"

    pipeline_process(["worker", "--stages", "ingest"], tapped(conf, "messages.normalized"))
    out = await kafka_io.read("messages.normalized", count=2, timeout=90, quiet=2.0)
    texts = [r.value["text"] for r in out]
    assert len(out) == 2, f"expected two messages, got {texts}"
    assert "la commande MH38 est bloquée" in texts[0]
    assert "la facture FA-2026-118 est fausse." in texts[1]
    assert out[0].value["id"] != out[1].value["id"]
    assert not any("already used by another message" in n for n in out[0].value["notes"])
    assert any(out[0].value["id"] in n for n in out[1].value["notes"])

    def retries(records) -> int:  # type: ignore[no-untyped-def]
        ingest = [r.value for r in records if r.value["stage"] == "ingest"]
        return ingest[-1]["counters"].get("dropped.source_retry", 0) if ingest else 0

    metrics = await kafka_io.read("pipeline.metrics", timeout=30,
                                  until=lambda records: retries(records) >= 1)
    assert retries(metrics) == 1
    assert any(r.value["stage"] == "ingest"
               and r.value["counters"].get("source_id_collision") == 1 for r in metrics)
