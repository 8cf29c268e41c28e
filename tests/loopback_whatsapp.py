"""A loopback server speaking the part of the WhatsApp Business Cloud API
(Graph API) the addon uses, for the tests. Standard library only; listens on
127.0.0.1 only.

    server = LoopbackWhatsAppServer(token="secret").start()
    server.endpoint      # http://127.0.0.1:<port>/v21.0
    ...
    server.stop()

Endpoints:
- POST /v21.0/<account>/message_templates: registers a template, PENDING;
- GET  /v21.0/<account>/message_templates?name=<name>: its status, as set
  with ``set_template_status(name, "APPROVED" | "REJECTED", reason)``;
- POST /v21.0/<phone number id>/messages: a template message; answers a
  wamid, or the Graph API error for numbers in ``undeliverable`` (131026,
  final) and, once per number in ``throttle_once``, a 429 (130429, retry).
Every call must carry ``Authorization: Bearer <token>``. Connections are kept
alive (HTTP/1.1); ``connections`` counts them, ``sent_at`` holds when each
message was accepted.

Run as a script it is the WhatsApp sandbox of ``scripts/run``: templates are
approved when their status is first read, and every message sent is written
to ``--outdir`` as a JSON file::

    python3 tests/loopback_whatsapp.py --port 0 --outdir .local/whatsapp --port-file F
"""
# a standalone server: it announces its endpoint on stdout
# pylint: disable=print-used

import argparse
import json
import os
import time
from urllib.parse import parse_qs, urlparse

try:
    from .loopback_http import LoopbackHTTPServer, LoopbackJSONHandler
except ImportError:  # run as a script
    from loopback_http import LoopbackHTTPServer, LoopbackJSONHandler

VERSION = "v21.0"


class _Handler(LoopbackJSONHandler):
    server_version = "LoopbackGraph/1.0"
    # keep-alive: a client's session sends many requests on one connection
    protocol_version = "HTTP/1.1"

    def setup(self):
        res = super().setup()
        with self.server.owner.lock:
            self.server.owner.connections += 1
        return res

    def _error(self, status, code, message):
        self._reply(
            status,
            {
                "error": {
                    "message": message,
                    "type": "OAuthException",
                    "code": code,
                    "fbtrace_id": "loopback",
                }
            },
        )

    def _authorized(self):
        owner = self.server.owner
        if self.headers.get("Authorization") != f"Bearer {owner.token}":
            self._error(401, 190, "Invalid OAuth access token.")
            return False
        return True

    def _path(self):
        parts = urlparse(self.path).path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != VERSION:
            return None, None
        return parts[1], parts[2]

    def do_GET(self):
        if not self._authorized():
            return
        node, edge = self._path()
        owner = self.server.owner
        if edge != "message_templates" or node != owner.account_id:
            return self._error(404, 100, "Unknown path")
        name = parse_qs(urlparse(self.path).query).get("name", [None])[0]
        with owner.lock:
            if owner.auto_approve:
                for template in owner.templates.values():
                    if template["status"] == "PENDING":
                        template["status"] = "APPROVED"
            data = [dict(t) for t in owner.templates.values() if name in (None, t["name"])]
        return self._reply(200, {"data": data})

    def do_POST(self):
        # the body is read first: on a kept-alive connection the next
        # request starts right after it
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if not self._authorized():
            return
        node, edge = self._path()
        owner = self.server.owner
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return self._error(400, 100, "Invalid JSON")
        with owner.lock:
            if edge == "message_templates" and node == owner.account_id:
                return self._create_template(payload)
            if edge == "messages" and node == owner.phone_number_id:
                return self._send(payload)
        return self._error(404, 100, "Unknown path")

    def _create_template(self, payload):
        owner = self.server.owner
        missing = [k for k in ("name", "language", "category", "components") if not payload.get(k)]
        if missing:
            return self._error(400, 100, f"Missing parameter {missing[0]}")
        owner.template_requests.append(payload)
        template_id = str(1000 + len(owner.templates))
        owner.templates[payload["name"]] = {
            "id": template_id,
            "name": payload["name"],
            "language": payload["language"],
            "category": payload["category"],
            "status": "PENDING",
            "rejected_reason": "NONE",
        }
        return self._reply(
            200, {"id": template_id, "status": "PENDING", "category": payload["category"]}
        )

    def _send(self, payload):
        owner = self.server.owner
        to = payload.get("to") or ""
        template = payload.get("template") or {}
        if payload.get("messaging_product") != "whatsapp" or payload.get("type") != "template":
            return self._error(400, 100, "Only template messages are supported here")
        known = owner.templates.get(template.get("name"))
        if not known or known["status"] != "APPROVED":
            return self._error(400, 132001, "Template name does not exist in the translation")
        if to in owner.throttle_once:
            owner.throttle_once.discard(to)
            return self._error(429, 130429, "Rate limit hit")
        if to in owner.undeliverable:
            return self._error(400, 131026, "Message undeliverable")
        owner.counter += 1
        wamid = f"wamid.loopback{owner.counter:06d}"
        owner.messages.append({"id": wamid, "to": to, "template": template})
        owner.sent_at.append(time.clock_gettime(time.CLOCK_MONOTONIC))
        if owner.outdir:
            with open(os.path.join(owner.outdir, f"{wamid}.json"), "w") as fh:
                json.dump(owner.messages[-1], fh, indent=2)
        return self._reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid}],
            },
        )


class LoopbackWhatsAppServer(LoopbackHTTPServer):
    handler_class = _Handler

    def __init__(
        self,
        token="loopback-token",
        account_id="111",
        phone_number_id="222",
        auto_approve=False,
        outdir=None,
        port=0,
    ):
        super().__init__(port)
        self.auto_approve = auto_approve
        self.outdir = outdir
        self.token = token
        self.account_id = account_id
        self.phone_number_id = phone_number_id
        self.templates = {}
        self.template_requests = []
        self.messages = []
        self.undeliverable = set()
        self.throttle_once = set()
        self.counter = 0
        self.connections = 0  # TCP connections accepted
        self.sent_at = []  # CLOCK_MONOTONIC of each message accepted

    @property
    def endpoint(self):
        return f"{self.base_url}/{VERSION}"

    def set_template_status(self, name, status, reason="NONE"):
        with self.lock:
            self.templates[name]["status"] = status
            self.templates[name]["rejected_reason"] = reason


def main():
    parser = argparse.ArgumentParser(description="Loopback WhatsApp Cloud API sandbox")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="sandbox-token")
    parser.add_argument("--account-id", default="111")
    parser.add_argument("--phone-number-id", default="222")
    parser.add_argument("--outdir", help="write each message sent as <wamid>.json here")
    parser.add_argument("--port-file", help="write the port listened on to this file")
    args = parser.parse_args()
    if args.outdir:
        os.makedirs(args.outdir, exist_ok=True)
    server = LoopbackWhatsAppServer(
        token=args.token,
        account_id=args.account_id,
        phone_number_id=args.phone_number_id,
        auto_approve=True,
        outdir=args.outdir,
        port=args.port,
    ).start()
    if args.port_file:
        with open(args.port_file, "w") as fh:
            fh.write(server.base_url.rsplit(":", 1)[1])
    print(f"WhatsApp sandbox on {server.endpoint}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
