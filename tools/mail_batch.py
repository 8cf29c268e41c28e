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

Each message is given as the keyword arguments of
``ir.mail_server._build_email__``. The first one of a batch is built and
prepared by ``ir.mail_server`` itself (``_build_email__``,
``_prepare_email_message__``: envelope sender, bounce address, From
rewriting by ``from_filter``). When Odoo left its From header as it was,
the next ones with the same sender and bounce address are assembled
directly as bytes from a MIME skeleton (``build_raw``): only the recipient,
subject, bodies, ids and tracking differ from one to the next, and Python's
``email`` header machinery (``EmailPolicy.header_store_parse``, folding on
output) costs several milliseconds a message. Anything the skeleton does
not cover (non-ASCII addresses, attachments) goes the stock way.

This module knows no ORM model besides ``ir.mail_server``: it gets the
messages to send and returns their outcome.
"""

import base64
import contextlib
import email.header
import email.utils
import functools
import logging
import re
import smtplib
import threading
import time
import uuid
from urllib.parse import urlsplit

from odoo.tools.mail import URL_REGEX, append_content_to_html

_logger = logging.getLogger(__name__)

# errors meaning the SMTP session is gone: the rest of the batch waits for a retry
CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, OSError)


def _reply_text(code, reply):
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return f"{code} {reply}".strip()


def _header(value):
    """A header value as RFC 2047 encoded words when it is not ASCII."""
    value = re.sub(r"[\r\n]+\s*", " ", str(value))  # no CR/LF smuggled into headers
    if value.isascii():
        return value
    return email.header.Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


@functools.lru_cache(maxsize=256)  # the sender and reply-to of a whole batch
def _address(value):
    """One address for a header; None when the skeleton cannot encode it
    (several or non-ASCII addresses: the stock builder does it)."""
    addresses = email.utils.getaddresses([value])
    if len(addresses) != 1:
        return None
    name, addr = addresses[0]
    if not addr or not addr.isascii() or "@" not in addr:
        return None
    if not name:
        return addr
    return email.utils.formataddr((name, addr), charset="utf-8")


def _part(content, subtype, boundary):
    data = base64.encodebytes(content.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        b"--" + boundary + b"\r\n"
        b"Content-Type: text/" + subtype + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data
    )


def build_raw(values):
    """The bytes of the message ``ir.mail_server._build_email__(**values)``
    would build (multipart/alternative, text then HTML), or None when the
    skeleton does not cover these values."""
    if values.get("attachments") or values.get("email_cc") or values.get("email_bcc"):
        return None
    if len(values["email_to"]) != 1:
        return None
    email_from = _address(values["email_from"])
    email_to = _address(values["email_to"][0])
    reply_to = _address(values.get("reply_to") or values["email_from"])
    if not (email_from and email_to and reply_to):
        return None
    headers = [
        ("Message-Id", values["message_id"]),
        *([("References", values["references"])] if values.get("references") else []),
        ("Subject", _header(values.get("subject") or "")),
        ("From", email_from),
        ("Reply-To", reply_to),
        ("To", email_to),
        ("Date", email.utils.formatdate(usegmt=True)),
        *((key, _header(value)) for key, value in (values.get("headers") or {}).items()),
    ]
    boundary = b"===============%s==" % uuid.uuid4().hex.encode()
    head = "".join(f"{key}: {value}\r\n" for key, value in headers).encode("ascii")
    return b"".join(
        (
            head,
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="',
            boundary,
            b'"\r\n\r\n',
            _part(values["body_alternative"], b"plain", boundary),
            _part(values["body"], b"html", boundary),
            b"--",
            boundary,
            b"--\r\n",
        )
    )


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


# the sessions kept open by the worker threads (SmtpBatch.shared)
_shared = threading.local()
# a kept session idle longer than this is closed and opened again rather
# than trusted (servers drop idle clients after a few minutes)
SHARED_IDLE_SECONDS = 60


class SmtpBatch:
    """One SMTP session pushing a batch of ``email.message.EmailMessage``.

    ``mail_server`` is an ``ir.mail_server`` recordset (possibly empty: the
    default server) in the caller's environment (the queue's, as superuser:
    ir.mail_server is admin-only); the session is opened by
    ``ir.mail_server`` itself (``_connect__``), so authentication, TLS and
    the From rewriting (``from_filter``) are Odoo's."""

    def __init__(self, mail_server, env):
        self.env = env
        self.mail_server = mail_server
        self.IrMailServer = env["ir.mail_server"]
        self.session = None
        self.smtp_from = None
        self.used_at = 0.0
        self.kept = False  # kept open across batches (shared)

    @classmethod
    def open_shared(cls):
        """Start keeping this thread's SMTP sessions open across batches (a
        queue run), until ``close_shared()``."""
        if getattr(_shared, "batches", None) is None:
            _shared.batches = {}

    @classmethod
    def shared(cls, mail_server, env):
        """The batch of this thread (one worker) for ``mail_server`` in this
        database: between ``open_shared()`` and ``close_shared()`` its SMTP
        session stays open from one chunk to the next (``send(...,
        keep_open=batch.kept)``) instead of a connection, EHLO and login for
        every chunk. Outside of them: a batch of its own, closed after use."""
        batches = getattr(_shared, "batches", None)
        if batches is None:
            return cls(mail_server, env)
        key = (env.cr.dbname, mail_server.id or None)
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = cls(mail_server, env)
            batch.kept = True
        batch.env = env
        batch.IrMailServer = env["ir.mail_server"]
        return batch

    @classmethod
    def close_shared(cls):
        """Close the sessions this thread kept open (end of a queue run)."""
        batches = getattr(_shared, "batches", None) or {}
        _shared.batches = None
        for batch in batches.values():
            batch.close()

    def connect(self, smtp_from):
        self.session = self.IrMailServer._connect__(
            mail_server_id=self.mail_server.id or None,
            smtp_from=smtp_from,
        )
        self.smtp_from = smtp_from
        return self.session

    def close(self):
        if self.session is not None:
            # the session may already be gone
            with contextlib.suppress(Exception):
                self.session.quit()
            self.session = None

    def _session_alive(self, smtp_from):
        """Whether the kept session can take the next batch: still connected,
        opened for this sender (``from_filter`` may pick another server),
        not idle for long, and answering a NOOP (one round trip per batch)."""
        session = self.session
        if session is None or getattr(session, "sock", None) is None:
            return False
        if smtp_from != self.smtp_from or time.monotonic() - self.used_at > SHARED_IDLE_SECONDS:
            return False
        try:
            return session.noop()[0] == 250
        except Exception:  # noqa: BLE001 - dropped while idle: reconnect
            return False

    def send(self, messages, on_first_send=None, keep_open=False):  # noqa: C901 - one loop with per-message outcome handling, kept whole
        """Send ``messages`` (a list of ``(key, values)``, ``values`` the
        keyword arguments of ``ir.mail_server._build_email__`` plus
        ``validated_to``, the normalized recipients) in order and
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
        smtp_from = messages[0][1]["email_from"]
        try:
            if not self._session_alive(smtp_from):
                self.close()
                self.connect(smtp_from)
        except Exception as error:  # noqa: BLE001 - server unreachable: every message waits
            self.close()
            reason = str(error) or type(error).__name__
            return {key: ("retry", reason) for key, _message in messages}
        completed = False
        try:
            envelope = {}  # (From, Return-Path) -> SMTP sender, when Odoo kept the From
            for index, (key, values) in enumerate(messages):
                raw = None
                try:
                    sender = envelope.get(
                        (values["email_from"], (values.get("headers") or {}).get("Return-Path"))
                    )
                    if sender:
                        raw = build_raw(values)
                    if raw is not None:
                        smtp_from = sender
                        smtp_to = [
                            email.utils.parseaddr(address)[1] for address in values["email_to"]
                        ]
                        message = raw
                    else:
                        message = self.IrMailServer.with_context(
                            send_validated_to=values.get("validated_to"),
                        )._build_email__(**{k: v for k, v in values.items() if k != "validated_to"})
                        original_from = message["From"]
                        smtp_from, smtp_to, message = self.IrMailServer.with_context(
                            send_validated_to=values.get("validated_to"),
                        )._prepare_email_message__(message, self.session)
                        if message["From"] == original_from:
                            envelope[
                                (
                                    values["email_from"],
                                    (values.get("headers") or {}).get("Return-Path"),
                                )
                            ] = smtp_from
                except AssertionError as error:  # no valid recipient / sender
                    outcome[key] = ("failed", str(error))
                    continue
                if not started:
                    started = True
                    if on_first_send:
                        on_first_send()
                try:
                    if raw is not None:
                        self.session.sendmail(smtp_from, smtp_to, raw)
                    else:
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
                        for rest_key, _message in messages[index + 1 :]:
                            outcome[rest_key] = ("retry", outcome[key][1])
                        break
                    continue
                except CONNECTION_ERRORS as error:
                    reason = str(error) or type(error).__name__
                    for rest_key, _message in messages[index:]:
                        outcome[rest_key] = ("retry", reason)
                    self.close()
                    break
                outcome[key] = ("sent", False)
            completed = True
        finally:
            self.used_at = time.monotonic()
            if not (keep_open and completed):
                # an unexpected error leaves the session in an unknown state
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
