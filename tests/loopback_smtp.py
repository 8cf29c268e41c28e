#!/usr/bin/env python3
"""Loopback SMTP catcher: a small, fast, stdlib-only (asyncio) SMTP server.

It accepts every message sent to it on 127.0.0.1 and keeps it in memory
(and optionally in a maildir-like folder as ``.eml`` files).  Nothing is ever
relayed anywhere.  It speaks enough SMTP for :mod:`smtplib` as used by Odoo's
``ir.mail_server``: EHLO/HELO (advertising 8BITMIME, SMTPUTF8, SIZE and
AUTH PLAIN LOGIN, never STARTTLS), AUTH with any credentials, MAIL FROM and
RCPT TO (with parameters), DATA with dot-unstuffing, RSET, NOOP, VRFY, HELP
and QUIT; several messages per connection and many concurrent connections.

Use from tests::

    from odoo.addons.mkt_campaign.tests.loopback_smtp import LoopbackSMTPServer

    server = LoopbackSMTPServer()          # 127.0.0.1, free port
    server.start()                         # background thread, sets .port
    ...  # point an ir.mail_server at 127.0.0.1:server.port and send
    assert server.wait_for(3, timeout=10)  # True once 3 messages arrived
    msg = server.messages[0]               # email.message.EmailMessage
    msg['Subject'], msg.mail_from, msg.rcpt_tos
    server.fail_next(2, code=451)          # next 2 RCPT get "451 ..."
    server.stop()

or as a context manager (``with LoopbackSMTPServer() as server: ...``).

Use as a script (stays in the foreground until SIGTERM/SIGINT)::

    python3 tests/loopback_smtp.py --port 2525 --maildir .local/mail

This module must not import odoo.
"""
# A standalone stdlib server: it reports on stdout / its log stream, and
# ignores the errors of one client or of a loop already closed.
# pylint: disable=print-used,except-pass

import argparse
import asyncio
import base64
import binascii
import email.parser
import email.policy
import os
import signal
import sys
import threading
import time

__all__ = ["LoopbackSMTPServer", "Received"]

DEFAULT_MAX_SIZE = 50 * 1024 * 1024
CRLF = b"\r\n"


class Received:
    """One accepted message: the SMTP envelope and the raw bytes.

    ``message`` is parsed lazily (email.policy.default, so it is an
    :class:`email.message.EmailMessage`) and the parsed message carries the
    envelope too, as attributes ``mail_from``, ``rcpt_tos`` and ``envelope``.
    ``received['Subject']`` is a shortcut for ``received.message['Subject']``.
    """

    __slots__ = (
        "seq",
        "mail_from",
        "rcpt_tos",
        "mail_options",
        "rcpt_options",
        "raw",
        "peer",
        "received_at",
        "path",
        "_message",
    )

    def __init__(
        self,
        seq,
        mail_from,
        rcpt_tos,
        raw,
        mail_options=(),
        rcpt_options=(),
        peer=None,
        received_at=None,
        path=None,
    ):
        self.seq = seq
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.mail_options = list(mail_options)
        self.rcpt_options = list(rcpt_options)
        self.raw = raw
        self.peer = peer
        self.received_at = received_at if received_at is not None else time.time()
        self.path = path
        self._message = None

    @property
    def message(self):
        msg = self._message
        if msg is None:
            # parse with '\n' line ends so that get_content() gives natural text
            msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                self.raw.replace(CRLF, b"\n")
            )
            msg.mail_from = self.mail_from
            msg.rcpt_tos = self.rcpt_tos
            msg.envelope = self
            self._message = msg
        return msg

    def __getitem__(self, header):
        return self.message[header]

    def __iter__(self):
        # allows ``mail_from, rcpt_tos, message = received``
        return iter((self.mail_from, self.rcpt_tos, self.message))

    def __repr__(self):
        return "<Received #%d from %r to %r, %d bytes>" % (
            self.seq,
            self.mail_from,
            self.rcpt_tos,
            len(self.raw),
        )


class MessageList:
    """Thread-safe, read-mostly list of received messages.

    Indexing and iteration give parsed :class:`email.message.EmailMessage`
    objects (with ``mail_from`` / ``rcpt_tos`` attributes); ``envelopes()``
    gives the :class:`Received` records themselves.  Iteration works on a
    snapshot, so the server may keep appending meanwhile.
    """

    def __init__(self, lock):
        self._lock = lock
        self._items = []

    def _append(self, received):
        # caller holds the lock
        self._items.append(received)

    def envelopes(self):
        with self._lock:
            return list(self._items)

    def __len__(self):
        with self._lock:
            return len(self._items)

    def __bool__(self):
        return len(self) > 0

    def __getitem__(self, index):
        with self._lock:
            item = self._items[index]
        if isinstance(index, slice):
            return [r.message for r in item]
        return item.message

    def __iter__(self):
        return iter([r.message for r in self.envelopes()])

    def __eq__(self, other):
        if isinstance(other, MessageList):
            other = list(other)
        return list(self) == other

    def clear(self):
        with self._lock:
            self._items.clear()

    def __repr__(self):
        return "<MessageList of %d messages>" % len(self)


class LoopbackSMTPServer:
    """Asyncio SMTP sink running in a background thread (see module doc)."""

    hostname = "loopback-smtp"

    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        maildir=None,
        keep_messages=True,
        max_size=DEFAULT_MAX_SIZE,
        verbose=False,
        log=None,
    ):
        self.host = host
        self.port = port
        self.maildir = maildir
        self.keep_messages = keep_messages
        self.max_size = max_size
        self.verbose = verbose
        self._log_stream = log or sys.stderr
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.messages = MessageList(self._lock)
        self._count = 0
        self._seq = 0
        self._failures = []  # list of [stage, remaining, code, text]
        self.connections_total = 0
        self.delay = 0  # seconds before answering each message
        self.connections_open = 0
        self.auth_attempts = []  # (mechanism, username) tuples
        self._loop = None
        self._server = None
        self._thread = None
        self._ready = threading.Event()
        self._start_error = None
        self._stopping = None
        self._writers = set()
        if maildir:
            os.makedirs(maildir, exist_ok=True)

    # ------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------
    @property
    def count(self):
        """Number of messages accepted since start (or since :meth:`reset`)."""
        with self._lock:
            return self._count

    @property
    def address(self):
        return (self.host, self.port)

    def start(self, timeout=10):
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(
            target=self._run, name="loopback-smtp-%s" % self.port, daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("loopback SMTP server did not start within %ss" % timeout)
        if self._start_error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise self._start_error
        return self

    def stop(self, timeout=10):
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(timeout)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_for(self, n, timeout=10.0):
        """Block until at least ``n`` messages arrived; return True, or False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._count < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def reset(self):
        """Forget received messages, the counter and pending failures."""
        with self._lock:
            self.messages._items.clear()
            self._count = 0
            self._failures.clear()

    def take(self):
        """Return the kept messages (:class:`Received` records) and forget them,
        atomically: long runs can check messages as they come without keeping
        them all in memory.  The counter is not reset."""
        with self._lock:
            items = list(self.messages._items)
            self.messages._items.clear()
        return items

    def fail_next(self, n=1, code=451, text=None, stage="rcpt"):
        """Answer the next ``n`` commands of ``stage`` with ``code`` (default 451).

        ``stage`` is ``'rcpt'`` (RCPT TO, the default), ``'mail'`` (MAIL FROM)
        or ``'data'`` (the DATA command itself).  4xx codes are temporary
        failures (to test retries), 5xx permanent ones.
        """
        stage = stage.lower()
        if stage not in ("rcpt", "mail", "data"):
            raise ValueError("stage must be 'rcpt', 'mail' or 'data'")
        if text is None:
            text = (
                "4.3.0 Temporary failure (loopback test)"
                if 400 <= code < 500
                else "5.7.1 Rejected (loopback test)"
            )
        with self._lock:
            self._failures.append([stage, int(n), int(code), text])

    def envelopes(self):
        return self.messages.envelopes()

    def recipients(self):
        """All envelope recipients of the kept messages, in order."""
        return [rcpt for r in self.messages.envelopes() for rcpt in r.rcpt_tos]

    def messages_to(self, address):
        address = address.lower()
        return [
            r.message
            for r in self.messages.envelopes()
            if address in (a.lower() for a in r.rcpt_tos)
        ]

    # ------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------
    def _take_failure(self, stage):
        if not self._failures:  # fast path, no lock
            return None
        with self._lock:
            for failure in self._failures:
                if failure[0] == stage and failure[1] > 0:
                    failure[1] -= 1
                    if failure[1] == 0:
                        self._failures.remove(failure)
                    return failure[2], failure[3]
        return None

    def _store(self, mail_from, rcpt_tos, raw, mail_options, rcpt_options, peer):
        now = time.time()
        with self._lock:
            self._seq += 1
            seq = self._seq
        path = None
        if self.maildir:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
            name = "%s.%06d-%06d.eml" % (stamp, int((now % 1) * 1e6), seq)
            path = os.path.join(self.maildir, name)
            tmp = os.path.join(self.maildir, ".%s.tmp" % name)
            with open(tmp, "wb") as fh:
                fh.write(raw)
            os.replace(tmp, path)
        received = Received(
            seq, mail_from, rcpt_tos, raw, mail_options, rcpt_options, peer, now, path
        )
        with self._cond:
            if self.keep_messages:
                self.messages._append(received)
            self._count += 1
            self._cond.notify_all()
        if self.verbose:
            subject = ""
            for line in raw[:8192].split(b"\n"):
                if line[:8].lower() == b"subject:":
                    subject = line[8:].strip().decode("utf-8", "replace")
                    break
                if not line.strip():
                    break
            print(
                "[loopback-smtp] #%d %s -> %s %s%s"
                % (seq, mail_from, ", ".join(rcpt_tos), subject, (" [%s]" % path) if path else ""),
                file=self._log_stream,
                flush=True,
            )
        return received

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            if not self._ready.is_set():
                self._start_error = e
                self._ready.set()
            else:
                print("[loopback-smtp] server crashed: %r" % (e,), file=self._log_stream)
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self):
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=self.max_size + 64 * 1024, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader, writer):
        self._writers.add(writer)
        with self._lock:
            self.connections_total += 1
            self.connections_open += 1
        try:
            await self._session(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as e:  # noqa: BLE001 - never kill the server for one client
            print("[loopback-smtp] session error: %r" % (e,), file=self._log_stream, flush=True)
        finally:
            self._writers.discard(writer)
            with self._lock:
                self.connections_open -= 1
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _session(self, reader, writer):  # noqa: C901 - one branch per SMTP command
        peer = writer.get_extra_info("peername")
        write = writer.write
        write(b"220 %s ESMTP loopback catcher ready\r\n" % self.hostname.encode())
        greeted = False
        mail_from = None
        mail_options = []
        rcpt_tos = []
        rcpt_options = []
        readline = reader.readline
        transport = writer.transport
        while True:
            # replies are tiny: only wait for the socket when it really lags behind
            if transport.get_write_buffer_size() > 65536:
                await writer.drain()
            try:
                line = await readline()
            except (ValueError, asyncio.LimitOverrunError):
                write(b"500 5.5.2 Line too long\r\n")
                return
            if not line:
                return
            verb = line[:4].upper()
            arg = line[4:].strip()
            if verb == b"MAIL":
                if not arg.upper().startswith(b"FROM:"):
                    write(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
                    continue
                failure = self._take_failure("mail")
                if failure:
                    write(b"%d %s\r\n" % (failure[0], failure[1].encode()))
                    continue
                address, params = _parse_path(arg[5:])
                if address is None:
                    write(b"501 5.1.7 Bad sender address syntax\r\n")
                    continue
                size = _size_param(params)
                if size is not None and size > self.max_size:
                    write(b"552 5.3.4 Message size exceeds fixed maximum message size\r\n")
                    continue
                # a new MAIL implicitly resets an unfinished transaction (lenient:
                # smtplib sends no RSET after a refused DATA command)
                mail_from, mail_options = address, params
                rcpt_tos, rcpt_options = [], []
                write(b"250 2.1.0 OK\r\n")
            elif verb == b"RCPT":
                if mail_from is None:
                    write(b"503 5.5.1 Error: need MAIL command\r\n")
                    continue
                if not arg.upper().startswith(b"TO:"):
                    write(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
                    continue
                failure = self._take_failure("rcpt")
                if failure:
                    write(b"%d %s\r\n" % (failure[0], failure[1].encode()))
                    continue
                address, params = _parse_path(arg[3:])
                if not address:
                    write(b"501 5.1.3 Bad recipient address syntax\r\n")
                    continue
                rcpt_tos.append(address)
                rcpt_options.append(params)
                write(b"250 2.1.5 OK\r\n")
            elif verb == b"DATA":
                if mail_from is None:
                    write(b"503 5.5.1 Error: need MAIL command\r\n")
                    continue
                if not rcpt_tos:
                    write(b"503 5.5.1 Error: need RCPT command\r\n")
                    continue
                failure = self._take_failure("data")
                if failure:
                    # like most MTAs, a refused DATA ends the transaction
                    mail_from, mail_options, rcpt_tos, rcpt_options = None, [], [], []
                    write(b"%d %s\r\n" % (failure[0], failure[1].encode()))
                    continue
                write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                await writer.drain()
                try:
                    raw = await _read_data(reader)
                except asyncio.LimitOverrunError:
                    write(b"552 5.3.4 Message size exceeds fixed maximum message size\r\n")
                    return
                if len(raw) > self.max_size:
                    write(b"552 5.3.4 Message size exceeds fixed maximum message size\r\n")
                else:
                    received = self._store(
                        mail_from, rcpt_tos, raw, mail_options, rcpt_options, peer
                    )
                    if self.delay:
                        # a slow server: the message is stored, the answer late
                        await asyncio.sleep(self.delay)
                    write(b"250 2.0.0 OK queued as %06d\r\n" % received.seq)
                mail_from, mail_options, rcpt_tos, rcpt_options = None, [], [], []
            elif verb == b"EHLO":
                greeted = True
                mail_from, mail_options, rcpt_tos, rcpt_options = None, [], [], []
                write(
                    b"250-%s Hello %s\r\n"
                    b"250-8BITMIME\r\n"
                    b"250-SMTPUTF8\r\n"
                    b"250-SIZE %d\r\n"
                    b"250-AUTH PLAIN LOGIN\r\n"
                    b"250-ENHANCEDSTATUSCODES\r\n"
                    b"250 HELP\r\n" % (self.hostname.encode(), arg or b"there", self.max_size)
                )
            elif verb == b"HELO":
                greeted = True
                mail_from, mail_options, rcpt_tos, rcpt_options = None, [], [], []
                write(b"250 %s\r\n" % self.hostname.encode())
            elif verb == b"RSET":
                mail_from, mail_options, rcpt_tos, rcpt_options = None, [], [], []
                write(b"250 2.0.0 OK\r\n")
            elif verb == b"NOOP":
                write(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            elif verb == b"AUTH":
                if not greeted:
                    write(b"503 5.5.1 Error: send EHLO first\r\n")
                    continue
                await self._auth(arg, reader, writer)
            elif verb == b"VRFY":
                write(b"252 2.0.0 Cannot VRFY user, but will accept message\r\n")
            elif verb == b"HELP":
                write(b"214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH HELP\r\n")
            elif verb == b"STAR":  # STARTTLS
                write(b"502 5.5.1 STARTTLS not supported by the loopback catcher\r\n")
            elif verb == b"EXPN":
                write(b"502 5.5.1 EXPN not supported\r\n")
            else:
                write(b"500 5.5.2 Error: command not recognized\r\n")

    async def _auth(self, arg, reader, writer):
        parts = arg.split(None, 1)
        mech = parts[0].upper() if parts else b""
        initial = parts[1] if len(parts) > 1 else None
        write = writer.write
        username = ""
        try:
            if mech == b"PLAIN":
                if initial is None or initial == b"=":
                    write(b"334 \r\n")
                    await writer.drain()
                    initial = (await reader.readline()).strip()
                if initial == b"*":
                    write(b"501 5.7.0 Authentication aborted\r\n")
                    return
                decoded = base64.b64decode(initial, validate=True) if initial else b""
                fields = decoded.split(b"\0")
                username = (fields[1] if len(fields) > 1 else b"").decode("utf-8", "replace")
            elif mech == b"LOGIN":
                if initial is None:
                    write(b"334 VXNlcm5hbWU6\r\n")  # "Username:"
                    await writer.drain()
                    initial = (await reader.readline()).strip()
                if initial == b"*":
                    write(b"501 5.7.0 Authentication aborted\r\n")
                    return
                username = base64.b64decode(initial, validate=True).decode("utf-8", "replace")
                write(b"334 UGFzc3dvcmQ6\r\n")  # "Password:"
                await writer.drain()
                password = (await reader.readline()).strip()
                if password == b"*":
                    write(b"501 5.7.0 Authentication aborted\r\n")
                    return
            else:
                write(b"504 5.5.4 Unrecognized authentication type\r\n")
                return
        except (binascii.Error, ValueError):
            write(b"501 5.5.2 Cannot decode response\r\n")
            return
        with self._lock:
            self.auth_attempts.append((mech.decode(), username))
        write(b"235 2.7.0 Authentication successful\r\n")


async def _read_data(reader):
    """Read a DATA payload up to the lone-dot line and undo dot-stuffing.

    Uses readuntil() on b'.\\r\\n' (a few large reads instead of one per line)
    and only stops where that dot starts a line.
    """
    buf = bytearray()
    readuntil = reader.readuntil
    while True:
        buf += await readuntil(b".\r\n")
        n = len(buf)
        if n == 3:  # ".\r\n" right away: empty message
            return b""
        if buf[n - 4] == 10:  # "\n.\r\n": end of data
            break
    del buf[-3:]  # drop ".\r\n", keep the last CRLF
    if b"\n." in buf:
        buf = buf.replace(b"\n.", b"\n")
    if buf[:1] == b".":
        del buf[0]
    return bytes(buf)


def _parse_path(arg):
    """Parse ``<addr> PARAM=VALUE ...``; return (address, [params]) or (None, [])."""
    arg = arg.strip()
    text = arg.decode("utf-8", "surrogateescape")
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            return None, []
        address = text[1:end].strip()
        rest = text[end + 1 :]
    else:
        pieces = text.split(None, 1)
        if not pieces:
            return None, []
        address = pieces[0]
        rest = pieces[1] if len(pieces) > 1 else ""
    if ":" in address and address.startswith("@"):  # strip source route "@a,@b:user@c"
        address = address.split(":", 1)[1]
    return address, rest.split()


def _size_param(params):
    for param in params:
        if param[:5].upper() == "SIZE=":
            try:
                return int(param[5:])
            except ValueError:
                return None
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description="Loopback SMTP catcher (never relays anything).")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; keep it on loopback)",
    )
    parser.add_argument(
        "--port", type=int, default=2525, help="port (0 = any free port; default 2525)"
    )
    parser.add_argument("--maildir", help="also write every message to DIR/<timestamp>-<seq>.eml")
    parser.add_argument("--port-file", help="write the port actually used to this file")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    parser.add_argument("--verbose", "-v", action="store_true", help="print one line per message")
    parser.add_argument(
        "--no-keep",
        action="store_true",
        help="do not keep messages in memory (for long benchmark runs)",
    )
    args = parser.parse_args(argv)

    server = LoopbackSMTPServer(
        args.host,
        args.port,
        maildir=args.maildir,
        keep_messages=not args.no_keep and not args.maildir,
        max_size=args.max_size,
        verbose=args.verbose,
        log=sys.stdout,
    )
    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server.start()
    except OSError as e:
        print(
            "loopback SMTP: cannot listen on %s:%s: %s" % (args.host, args.port, e), file=sys.stderr
        )
        return 1
    if args.port_file:
        with open(args.port_file, "w") as fh:
            fh.write("%d\n" % server.port)
    print(
        "loopback SMTP listening on %s:%d%s (pid %d)"
        % (
            server.host,
            server.port,
            (", writing messages to %s" % os.path.abspath(args.maildir)) if args.maildir else "",
            os.getpid(),
        ),
        flush=True,
    )
    while not stop.wait(3600):
        pass
    server.stop()
    print("loopback SMTP stopped after %d message(s)" % server.count, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
