import base64
import json
import logging
import time

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from odoo import api, fields, models
from odoo.exceptions import UserError

_logger = logging.getLogger(__name__)

DEFAULT_FCM_ENDPOINT = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# FCM error codes meaning the device token is dead: the token is deactivated
DEAD_TOKEN_CODES = {"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}


class PushError(Exception):
    def __init__(self, message, transient=False, dead_token=False):
        super().__init__(message)
        self.transient = transient
        self.dead_token = dead_token


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class MktPushToken(models.Model):
    """A device (phone app, browser) of a contact that accepts push
    notifications: the Firebase Cloud Messaging registration token the app
    received, registered through /mkt_campaign/push/register."""

    _name = "mkt.push.token"
    _description = "Push Notification Device"
    _order = "id desc"

    partner_id = fields.Many2one(
        "res.partner", "Contact", required=True, ondelete="cascade", index=True
    )
    token = fields.Char("Device Token", required=True)
    platform = fields.Selection(
        [("android", "Android"), ("ios", "iOS"), ("web", "Web")], default="android"
    )
    active = fields.Boolean(default=True)
    last_error = fields.Char(readonly=True)

    _token_unique = models.Constraint("UNIQUE(token)", "A device token is registered once.")


class MktPushApi(models.AbstractModel):
    """Client of Firebase Cloud Messaging's HTTP v1 API, authenticated with a
    service account (an OAuth2 token obtained with a signed JWT). The FCM
    endpoint and the token URI are settings: tests and the demo point them at
    loopback servers."""

    _name = "mkt.push.api"
    _description = "Firebase Cloud Messaging client"

    @api.model
    def _get_config(self):
        params = self.env["ir.config_parameter"].sudo()
        raw = params.get_param("mkt_campaign.fcm_service_account")
        if not raw:
            raise UserError(self.env._(
                "Push notifications are not configured: paste the Firebase service account "
                "(JSON) in Marketing > Configuration > Settings."
            ))
        try:
            account = json.loads(raw)
            config = {
                "project_id": account["project_id"],
                "client_email": account["client_email"],
                "private_key": account["private_key"],
                "token_uri": account.get("token_uri") or "https://oauth2.googleapis.com/token",
            }
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(self.env._(
                "The Firebase service account is not valid JSON with project_id, "
                "client_email and private_key (%(error)s).", error=error,
            )) from error
        config["endpoint"] = (params.get_param("mkt_campaign.fcm_endpoint")
                              or DEFAULT_FCM_ENDPOINT).rstrip("/")
        return config

    @api.model
    def _signed_assertion(self, config):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {"iss": config["client_email"], "scope": FCM_SCOPE,
                  "aud": config["token_uri"], "iat": now, "exp": now + 3600}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        try:
            key = serialization.load_pem_private_key(config["private_key"].encode(), password=None)
        except (ValueError, TypeError) as error:
            raise UserError(self.env._(
                "The private key of the Firebase service account cannot be read: %(error)s",
                error=error,
            )) from error
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    @api.model
    def _session(self, config):
        """An HTTP session carrying an OAuth2 access token of the service account."""
        try:
            response = requests.post(config["token_uri"], data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": self._signed_assertion(config),
            }, timeout=30)
            data = response.json()
        except (requests.RequestException, ValueError) as error:
            raise PushError(self.env._("Firebase authentication failed: %(error)s", error=error),
                            transient=True) from error
        if response.status_code != 200 or "access_token" not in data:
            raise PushError(self.env._(
                "Firebase refused the service account: %(error)s",
                error=data.get("error_description") or data.get("error") or response.status_code,
            ), transient=response.status_code >= 500)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {data['access_token']}"
        return session

    @api.model
    def _send(self, session, config, token, title, body, data=None):
        """Send one notification; returns FCM's message name."""
        url = f"{config['endpoint']}/v1/projects/{config['project_id']}/messages:send"
        message = {"token": token, "notification": {"title": title, "body": body}}
        if data:
            message["data"] = {key: str(value) for key, value in data.items()}
        try:
            response = session.post(url, json={"message": message}, timeout=30)
        except requests.RequestException as error:
            raise PushError(self.env._("Firebase unreachable: %(error)s", error=error),
                            transient=True) from error
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code == 200:
            return payload.get("name")
        error = payload.get("error") or {}
        codes = {detail.get("errorCode") for detail in error.get("details") or []}
        codes.add(error.get("status"))
        raise PushError(
            self.env._("Firebase error %(code)s: %(message)s",
                       code=", ".join(sorted(c for c in codes if c)) or response.status_code,
                       message=error.get("message") or response.reason),
            transient=response.status_code in (429, 500, 503) or bool(
                {"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED"} & codes),
            dead_token=response.status_code == 404 or bool(DEAD_TOKEN_CODES & codes),
        )
