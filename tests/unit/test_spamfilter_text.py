"""What is left to read once quoted replies, signatures and greetings are removed."""

from __future__ import annotations

import pytest

from pipeline.spamfilter.text import clean_subject, strip_quotes_and_signature, without_greetings

GMAIL_FR = """La caisse 2 ne démarre toujours pas.

Le lun. 23 nov. 2026 à 09:12, Support Hangers <support@hangers.fr> a écrit :
> Bonjour, pouvez-vous redémarrer l'iPad ?
"""
OUTLOOK_FR = """Voici la capture demandée.

Claire

De : Support Hangers <support@hangers.fr>
Envoyé : lundi 23 novembre 2026 09:12
À : Claire Lefèvre
Objet : RE: [Case #48213] Export comptable
"""
APPLE_EN = """The export works now, thanks!

Sent from my iPhone

On 23 Nov 2026, at 09:12, Hangers Support <support@hangers.fr> wrote:

> Could you try again?
"""
SIGNATURE = """Le TPE affiche erreur 0x1F.

Cordialement,
Marie Dupont
Boulangerie Dupont – 12 rue de la Paix, 75002 Paris
06 12 34 56 78"""
DASHES = "Où configurer la TVA ?\n-- \nJames Whitaker\nHarbour Outfitters Ltd"
FORWARD = "Pour info\n\n---------- Forwarded message ---------\nFrom: a@b.fr\nBody"


@pytest.mark.parametrize("text,kept", [
    (GMAIL_FR, "La caisse 2 ne démarre toujours pas."),
    (OUTLOOK_FR, "Voici la capture demandée.\n\nClaire"),
    (APPLE_EN, "The export works now, thanks!"),
    (SIGNATURE, "Le TPE affiche erreur 0x1F."),
    (DASHES, "Où configurer la TVA ?"),
    (FORWARD, "Pour info"),
    ("> tout est cité\n> rien de neuf", ""),
])
def test_new_part_of_the_message(text, kept):
    assert strip_quotes_and_signature(text) == kept


@pytest.mark.parametrize("text,left", [
    ("Bonjour, merci beaucoup !", ""),
    ("Hi team, thanks", ""),
    ("Bonne journée à vous", ""),
    ("Bonjour, où configurer la TVA ?", "où configurer TVA"),
    ("Merci, c'est réglé", "c'est réglé"),
])
def test_greetings_alone_say_nothing(text, left):
    assert without_greetings(text) == left


@pytest.mark.parametrize("subject,cleaned", [
    ("RE: TR: Fwd: Facture F2024-118", "Facture F2024-118"),
    ("Re :", ""), ("(sans objet)", ""), (None, ""), ("Export comptable", "Export comptable"),
])
def test_subject_prefixes(subject, cleaned):
    assert clean_subject(subject) == cleaned
