"""A loopback server speaking Firebase Cloud Messaging's HTTP v1 API and the
OAuth2 token endpoint of Google service accounts, for the tests. Standard
library and cryptography (an Odoo requirement) only; 127.0.0.1 only.

    server = LoopbackFCMServer(project_id="demo-project").start()
    server.service_account()   # JSON text of a service account whose key it checks
    server.endpoint            # FCM base URL
    server.stop()

- POST /token: an OAuth2 JWT-bearer grant; the assertion must be signed
  (RS256) with the service account's key, for the messaging scope;
- POST /v1/projects/<project>/messages:send with the access token: a
  notification to one device token; tokens in ``unregistered`` answer 404
  UNREGISTERED, tokens in ``unavailable_once`` a 503 UNAVAILABLE once.

Run as a script it is the push sandbox of ``scripts/run``: it writes the
service account Odoo signs in with to ``--account-file`` (its key kept in
``--key-file`` across restarts) and every notification sent to ``--outdir``
as a JSON file::

    python3 tests/loopback_fcm.py --port 0 --outdir .local/push --port-file F \
        --account-file .local/push-account.json --key-file .local/push-key.pem
"""

import argparse
import base64
import json
import os
import time
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

try:
    from .loopback_http import LoopbackHTTPServer, LoopbackJSONHandler
except ImportError:  # run as a script
    from loopback_http import LoopbackHTTPServer, LoopbackJSONHandler

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Handler(LoopbackJSONHandler):
    def _fcm_error(self, status, state, message, code=None):
        details = (
            [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
            if code
            else []
        )
        self._reply(
            status,
            {"error": {"code": status, "message": message, "status": state, "details": details}},
        )

    def do_POST(self):
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with owner.lock:
            if self.path == "/token":
                return self._token(parse_qs(body.decode()))
            prefix = f"/v1/projects/{owner.project_id}/messages:send"
            if self.path == prefix:
                return self._send(body)
        return self._reply(404, {"error": {"code": 404, "message": "Not found"}})

    def _token(self, form):
        owner = self.server.owner
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self._reply(400, {"error": "unsupported_grant_type"})
        try:
            header, claims, signature = (form.get("assertion") or [""])[0].split(".")
            owner.public_key.verify(
                _unb64(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(_unb64(claims))
        except (ValueError, InvalidSignature):
            return self._reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            )
        if (
            claims.get("iss") != owner.client_email
            or claims.get("scope") != SCOPE
            or claims.get("aud") != owner.token_uri
            or claims.get("exp", 0) < time.time()
        ):
            return self._reply(
                400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."}
            )
        owner.counter += 1
        token = f"ya29.loopback{owner.counter}"
        owner.access_tokens.add(token)
        return self._reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _send(self, body):
        owner = self.server.owner
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in owner.access_tokens:
            return self._fcm_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        try:
            message = json.loads(body)["message"]
            device = message["token"]
            notification = message["notification"]
        except (ValueError, KeyError, TypeError):
            return self._fcm_error(400, "INVALID_ARGUMENT", "Invalid message", "INVALID_ARGUMENT")
        if device in owner.unavailable_once:
            owner.unavailable_once.discard(device)
            return self._fcm_error(503, "UNAVAILABLE", "The service is unavailable.", "UNAVAILABLE")
        if device in owner.unregistered:
            return self._fcm_error(
                404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"
            )
        owner.counter += 1
        name = f"projects/{owner.project_id}/messages/0:{owner.counter}"
        owner.messages.append(
            {
                "name": name,
                "token": device,
                "notification": notification,
                "data": message.get("data") or {},
            }
        )
        if owner.outdir:
            with open(
                os.path.join(owner.outdir, f"{owner.counter:06d}.json"), "w", encoding="utf-8"
            ) as f:
                json.dump(owner.messages[-1], f, ensure_ascii=False, indent=1)
        return self._reply(200, {"name": name})


class LoopbackFCMServer(LoopbackHTTPServer):
    handler_class = _Handler

    def __init__(self, project_id="loopback-project", port=0, outdir=None, private_key=None):
        super().__init__(port)
        self.project_id = project_id
        self.outdir = outdir
        self.client_email = f"marketing@{project_id}.iam.gserviceaccount.com"
        self.private_key = private_key or rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        self.public_key = self.private_key.public_key()
        self.messages = []
        self.access_tokens = set()
        self.unregistered = set()
        self.unavailable_once = set()
        self.counter = 0

    @property
    def endpoint(self):
        return self.base_url

    @property
    def token_uri(self):
        return f"{self.base_url}/token"

    def service_account(self):
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.project_id,
                "private_key_id": "loopback",
                "private_key": pem,
                "client_email": self.client_email,
                "token_uri": self.token_uri,
            }
        )


def _load_or_create_key(path):
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path:
        with open(path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        os.chmod(path, 0o600)
    return key


def main():
    parser = argparse.ArgumentParser(description="Loopback Firebase Cloud Messaging sandbox")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project-id", default="mkt-demo")
    parser.add_argument("--outdir", help="write each notification sent as a JSON file here")
    parser.add_argument("--port-file", help="write the port listened on to this file")
    parser.add_argument("--account-file", help="write the service account JSON here")
    parser.add_argument("--key-file", help="the service account's key, kept across restarts")
    args = parser.parse_args()
    if args.outdir:
        os.makedirs(args.outdir, exist_ok=True)
    server = LoopbackFCMServer(
        project_id=args.project_id,
        port=args.port,
        outdir=args.outdir,
        private_key=_load_or_create_key(args.key_file),
    ).start()
    if args.account_file:
        with open(args.account_file, "w", encoding="utf-8") as f:
            f.write(server.service_account())
        os.chmod(args.account_file, 0o600)
    server.serve_sandbox(args.port_file, f"Push sandbox on {server.endpoint}")


if __name__ == "__main__":
    main()
