"""The messages our own documentation and end-to-end stories promise a category for.

Each is quoted from where it is promised (README.md, docs/dedup-route.md, tests/e2e/,
tests/integration/test_dedup_route_agents.py, the issue 14 examples those docs show): a
change to the classifier or to config/routing.yaml that sends one of them elsewhere breaks
a promise a reader has seen, so it fails here, in a second, rather than in a slow e2e run.
Most are clear to a person because of a keyword ("bloquée", "erreur", "mot de passe").
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.envelope import CaseLink, Channel, Envelope, Identity, Sender
from pipeline.route.core import route_case
from pipeline.route.rules import load_rules

SHIPPED, _ = load_rules("config/routing.yaml")
TUESDAY_10H_PARIS = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

# (where it is promised, channel, tier, subject, text, category, queue)
CANONICAL = [
    ("tests/e2e/test_helpdesk_lifecycle.py: premium chat, tech (Support N2), high",
     Channel.CHAT, "premium", None,
     "Bonjour, la commande MH38 est bloquée en préparation, impossible de l'expédier",
     "bug", "tech"),
    ("tests/e2e/test_helpdesk_lifecycle.py: the closed case's order blocked again",
     Channel.CHAT, "premium", None, "Re-bonjour, la commande MH38 est de nouveau bloquée",
     "bug", "tech"),
    ("tests/e2e/test_helpdesk_lifecycle.py, test_full_pipeline.py: the follow-up",
     Channel.CHAT, "premium", None,
     "Toujours bloqué sur la commande MH38, pouvez-vous regarder ?", "bug", "tech"),
    ("tests/e2e/test_helpdesk_lifecycle.py: the reopened case's follow-up",
     Channel.CHAT, "premium", None, "La commande MH38 est toujours bloquée ce matin",
     "bug", "tech"),
    ("README.md: try it in a minute", Channel.WHATSAPP, None, None,
     "Bonjour, la commande MH38 est bloquée", "bug", "tech"),
    ("tests/integration/test_dedup_route_agents.py: m1, rule bugs, queue tech",
     Channel.EMAIL, "silver", "Commande MH38 bloquée",
     "Bonjour, la commande MH38 est bloquée, le logiciel affiche une erreur à la validation.",
     "bug", "tech"),
    ("tests/integration/test_dedup_route_agents.py: m4, rule bugs",
     Channel.EMAIL, "silver", None, "La commande MH38 est de nouveau bloquée avec une erreur",
     "bug", "tech"),
    ("docs/dedup-route.md: rules test with typos", Channel.WHATSAPP, None, None,
     "Mon imprimente ne fonctione plus", "bug", "tech"),
    ("docs/dedup-route.md, issue 14: the seed's good bug report", Channel.WHATSAPP, None,
     None, "Quand je clique sur Enregistrer, rien ne se passe", "bug", "tech"),
    ("docs/dedup-route.md: rules test", Channel.WHATSAPP, None, None,
     "Quand je clique sur Valider la commande, rien ne se passe, la page reste blanche",
     "bug", "tech"),
    ("docs/dedup-route.md, issue 14: a feature request phrased as a question",
     Channel.WHATSAPP, None, None, "would it be possible to add a dark mode to the ipad app?",
     "evolution", "product"),
    ("docs/dedup-route.md, issue 14: a refused login on the iPad app", Channel.WHATSAPP,
     None, None,
     "l'appli iPad refuse mon mot de passe depuis ce matin, je peux plus me connecter",
     "access", "general"),
    ("tests/e2e/test_full_pipeline.py: the known customer's how-to", Channel.WHATSAPP,
     "premium", None, "Bonjour, où configurer la TVA sur la caisse ?", "question", "general"),
]


def _message(channel: Channel, tier: str | None, subject: str | None, text: str) -> Envelope:
    return Envelope(channel=channel, source_id=text[:20], received_at=TUESDAY_10H_PARIS,
                    subject=subject, text=text, sender=Sender(email="marie@dupont.fr"),
                    identity=Identity(identified=True, account_id="ACC-1042", tier=tier,
                                      country="FR"),
                    case=CaseLink(case_id="C-1", action="opened"))


@pytest.mark.parametrize(("where", "channel", "tier", "subject", "text", "category", "queue"),
                         CANONICAL, ids=[c[4][:40] for c in CANONICAL])
def test_the_messages_our_docs_promise_get_their_category_and_queue(
        where, channel, tier, subject, text, category, queue):
    routing = route_case(_message(channel, tier, subject, text), SHIPPED, "v1")
    assert (routing.category, routing.queue) == (category, queue), (
        f"{where}: {routing.category_reason}")
    assert not routing.category_reason.startswith("fallback"), routing.category_reason
