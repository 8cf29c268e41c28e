"""Send a batch of pre-built e-mails over one SMTP session.

Used by the batch-native e-mail path of campaign steps
(``mailing.mailing._mkt_execute_fast``). It does not create ``mail.mail``
rows: the messages are built by ``ir.mail_server`` and handed to one
``smtplib`` session, and the outcome of each message is read from the SMTP
server's answer to that very message:

- ``sent``: the server accepted it;
- ``retry``: a temporary (4xx) answer to MAIL FROM / RCPT TO / DATA, or the
  connection was lost before the message was accepted (then every message
  not yet sent is ``retry`` too: only the unsent rest goes out again);
- ``failed``: a permanent (5xx) answer, or a message Odoo cannot send
  (no valid recipient).

This module knows no ORM model besides ``ir.mail_server``: it gets the
messages to send and returns their outcome.
"""

import logging
import re
import smtplib
from urllib.parse import urlsplit

from odoo.tools.mail import URL_REGEX, append_content_to_html

_logger = logging.getLogger(__name__)

# errors meaning the SMTP session is gone: the rest of the batch waits for a retry
CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError)


def _reply_text(code, reply):
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return f"{code} {reply}".strip()


def smtp_error_outcome(error):
    """(state, reason) of one message refused by the server with ``error``."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # one recipient per message here: its (code, reply)
        code, reply = next(iter(error.recipients.values()))
    elif isinstance(error, smtplib.SMTPResponseException):
        code, reply = error.smtp_code, error.smtp_error
    else:
        return "failed", str(error) or type(error).__name__
    state = "retry" if 400 <= int(code) < 500 else "failed"
    return state, _reply_text(code, reply)


class SmtpBatch:
    """One SMTP session pushing a batch of ``email.message.EmailMessage``.

    ``mail_server`` is an ``ir.mail_server`` recordset (possibly empty: the
    default server) in the caller's environment; the session is opened by
    ``ir.mail_server`` itself (``_connect__``), so authentication, TLS and
    the From rewriting (``from_filter``) are Odoo's."""

    def __init__(self, mail_server, env):
        self.env = env
        self.mail_server = mail_server
        self.IrMailServer = env["ir.mail_server"].sudo()
        self.session = None

    def connect(self, smtp_from):
        self.session = self.IrMailServer._connect__(
            mail_server_id=self.mail_server.id or None, smtp_from=smtp_from,
        )
        return self.session

    def close(self):
        if self.session is not None:
            try:
                self.session.quit()
            except Exception:  # noqa: BLE001 - the session may already be gone
                pass
            self.session = None

    def send(self, messages, on_first_send=None, keep_open=False):
        """Send ``messages`` (a list of ``(key, EmailMessage)``) in order and
        return ``{key: (state, reason)}``. ``on_first_send`` is called right
        before the first byte of a message leaves. With ``keep_open`` the
        session stays open for the next call (then ``close()`` it)."""
        outcome = {}
        if not messages:
            return outcome
        if self.IrMailServer._disable_send():
            # tests and registry initialisation: nothing leaves, as
            # ir.mail_server.send_email() answers in that case
            if on_first_send:
                on_first_send()
            return {key: ("sent", False) for key, _message in messages}
        started = False
        try:
            if self.session is None or getattr(self.session, "sock", None) is None:
                self.connect(messages[0][1]["From"])
        except Exception as error:  # noqa: BLE001 - server unreachable: every message waits
            reason = str(error) or type(error).__name__
            return {key: ("retry", reason) for key, _message in messages}
        try:
            for index, (key, message) in enumerate(messages):
                try:
                    smtp_from, smtp_to, message = self.IrMailServer._prepare_email_message__(
                        message, self.session
                    )
                except AssertionError as error:  # no valid recipient / sender
                    outcome[key] = ("failed", str(error))
                    continue
                if not started:
                    started = True
                    if on_first_send:
                        on_first_send()
                try:
                    self.session.send_message(message, smtp_from, smtp_to)
                except smtplib.SMTPServerDisconnected as error:
                    # lost before this message was accepted (smtplib also
                    # closes the session itself on a 421 answer)
                    reason = str(error) or type(error).__name__
                    for rest_key, _message in messages[index:]:
                        outcome[rest_key] = ("retry", reason)
                    break
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as error:
                    outcome[key] = smtp_error_outcome(error)
                    if getattr(self.session, "sock", None) is None:
                        # a 421 answer: smtplib closed the session, the rest waits
                        for rest_key, _message in messages[index + 1:]:
                            outcome[rest_key] = ("retry", outcome[key][1])
                        break
                    continue
                except CONNECTION_ERRORS as error:
                    reason = str(error) or type(error).__name__
                    for rest_key, _message in messages[index:]:
                        outcome[rest_key] = ("retry", reason)
                    break
                outcome[key] = ("sent", False)
        finally:
            if not keep_open:
                self.close()
        return outcome


def tracked_body(body, trace_id, tracking_url):
    """What mass_mailing's ``mail.mail._prepare_outgoing_body`` adds to a
    mailing's body: the trace id in every shortened link (``/r/<code>`` →
    ``/r/<code>/m/<trace id>``, counted by the click controller) and the
    open-tracking pixel."""
    for href, url in {match[:2] for match in re.findall(URL_REGEX, body)}:
        parsed = urlsplit(url)
        if parsed.scheme.startswith("http") and parsed.path.startswith("/r/"):
            body = body.replace(href, href.replace(url, f"{url}/m/{trace_id}"))
    return append_content_to_html(body, f'<img src="{tracking_url}"/>', plaintext=False)
