"""The WhatsApp connector in a real ConnectorHub against the session broker.

Webhook requests are signed by the real ``twilio`` SDK (RequestValidator.compute_signature)
for the public URL behind a reverse proxy (``public_base_url``), and posted to the hub's
local port. The ``twilio_cloud`` fixture is a local HTTP server speaking Twilio's documented
REST contract (media URLs with redirects, Messages list JSON with paging): it stands in for
Twilio's cloud, and the connector's real ``twilio`` Client is pointed at it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.twilio import whatsapp
from connectors.twilio.checkpoint import checkpoint_key, read_checkpoint
from pipeline.blobstore import BlobStore
from pipeline.broker import EmbeddedBroker
from tests.fixtures.broker import tapped
from tests.fixtures.twilio_cloud import ACCOUNT_SID, API, AUTH_TOKEN, CloudMessage
from tests.integration.twilio_helpers import (
    CUSTOMER,
    OUR_NUMBER,
    make_hub,
    ogg_voice_note,
    post_signed,
    twilio_settings,
    whatsapp_form,
)

ROOT = Path(__file__).resolve().parents[2]
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 2000 + b"\xff\xd9"


async def test_text_message_is_published_then_acknowledged(settings, kafka_io, twilio_cloud):
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        status, body, ctype = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "SM0a1b2c3d4e5f60718293a4b5c6d7e8f0",
            "Bonjour, la commande MH38 est bloquée depuis hier, pouvez-vous regarder ?"))
    assert status == 200
    assert ctype == "application/xml" and "<Response" in body
    records = await kafka_io.read("inbound.raw", count=1)
    env = records[0].value
    assert env["channel"] == "whatsapp"
    assert env["source_id"] == "SM0a1b2c3d4e5f60718293a4b5c6d7e8f0"
    assert env["text"].startswith("Bonjour, la commande MH38")
    assert env["sender"] == {"phone": CUSTOMER, "whatsapp_id": f"whatsapp:{CUSTOMER}",
                             "display_name": "Claire Martin"}
    assert records[0].key == f"whatsapp:whatsapp:{CUSTOMER}"


async def test_voice_note_is_stored_and_referenced(settings, kafka_io, twilio_cloud, tmp_path):
    audio = ogg_voice_note(tmp_path)
    url = twilio_cloud.add_media("MM11", "ME11", audio, "audio/ogg")
    cfg = twilio_settings(settings, twilio_cloud)
    async with make_hub(cfg) as hub:
        status, _, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "MM11", "", media=[(url, "audio/ogg")]))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    [att] = env["attachments"]
    assert att["kind"] == "audio" and att["content_type"] == "audio/ogg"
    assert att["size"] == len(audio) and "error" not in att
    assert BlobStore(cfg.blobs.url).get(att["uri"]) == audio
    # Fetched with the account's credentials, then the redirect to storage without them.
    media_requests = [r for r in twilio_cloud.requests if "ME11" in r[1]]
    assert [(path.startswith("/storage/"), ok) for _, path, ok in media_requests] == [
        (False, True), (True, True)]


async def test_image_with_text(settings, kafka_io, twilio_cloud):
    url = twilio_cloud.add_media("MM22", "ME22", JPEG, "image/jpeg")
    cfg = twilio_settings(settings, twilio_cloud)
    async with make_hub(cfg) as hub:
        status, _, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "MM22", "Voici la capture de l'erreur sur la facture F-2026-0042",
            media=[(url, "image/jpeg")]))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    assert env["text"] == "Voici la capture de l'erreur sur la facture F-2026-0042"
    [att] = env["attachments"]
    assert att["kind"] == "image" and BlobStore(cfg.blobs.url).get(att["uri"]) == JPEG


async def test_forged_signature_is_refused_and_produces_nothing(settings, kafka_io,
                                                               twilio_cloud):
    forged = whatsapp_form("SM_forged", "Urgent : réinitialisez mon mot de passe")
    genuine = whatsapp_form("SM_genuine", "Hello, the invoice INV-2026-118 is wrong")
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        wrong_token = await post_signed(hub, "/twilio/whatsapp", forged,
                                        token="0" * 32)
        # Signed for the URL this server listens on, not the public one Twilio calls.
        wrong_url = await post_signed(hub, "/twilio/whatsapp", forged,
                                      public_base=f"http://127.0.0.1:{hub.port}")
        unsigned = await post_signed(hub, "/twilio/whatsapp", forged, token=None)
        ok = await post_signed(hub, "/twilio/whatsapp", genuine)
    assert [wrong_token[0], wrong_url[0], unsigned[0], ok[0]] == [403, 403, 403, 200]
    # Same sender, same partition: had the forged one been produced it would come first.
    records = await kafka_io.read("inbound.raw", count=1, quiet=1.0)
    assert [r.value["source_id"] for r in records] == ["SM_genuine"]


async def test_oversize_media_travels_with_the_failure_recorded(settings, kafka_io,
                                                                twilio_cloud):
    big = b"\x00" * 300_000  # limit in these settings: 200 000 bytes
    url = twilio_cloud.add_media("MM33", "ME33", big, "video/mp4")
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        status, _, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "MM33", "La vidéo du bug au passage en caisse", media=[(url, "video/mp4")]))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    [att] = env["attachments"]
    assert "uri" not in att and "size 300000 bytes over the limit" in att["error"]
    assert att["kind"] == "video"
    assert any("media0 not kept" in note for note in env["notes"])


async def test_media_download_retried_until_it_succeeds(settings, kafka_io, twilio_cloud):
    url = twilio_cloud.add_media("MM44", "ME44", JPEG, "image/png")
    twilio_cloud.fail_next[f"{API}/Messages/MM44/Media/ME44"] = 2
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        status, _, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "MM44", "Screenshot of the error", media=[(url, "image/png")]))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    assert "error" not in env["attachments"][0] and env["attachments"][0]["uri"]
    assert twilio_cloud.hits("/Media/ME44") == 3


async def test_media_download_failing_every_time_still_produces(settings, kafka_io,
                                                                twilio_cloud):
    url = twilio_cloud.add_media("MM55", "ME55", JPEG, "image/png")
    twilio_cloud.fail_next[f"{API}/Messages/MM55/Media/ME55"] = 99
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        status, _, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "MM55", "Capture d'écran jointe", media=[(url, "image/png")]))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    assert env["text"] == "Capture d'écran jointe"
    assert "HTTP 503" in env["attachments"][0]["error"]
    assert "after 3 attempts" in env["attachments"][0]["error"]
    assert twilio_cloud.hits("/Media/ME55") == 3


@pytest.mark.slow
async def test_broker_down_answers_503_so_twilio_retries(settings, twilio_cloud, tmp_path):
    with EmbeddedBroker(log_path=tmp_path / "dedicated.log") as dedicated:
        cfg = twilio_settings(settings, twilio_cloud)
        cfg = cfg.model_copy(update={"kafka": cfg.kafka.model_copy(
            update={"bootstrap": dedicated.bootstrap})})
        async with make_hub(cfg, create_topics=True) as hub:
            assert (await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
                "SM_before", "Bonjour")))[0] == 200
            dedicated.stop()
            status, body, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
                "SM_during", "Toujours pas de réponse pour la commande X45Q"))
    assert status == 503 and "retry later" in body


@pytest.mark.slow
async def test_duplicates_and_missed_webhook_reach_ingest_once(settings, kafka_io, twilio_cloud,
                                                               pipeline_process, tmp_path):
    """MessageSid A delivered twice by the webhook, B never delivered (webhook down): the
    reconciliation lists A and B from Twilio; ingest keeps each exactly once."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    cfg = twilio_settings(settings, twilio_cloud)
    a_form = whatsapp_form("SMaaaa", "Bonjour, je n'arrive pas à éditer la facture F-2026-0042")
    twilio_cloud.messages += [
        CloudMessage("SMaaaa", f"whatsapp:{CUSTOMER}", OUR_NUMBER, a_form["Body"],
                     now - timedelta(minutes=9)),
        CloudMessage("SMbbbb", f"whatsapp:{CUSTOMER}", OUR_NUMBER,
                     "Le contrat C-7781 n'apparaît plus dans mon espace Selfcare",
                     now - timedelta(minutes=5), media=[("MEbbbb", "image/jpeg")]),
        # Ours, not the customer's: never injected.
        CloudMessage("SMcccc", OUR_NUMBER, f"whatsapp:{CUSTOMER}", "Merci, nous regardons",
                     now - timedelta(minutes=4), direction="outbound-api"),
        # Older than the first run's look-back.
        CloudMessage("SMdddd", f"whatsapp:{CUSTOMER}", OUR_NUMBER, "vieux message",
                     now - timedelta(days=3)),
    ]
    twilio_cloud.add_media("SMbbbb", "MEbbbb", JPEG, "image/jpeg")
    async with make_hub(cfg) as hub:
        assert (await post_signed(hub, "/twilio/whatsapp", a_form))[0] == 200
        assert (await post_signed(hub, "/twilio/whatsapp", a_form))[0] == 200  # Twilio retry

    twilio_cloud.requests.clear()
    assert await whatsapp.reconcile(cfg) == 0
    # Page size 1 in these settings: the SDK followed next_page_uri to the second page.
    assert twilio_cloud.hits("/Messages.json") == 2
    assert twilio_cloud.hits("Page=1") == 1
    key = checkpoint_key(ACCOUNT_SID, OUR_NUMBER)
    first_checkpoint = await read_checkpoint(cfg.kafka, key)
    assert first_checkpoint is not None and first_checkpoint >= now

    # The same command an operator runs, as a process: it resumes from the checkpoint.
    twilio_cloud.requests.clear()
    config = tmp_path / "pipeline.yaml"
    dump = cfg.model_dump(mode="json", exclude_none=True)
    dump["twilio"]["auth_token"] = AUTH_TOKEN
    config.write_text(yaml.safe_dump(dump))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), "connector", "whatsapp",
         "--reconcile"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "2 message(s)" in done.stdout
    listing = next(path for _, path, _ in twilio_cloud.requests if "/Messages.json" in path)
    assert "DateSent%3E=" in listing  # resumed from the checkpoint, minus the overlap

    raw = await kafka_io.read("inbound.raw", count=6)
    assert sorted(r.value["source_id"] for r in raw) == sorted(
        ["SMaaaa"] * 4 + ["SMbbbb"] * 2)
    pipeline_process(["worker", "--stages", "ingest"], tapped(settings, "messages.normalized"))
    normalized = await kafka_io.read("messages.normalized", count=2, quiet=3.0)
    assert sorted(r.value["source_id"] for r in normalized) == ["SMaaaa", "SMbbbb"]
    recovered = next(r.value for r in normalized if r.value["source_id"] == "SMbbbb")
    assert recovered["headers"]["x-twilio-via"] == "reconcile"
    assert BlobStore(cfg.blobs.url).get(recovered["attachments"][0]["uri"]) == JPEG


async def test_periodic_reconciliation_in_the_connector_process(settings, kafka_io,
                                                                twilio_cloud):
    """The hub's own reconciliation task finds a message whose webhook never came."""
    from datetime import UTC, datetime, timedelta

    twilio_cloud.messages.append(CloudMessage(
        "SMeeee", f"whatsapp:{CUSTOMER}", OUR_NUMBER,
        "Bonjour, le ticket de caisse n'imprime plus depuis la mise à jour",
        datetime.now(UTC) - timedelta(minutes=2)))
    cfg = twilio_settings(settings, twilio_cloud, reconcile_interval_seconds=0.2)
    async with make_hub(cfg):
        records = await kafka_io.read("inbound.raw", count=1)
    assert records[0].value["source_id"] == "SMeeee"
    assert records[0].value["headers"]["x-twilio-via"] == "reconcile"
    assert await read_checkpoint(cfg.kafka, checkpoint_key(ACCOUNT_SID, OUR_NUMBER))


@pytest.mark.parametrize(("data", "ctype", "unsized", "error"), [
    # Streamed without Content-Length: the limit is enforced while reading.
    (b"\x00" * 300_000, "audio/ogg", True, "size over the limit of 200000 bytes"),
    (b"MZ\x90\x00" + b"\x00" * 100, "application/x-msdownload", False, "not allowed"),
])
async def test_refused_media_travels_with_the_reason(settings, kafka_io, twilio_cloud, data,
                                                     ctype, unsized, error):
    url = twilio_cloud.add_media("MM66", "ME66", data, ctype)
    if unsized:
        twilio_cloud.unsized.add("ME66")
    async with make_hub(twilio_settings(settings, twilio_cloud)) as hub:
        status, _, _ = await post_signed(hub, "/twilio/whatsapp", whatsapp_form(
            "MM66", "Pièce jointe", media=[(url, ctype)]))
    assert status == 200
    env = (await kafka_io.read("inbound.raw", count=1))[0].value
    assert error in env["attachments"][0]["error"] and "uri" not in env["attachments"][0]
    assert twilio_cloud.hits("/Media/ME66") == 1  # refused, not retried


async def test_reconciliation_failing_keeps_the_checkpoint(settings, twilio_cloud):
    from connectors.twilio.rest import TwilioApiError

    cfg = twilio_settings(settings, twilio_cloud)
    twilio_cloud.fail_next[f"{API}/Messages.json"] = 1
    with pytest.raises(TwilioApiError):
        await whatsapp.reconcile(cfg)
    assert await read_checkpoint(cfg.kafka, checkpoint_key(ACCOUNT_SID, OUR_NUMBER)) is None
    assert await whatsapp.reconcile(cfg) == 0  # Twilio back: the next pass goes through
    assert await read_checkpoint(cfg.kafka, checkpoint_key(ACCOUNT_SID, OUR_NUMBER))
