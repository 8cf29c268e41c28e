"""A loopback server speaking the HTTP API of Odoo's SMS gateway (IAP,
``addons/sms/tools/sms_api.py``) for the tests and the demo. Standard library
only; listens on 127.0.0.1 only.

    server = LoopbackSmsServer().start()
    server.endpoint      # http://127.0.0.1:<port>: Odoo's 'sms.endpoint'
    ...
    server.stop()

- POST /api/sms/3/send (JSON-RPC, as ``SmsApi._send_sms_batch`` calls it):
  every number of every message is accepted ('success') unless its number is
  in ``states`` (e.g. ``{"+32470000002": "country_not_supported"}``); with
  ``down`` set the gateway answers HTTP 503 (Odoo marks the batch
  'server_error'). ``requests`` counts the calls, ``sent`` lists the SMS
  accepted ({uuid, number, content, webhook_url}).
- ``delivery_report(uuids, status)`` posts a delivery report ('delivered',
  'not_delivered', 'expired'…) to the webhook URL Odoo gave with the SMS, as
  IAP does (``/sms/status`` of addons/sms).

In the tests Odoo refuses to reach IAP (``iap_tools.iap_jsonrpc``); the
test classes route it to this server with ``patch_iap(server)``.

Run as a script it is the SMS sandbox of ``scripts/run``: each SMS accepted is
written to ``--outdir`` as a JSON file and reported delivered a moment later::

    python3 tests/loopback_sms.py --port 0 --outdir .local/sms --port-file F
"""

import argparse
import contextlib
import json
import os
import threading
import time
import urllib.request
import uuid as uuid_lib

try:
    from .loopback_http import LoopbackHTTPServer, LoopbackJSONHandler
except ImportError:  # run as a script
    from loopback_http import LoopbackHTTPServer, LoopbackJSONHandler

SEND_PATH = "/api/sms/3/send"


class _Handler(LoopbackJSONHandler):
    server_version = "LoopbackSMS/1.0"

    def do_POST(self):
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._reply(400, {"error": "bad json"})
        with owner.lock:
            owner.requests += 1
            down = owner.down
        if down:
            return self._reply(503, {"error": "service unavailable"})
        if self.path.split("?")[0] != SEND_PATH:
            return self._reply(404, {"error": "unknown path"})
        params = request.get("params") or {}
        webhook_url = params.get("webhook_url")
        results, accepted = [], []
        with owner.lock:
            for message in params.get("messages") or []:
                for number in message.get("numbers") or []:
                    state = owner.states.get(number.get("number"), "success")
                    results.append({"uuid": number.get("uuid"), "state": state, "credit": 1})
                    if state == "success":
                        accepted.append(
                            {
                                "uuid": number.get("uuid"),
                                "number": number.get("number"),
                                "content": message.get("content"),
                                "webhook_url": webhook_url,
                            }
                        )
            owner.sent += accepted
        for sms in accepted:
            owner._written(sms)
        self._reply(200, {"jsonrpc": "2.0", "id": request.get("id"), "result": results})
        if owner.auto_deliver and accepted and webhook_url:
            threading.Thread(
                target=owner._deliver_later,
                args=([s["uuid"] for s in accepted], webhook_url),
                daemon=True,
            ).start()


class LoopbackSmsServer(LoopbackHTTPServer):
    handler_class = _Handler

    def __init__(self, port=0, outdir=None, auto_deliver=False):
        super().__init__(port)
        self.outdir = outdir
        self.auto_deliver = auto_deliver
        self.states = {}
        self.down = False
        self.requests = 0
        self.sent = []

    @property
    def endpoint(self):
        return self.base_url

    def reset(self):
        with self.lock:
            self.states.clear()
            self.down = False
            self.requests = 0
            self.sent = []

    def _written(self, sms):
        if not self.outdir:
            return
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{sms['uuid'] or uuid_lib.uuid4().hex}.json"
        with open(os.path.join(self.outdir, name), "w", encoding="utf-8") as f:
            json.dump(
                {"to": sms["number"], "body": sms["content"], "uuid": sms["uuid"]},
                f,
                ensure_ascii=False,
                indent=1,
            )

    def _deliver_later(self, uuids, webhook_url):
        time.sleep(1)
        # the demo's Odoo is gone: nothing to report to
        with contextlib.suppress(OSError):
            self.delivery_report(uuids, "delivered", webhook_url)

    def delivery_report(self, uuids, status, webhook_url=None, post=None):
        """Post a delivery report for ``uuids`` to Odoo, as IAP does (the
        JSON-RPC call of ``/sms/status``). ``post(url, payload)``: how to post
        it (an HttpCase's ``url_open``), urllib by default."""
        if not webhook_url:
            webhook_url = next(s["webhook_url"] for s in self.sent if s["uuid"] in uuids)
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": uuid_lib.uuid4().hex,
            "params": {"message_statuses": [{"sms_status": status, "uuids": list(uuids)}]},
        }
        if post:
            return post(webhook_url, payload)
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            webhook_url,
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")


def loopback_iap_jsonrpc(server):
    """``iap_tools.iap_jsonrpc`` for the tests: the same JSON-RPC call and
    errors, to ``server`` only (Odoo refuses any IAP call under tests)."""
    import requests

    from odoo import exceptions

    def iap_jsonrpc(url, method="call", params=None, timeout=15):
        if not url.startswith(server.endpoint + "/"):
            # a test server's errors, as iap_tools raises them: not translated
            raise exceptions.AccessError("Unavailable during tests.")  # pylint: disable=translation-required
        payload = {"jsonrpc": "2.0", "method": method, "params": params, "id": uuid_lib.uuid4().hex}
        try:
            response = requests.post(url, json=payload, timeout=timeout)
            response.raise_for_status()
            data = response.json()
        except (
            ValueError,
            requests.exceptions.ConnectionError,
            requests.exceptions.MissingSchema,
            requests.exceptions.Timeout,
            requests.exceptions.HTTPError,
        ) as e:
            # a test server's errors, as iap_tools raises them: not translated
            raise exceptions.AccessError(  # pylint: disable=translation-required
                f"The url that this service requested returned an error. {url}"
            ) from e
        if "error" in data:
            raise exceptions.UserError(str(data["error"]))
        return data.get("result")

    return iap_jsonrpc


def patch_iap(server):
    """A patcher (``with`` or ``startClassPatcher``) routing Odoo's IAP calls
    to ``server``."""
    from unittest.mock import patch

    return patch(
        "odoo.addons.iap.tools.iap_tools.iap_jsonrpc", side_effect=loopback_iap_jsonrpc(server)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--port-file", help="write the port listened on to this file")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    server = LoopbackSmsServer(port=args.port, outdir=args.outdir, auto_deliver=True).start()
    server.serve_sandbox(
        args.port_file, f"SMS sandbox on {server.endpoint}, messages in {args.outdir}"
    )


if __name__ == "__main__":
    main()
