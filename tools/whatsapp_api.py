"""Client of the WhatsApp Business Cloud API (Graph API), a plain class as
``addons/sms/tools/sms_api.py`` is: configuration, HTTP session, errors.

The endpoint is a setting (``mkt_campaign.whatsapp_endpoint``): tests and the
demo database point it at a loopback server."""

import requests

from odoo.exceptions import UserError

from .api_client import ApiClient

DEFAULT_ENDPOINT = "https://graph.facebook.com/v21.0"
# Graph API error codes worth another attempt later: throttling, temporary
# outages (the others, e.g. 131026 undeliverable, are final)
TRANSIENT_CODES = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131048, 131056}
TIMEOUT = 30


class WhatsAppError(Exception):
    def __init__(self, message, transient=False, code=None):
        super().__init__(message)
        self.transient = transient
        self.code = code


class WhatsAppApi(ApiClient):
    """One client per batch of calls: the requests share one keep-alive HTTP
    session, closed by ``close()`` (or at the end of a ``with`` block).
    Raises ``UserError`` when WhatsApp is not configured."""

    def _get_config(self):
        params = self.env["ir.config_parameter"].sudo()
        config = {
            "endpoint": (params.get_param("mkt_campaign.whatsapp_endpoint")
                         or DEFAULT_ENDPOINT).rstrip("/"),
            "token": params.get_param("mkt_campaign.whatsapp_token"),
            "phone_number_id": params.get_param("mkt_campaign.whatsapp_phone_number_id"),
            "account_id": params.get_param("mkt_campaign.whatsapp_account_id"),
        }
        missing = [label for key, label in (
            ("token", self.env._("access token")),
            ("phone_number_id", self.env._("phone number ID")),
            ("account_id", self.env._("business account ID")),
        ) if not config[key]]
        if missing:
            raise UserError(self.env._(
                "WhatsApp is not configured: set the %(missing)s in Marketing > "
                "Configuration > Settings.", missing=", ".join(missing),
            ))
        return config

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["Authorization"] = f"Bearer {self.config['token']}"
        return self._session

    def call(self, method, path, payload=None, params=None):
        """One Graph API request; returns the decoded JSON answer or raises
        ``WhatsAppError`` (``transient`` when worth another attempt later)."""
        url = f"{self.config['endpoint']}/{path}"
        try:
            response = self.session.request(
                method, url, json=payload, params=params, timeout=TIMEOUT
            )
        except requests.RequestException as error:
            raise WhatsAppError(
                self.env._("WhatsApp API unreachable: %(error)s", error=error), transient=True
            ) from error
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400 or (isinstance(data, dict) and "error" in data):
            error = data.get("error") or {} if isinstance(data, dict) else {}
            code = error.get("code")
            transient = (response.status_code >= 500 or response.status_code == 429
                         or code in TRANSIENT_CODES)
            raise WhatsAppError(self.env._(
                "WhatsApp API error %(code)s: %(message)s",
                code=code or response.status_code,
                message=error.get("message") or response.text[:200] or response.reason,
            ), transient=transient, code=code)
        return data

    # ------------------------------------------------------------------
    # Endpoints
    # ------------------------------------------------------------------

    def send_message(self, payload):
        """Send one message (a template message payload); returns the id
        WhatsApp gave it (wamid), or None."""
        data = self.call("POST", f"{self.config['phone_number_id']}/messages", payload)
        return (data.get("messages") or [{}])[0].get("id")

    def submit_template(self, values):
        """Submit a message template for approval; returns WhatsApp's answer
        (``id``, ``status``)."""
        return self.call("POST", f"{self.config['account_id']}/message_templates", values)

    def get_templates(self, name):
        """The account's templates of that name (every language)."""
        data = self.call(
            "GET", f"{self.config['account_id']}/message_templates", params={"name": name}
        )
        return data.get("data", [])
