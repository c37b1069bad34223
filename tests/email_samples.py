"""Realistic support emails (French and English) as raw bytes, as mail clients send them."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

DATE = "Mon, 23 Nov 2026 09:12:00 +0100"


def plain(n: int = 1, *, sender: str = "jeanne.martin@boulangerie-martin.fr",
          text: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Jeanne Martin <{sender}>"
    msg["To"] = "support@hangers.example"
    msg["Subject"] = f"Commande MH38 bloquée ({n})"
    msg["Date"] = DATE
    msg["Message-ID"] = f"<plain-{n}@boulangerie-martin.fr>"
    msg.set_content(text or f"Bonjour,\n\nla commande MH38 est bloquée depuis ce matin (essai {n})."
                    "\n\nMerci,\nJeanne")
    return msg.as_bytes(policy=SMTP)


def html_only() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Tom Baker <tom@retail-uk.example>"
    msg["To"] = "support@hangers.example"
    msg["Subject"] = "Invoice INV-2026-0042 is wrong"
    msg["Date"] = DATE
    msg["Message-ID"] = "<html-only@retail-uk.example>"
    msg.set_content("<html><body><p>Hello,</p><p>Invoice <b>INV-2026-0042</b> charges us "
                    "twice for the <a href=\"https://selfcare.example/contracts/C-7781\">"
                    "contract C-7781</a>.</p></body></html>", subtype="html")
    return msg.as_bytes(policy=SMTP)


WAV = (b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00"
       b"\x02\x00\x10\x00data\x00\x00\x00\x00")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def with_attachments() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Paul Durand <paul@garage-durand.fr>"
    msg["To"] = "support@hangers.example"
    msg["Cc"] = "compta@garage-durand.fr"
    msg["Subject"] = "Capture d'écran de l'erreur et message vocal"
    msg["Date"] = DATE
    msg["Message-ID"] = "<attach@garage-durand.fr>"
    msg.set_content("Bonjour, voici la capture de l'erreur à l'ouverture de la caisse, "
                    "et mon message vocal.")
    msg.add_alternative("<p>Bonjour, voici la capture de l'erreur à l'ouverture de la caisse, "
                        "et mon message vocal.</p>", subtype="html")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="erreur-caisse.png")
    msg.add_attachment(WAV, maintype="audio", subtype="wav", filename="message-vocal.wav")
    return msg.as_bytes(policy=SMTP)


def latin1() -> bytes:
    return ("From: =?iso-8859-1?q?Ren=E9e_L=E9v=EAque?= <renee@fromagerie.fr>\r\n"
            "To: support@hangers.example\r\n"
            "Subject: =?iso-8859-1?q?Probl=E8me_de_facture?=\r\n"
            f"Date: {DATE}\r\n"
            "Message-ID: <latin1@fromagerie.fr>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=iso-8859-1\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            "Bonjour, la facture F-2031 est erronée : le montant dû est déjà réglé.\r\n"
            ).encode("latin-1")


def wrong_charset() -> bytes:
    """Declares iso-8859-1 but the body is UTF-8 (a common webmail bug)."""
    return ("From: Chloé <chloe@opticien.fr>\r\n"
            "To: support@hangers.example\r\n"
            "Subject: Caisse bloquée\r\n"
            f"Date: {DATE}\r\n"
            "Message-ID: <wrong-charset@opticien.fr>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=iso-8859-1\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            "La caisse est bloquée, impossible d'encaisser. Très urgent !\r\n"
            ).encode()


def unknown_charset() -> bytes:
    return ("From: support-client@magasin.fr\r\n"
            "Subject: test\r\n"
            "Message-ID: <unknown-charset@magasin.fr>\r\n"
            "Content-Type: text/plain; charset=x-klingon-42\r\n\r\n"
            "Réponse urgente svp\r\n").encode("cp1252")


def reply() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jeanne Martin <jeanne.martin@boulangerie-martin.fr>"
    msg["To"] = "support@hangers.example"
    msg["Subject"] = "Re: Commande MH38 bloquée (1)"
    msg["Date"] = DATE
    msg["Message-ID"] = "<reply@boulangerie-martin.fr>"
    msg["In-Reply-To"] = "<case-4411@hangers.example>"
    msg["References"] = "<plain-1@boulangerie-martin.fr> <case-4411@hangers.example>"
    msg.set_content("Toujours bloquée ce soir, pouvez-vous me rappeler ?\n\n"
                    "-- \nJeanne Martin\nBoulangerie Martin, 12 rue des Lilas\n\n"
                    "Le lun. 23 nov. 2026 à 10:02, Support Hangers <support@hangers.example> "
                    "a écrit :\n> Bonjour, nous regardons la commande MH38.\n> L'équipe support\n")
    return msg.as_bytes(policy=SMTP)


def auto_reply() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Marc Petit <marc@pharmacie-petit.fr>"
    msg["To"] = "support@hangers.example"
    msg["Subject"] = "Réponse automatique : absent du bureau"
    msg["Date"] = DATE
    msg["Message-ID"] = "<ooo@pharmacie-petit.fr>"
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Autoreply"] = "yes"
    msg["Precedence"] = "auto_reply"
    msg["Return-Path"] = "<>"
    msg.set_content("Je suis absent jusqu'au 30 novembre. En cas d'urgence, appelez le "
                    "standard.")
    return msg.as_bytes(policy=SMTP)


def malformed() -> bytes:
    """No header at all: binary junk a broken relay dropped into the mailbox."""
    return b"\x01\x02\xff\xfe garbage without any header\r\n\x89\x90\x91\r\n"


def oversized(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Big Sender <big@photos.example>"
    msg["To"] = "support@hangers.example"
    msg["Subject"] = "Photos of the broken till"
    msg["Message-ID"] = "<oversized@photos.example>"
    msg.set_content("See the attached photos.")
    msg.add_attachment(b"\xff" * size, maintype="image", subtype="jpeg", filename="till.jpg")
    return msg.as_bytes(policy=SMTP)
