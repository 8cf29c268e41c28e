"""Client of Firebase Cloud Messaging's HTTP v1 API, a plain class as
``addons/sms/tools/sms_api.py`` is, authenticated with a service account: an
OAuth2 access token obtained with a signed JWT (RFC 7523), cached per process
until it expires.

The JWT is signed here with ``cryptography`` (an Odoo requirement):
``google-auth`` is not a requirement of Odoo Community and the grant is one
RS256 signature. The FCM endpoint and the token URI are settings: tests and
the demo point them at loopback servers."""

import base64
import hashlib
import json
import threading
import time

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from odoo.exceptions import UserError

from .api_client import ApiClient

DEFAULT_FCM_ENDPOINT = "https://fcm.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# FCM error codes meaning the device token is dead: the token is deactivated
DEAD_TOKEN_CODES = {"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}
TIMEOUT = 30
# an access token is renewed this long before it expires
EXPIRY_MARGIN = 60

# access tokens of this process: cache key -> (access token, expiry on the
# time.monotonic() clock). Keyed by the service account (project, e-mail,
# key) and the endpoints, so that another account or server never gets it.
_token_cache = {}
_token_cache_lock = threading.Lock()


class PushError(Exception):
    def __init__(self, message, transient=False, dead_token=False):
        super().__init__(message)
        self.transient = transient
        self.dead_token = dead_token


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def clear_token_cache():
    """Forget every cached access token (e.g. after a key rotation)."""
    with _token_cache_lock:
        _token_cache.clear()


class FcmApi(ApiClient):
    """One client per batch of notifications: they share one keep-alive HTTP
    session, closed by ``close()`` (or at the end of a ``with`` block).
    Raises ``UserError`` when no valid service account is configured."""

    def _get_config(self):
        # ir.config_parameter is admin-only: the service account, kept in this client
        params = self.env["ir.config_parameter"].sudo()
        raw = params.get_param("mkt_campaign.fcm_service_account")
        if not raw:
            raise UserError(
                self.env._(
                    "Push notifications are not configured: paste the Firebase "
                    "service account (JSON) in Marketing > Configuration > Settings."
                )
            )
        try:
            account = json.loads(raw)
            config = {
                "project_id": account["project_id"],
                "client_email": account["client_email"],
                "private_key": account["private_key"],
                "token_uri": account.get("token_uri") or DEFAULT_TOKEN_URI,
            }
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(
                self.env._(
                    "The Firebase service account is not valid JSON with project_id, "
                    "client_email and private_key (%(error)s).",
                    error=error,
                )
            ) from error
        config["endpoint"] = (
            params.get_param("mkt_campaign.fcm_endpoint") or DEFAULT_FCM_ENDPOINT
        ).rstrip("/")
        return config

    # ------------------------------------------------------------------
    # OAuth2 (service account)
    # ------------------------------------------------------------------

    @property
    def _cache_key(self):
        config = self.config
        key_digest = hashlib.sha256(str(config["private_key"]).encode()).hexdigest()
        return (
            config["project_id"],
            config["client_email"],
            key_digest,
            config["token_uri"],
            config["endpoint"],
        )

    def _signed_assertion(self):
        config = self.config
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {
            "iss": config["client_email"],
            "scope": FCM_SCOPE,
            "aud": config["token_uri"],
            "iat": now,
            "exp": now + 3600,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        try:
            key = serialization.load_pem_private_key(config["private_key"].encode(), password=None)
        except (ValueError, TypeError) as error:
            raise UserError(
                self.env._(
                    "The private key of the Firebase service account cannot be read: %(error)s",
                    error=error,
                )
            ) from error
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def _request_access_token(self):
        """A new access token from the token URI: (token, lifetime in seconds)."""
        try:
            response = requests.post(
                self.config["token_uri"],
                data={
                    "grant_type": JWT_BEARER_GRANT,
                    "assertion": self._signed_assertion(),
                },
                timeout=TIMEOUT,
            )
            data = response.json()
        except (requests.RequestException, ValueError) as error:
            raise PushError(
                self.env._("Firebase authentication failed: %(error)s", error=error), transient=True
            ) from error
        if response.status_code != 200 or not isinstance(data, dict) or "access_token" not in data:
            data = data if isinstance(data, dict) else {}
            raise PushError(
                self.env._(
                    "Firebase refused the service account: %(error)s",
                    error=data.get("error_description")
                    or data.get("error")
                    or response.status_code,
                ),
                transient=response.status_code >= 500,
            )
        try:
            lifetime = int(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600
        return data["access_token"], lifetime

    def access_token(self, refresh=False):
        """The service account's access token: the cached one while it is
        valid, else a new one (``refresh``: always a new one)."""
        key = self._cache_key
        if not refresh:
            with _token_cache_lock:
                cached = _token_cache.get(key)
            if cached and cached[1] > time.monotonic():
                return cached[0]
        # requested outside the lock: two threads may both ask, both tokens are valid
        token, lifetime = self._request_access_token()
        with _token_cache_lock:
            _token_cache[key] = (token, time.monotonic() + max(lifetime - EXPIRY_MARGIN, 0))
        return token

    def _forget_access_token(self, token):
        with _token_cache_lock:
            if _token_cache.get(self._cache_key, (None,))[0] == token:
                del _token_cache[self._cache_key]

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------

    def authenticate(self):
        """Open the HTTP session with the access token (cached or new).
        Raises ``PushError`` when Firebase refuses or cannot be reached."""
        if self._session is None:
            token = self.access_token()
            self._session = requests.Session()
            self._session.headers["Authorization"] = f"Bearer {token}"
        return self._session

    def send(self, token, title, body, data=None):
        """Send one notification to the device ``token``; returns FCM's
        message name. Raises ``PushError`` (``transient``: worth another
        attempt; ``dead_token``: the device is gone)."""
        session = self.authenticate()
        project = self.config["project_id"]
        url = f"{self.config['endpoint']}/v1/projects/{project}/messages:send"
        message = {"token": token, "notification": {"title": title, "body": body}}
        if data:
            message["data"] = {key: str(value) for key, value in data.items()}
        response = self._post(session, url, message)
        if response.status_code == 401:
            # the cached access token was revoked before its expiry: one new one
            access = session.headers["Authorization"].removeprefix("Bearer ")
            self._forget_access_token(access)
            session.headers["Authorization"] = f"Bearer {self.access_token(refresh=True)}"
            response = self._post(session, url, message)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.status_code == 200:
            return payload.get("name")
        error = payload.get("error") or {}
        codes = {detail.get("errorCode") for detail in error.get("details") or []}
        codes.add(error.get("status"))
        raise PushError(
            self.env._(
                "Firebase error %(code)s: %(message)s",
                code=", ".join(sorted(c for c in codes if c)) or response.status_code,
                message=error.get("message") or response.reason,
            ),
            transient=response.status_code in (429, 500, 503)
            or bool({"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"} & codes),
            dead_token=response.status_code == 404 or bool(DEAD_TOKEN_CODES & codes),
        )

    def _post(self, session, url, message):
        try:
            return session.post(url, json={"message": message}, timeout=TIMEOUT)
        except requests.RequestException as error:
            raise PushError(
                self.env._("Firebase unreachable: %(error)s", error=error), transient=True
            ) from error
