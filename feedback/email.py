"""Progress updates by e-mail, through the SMTP server of GRIDLINK_SMTP_URL.

smtp://host:port speaks STARTTLS when the server offers it, smtps:// is TLS from the start;
user and password in the URL log in. The server refusing an address for good (5xx) makes it
unreachable; a 4xx or a connection that fails is tried again later. Every mail says how to stop
the updates (a signed link, also as List-Unsubscribe and List-Unsubscribe-Post, RFC 8058, so
that mail programs offer a one-click "unsubscribe"); a notice (about no case) points to the
account page instead.
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from feedback.channels import SENT, Notice, Outcome, Pace
from portal.i18n import _, gettext_for
from portal.settings import Settings

RATE_LINE = _("Rate how it was handled: {url}")
STOP_LINE = _("To stop hearing about this case: {url}")
ACCOUNT_LINE = _("To choose what you hear from us, sign in to your account: {url}")
# Headers whose value is a link: a mail program reads them as written, so they are never
# folded (the standard policy would turn a long one into an encoded word no program parses).
LINK_HEADERS = ("list-unsubscribe",)


class _Policy(EmailPolicy):
    """SMTP's policy (CRLF, lines folded at 78), except for the link headers."""

    def fold_binary(self, name, value):
        if name.lower() in LINK_HEADERS and str(value).isascii():
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


POLICY = _Policy(linesep="\r\n")


def _one_line(value: str) -> str:
    # A header cannot hold a line break; a title never should have one.
    return " ".join(value.split())


class EmailSender:
    channel = "email"

    def __init__(self, settings: Settings):
        url = urlsplit(settings.smtp_url)
        if url.scheme not in ("smtp", "smtps") or not url.hostname:
            raise ValueError("GRIDLINK_SMTP_URL must look like smtp://host:port")
        self.mail_from = settings.mail_from
        self.envelope_from = parseaddr(settings.mail_from)[1]
        if "@" not in self.envelope_from:
            raise ValueError("GRIDLINK_MAIL_FROM must hold an address, such as "
                             "Gridlink <noreply@example.org>")
        self.options = {
            "hostname": url.hostname,
            "port": url.port or (465 if url.scheme == "smtps" else 25),
            "use_tls": url.scheme == "smtps",
            "username": unquote(url.username) if url.username else None,
            "password": unquote(url.password) if url.password else None,
            "timeout": 20,
        }
        self.pace = Pace(per_second=settings.email_rate)

    def message(self, address: str, notice: Notice) -> EmailMessage:
        t = gettext_for(notice.language)
        lines = [notice.body]
        if notice.link_text:
            lines += ["", f"{notice.link_text}: {notice.url}"]
        if notice.rate_url:
            lines += ["", t(RATE_LINE).format(url=notice.rate_url)]
        if notice.unsubscribe_url:
            stop = STOP_LINE if notice.about_case else ACCOUNT_LINE
            lines += ["", "--", t(stop).format(url=notice.unsubscribe_url)]
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = address
        msg["Subject"] = _one_line(notice.title)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="gridlink")
        # No out-of-office answers to an address nobody reads.
        msg["Auto-Submitted"] = "auto-generated"
        # One click stops a case's updates; the account page is no such link.
        if notice.unsubscribe_url and notice.about_case:
            msg["List-Unsubscribe"] = f"<{notice.unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text = "\n".join(lines)
        # 8bit only reaches servers that speak 8BITMIME: Chinese goes as base64.
        msg.set_content(text, cte=None if text.isascii() else "base64")
        # After set_content, which replaces every Content- header.
        msg["Content-Language"] = notice.language
        return msg

    async def send(self, address: str, notice: Notice) -> Outcome:
        try:
            data = self.message(address, notice).as_bytes(policy=POLICY)
        except (ValueError, HeaderParseError, UnicodeError) as exc:
            # Not an address a message can be written to: it never will be.
            return Outcome("unreachable", detail=f"bad address ({type(exc).__name__})")
        try:
            await aiosmtplib.send(data, sender=self.envelope_from, recipients=[address],
                                  **self.options)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(500 <= c < 600 for c in codes):
                return Outcome("unreachable", detail=f"refused {codes[0]}")
            return Outcome("retry", detail=f"refused {codes[0] if codes else '?'}")
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and exc.code != 530:
                return Outcome("failed", detail=f"SMTP {exc.code}")
            return Outcome("retry", detail=f"SMTP {exc.code}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome("retry", detail=type(exc).__name__)
        return SENT

    async def close(self) -> None:
        pass
