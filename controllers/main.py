import hashlib
import hmac
import json
import logging

from werkzeug.exceptions import RequestEntityTooLarge

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request
from odoo.tools import consteq

_logger = logging.getLogger(__name__)

# WhatsApp batches statuses: a real payload is a few kilobytes; anything
# beyond this is refused (413) from its Content-Length, before it is read
WEBHOOK_MAX_BYTES = 1024 * 1024
# active devices a contact keeps: registering one more deactivates the oldest
PUSH_MAX_DEVICES_DEFAULT = 20


class MktCampaignController(http.Controller):
    # ------------------------------------------------------------------
    # Double opt-in
    # ------------------------------------------------------------------

    def _optin_record(self, token):
        """The record a confirmation token was signed for, or None when the
        token is forged, expired, or was signed for another address than
        the record's current one."""
        # sudo: the recipient is anonymous; the signed token names the record
        record = request.env["mkt.optin.mixin"].sudo()._mkt_optin_verify_token(token)
        return record or None

    def _optin_page(self, state, token=None, status=200):
        return request.render(
            "mkt_campaign.optin_page",
            {
                "state": state,
                "token": token,
            },
            status=status,
        )

    @http.route(
        "/mkt_campaign/optin",
        type="http",
        auth="public",
        methods=["GET"],
        website=False,
        sitemap=False,
    )
    def optin_page(self, token=None, **kwargs):
        """The link of a campaign e-mail opens a page whose button confirms:
        following the link (as mail scanners do) confirms nothing."""
        record = self._optin_record(token)
        if not record:
            return self._optin_page("invalid", status=403)
        if record.mkt_optin_date:
            return self._optin_page("done")
        return self._optin_page("confirm", token=token)

    @http.route(
        "/mkt_campaign/optin",
        type="http",
        auth="public",
        methods=["POST"],
        website=False,
        sitemap=False,
    )
    def optin_confirm(self, token=None, **kwargs):
        """The button of the confirmation page (a POST carrying Odoo's CSRF
        token, checked by the framework) confirms the subscription."""
        record = self._optin_record(token)
        if not record:
            return self._optin_page("invalid", status=403)
        record._mkt_optin_confirm()
        return self._optin_page("done")

    # ------------------------------------------------------------------
    # WhatsApp webhook
    # ------------------------------------------------------------------

    @http.route(
        "/mkt_campaign/whatsapp/webhook",
        type="http",
        auth="public",
        methods=["GET"],
        csrf=False,
        sitemap=False,
    )
    def whatsapp_verify(self, **kwargs):
        """WhatsApp checks the webhook once: echo its challenge when the verify
        token is the one set in the settings."""
        # sudo: the verify token is a system parameter, read only to compare it
        expected = (
            request.env["ir.config_parameter"]
            .sudo()
            .get_param("mkt_campaign.whatsapp_verify_token")
        )
        if (
            kwargs.get("hub.mode") == "subscribe"
            and expected
            and consteq(kwargs.get("hub.verify_token") or "", expected)
        ):
            return request.make_response(
                kwargs.get("hub.challenge") or "", headers=[("Content-Type", "text/plain")]
            )
        return request.make_response("Forbidden", status=403)

    def _signed_json_payload(self, secret_param, header, label, closed):
        """The JSON object of a provider's POST whose ``header`` carries
        ``sha256=<HMAC-SHA256 of the raw body with the secret>`` (the setting
        ``secret_param``), or the error response to answer (403 ``closed``
        when no secret is set, 413 too large, 403 bad signature, 400 not a
        JSON object) before anything is touched."""
        # sudo: the secret is a system parameter, read only to check the call
        secret = request.env["ir.config_parameter"].sudo().get_param(secret_param)
        if not secret:
            _logger.warning("%s refused: no secret is configured", label)
            return request.make_response(
                closed, status=403, headers=[("Content-Type", "text/plain")]
            )
        httprequest = request.httprequest
        too_large = request.make_response(
            "Payload too large", status=413, headers=[("Content-Type", "text/plain")]
        )
        if (httprequest.content_length or 0) > WEBHOOK_MAX_BYTES:
            return too_large
        try:
            # the raw body, read within the route's max_content_length (also
            # when no Content-Length was sent)
            body = httprequest.get_data()
        except RequestEntityTooLarge:
            return too_large
        if len(body) > WEBHOOK_MAX_BYTES:
            return too_large
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not consteq(httprequest.headers.get(header, ""), expected):
            _logger.warning("%s refused: invalid signature", label)
            return request.make_response(
                "Invalid signature", status=403, headers=[("Content-Type", "text/plain")]
            )
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return request.make_response("Invalid JSON", status=400)
        if not isinstance(payload, dict):
            return request.make_response("Invalid payload", status=400)
        return payload

    @http.route(
        "/mkt_campaign/whatsapp/webhook",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        sitemap=False,
        max_content_length=WEBHOOK_MAX_BYTES,
    )
    def whatsapp_webhook(self, **kwargs):
        """Message statuses and replies. Every POST must carry WhatsApp's
        signature (X-Hub-Signature-256: HMAC-SHA256 of the raw body with the
        app secret); without an app secret configured the webhook is closed.
        Anything else is answered 403 and changes nothing."""
        payload = self._signed_json_payload(
            "mkt_campaign.whatsapp_app_secret",
            "X-Hub-Signature-256",
            "WhatsApp webhook call",
            "Webhook closed: no app secret configured",
        )
        if not isinstance(payload, dict):
            return payload  # the error response
        # sudo: a signed call from WhatsApp, anonymous for Odoo, updates the queue
        request.env["mkt.whatsapp.template"].sudo()._process_webhook(payload)
        return request.make_response("OK", headers=[("Content-Type", "text/plain")])

    # ------------------------------------------------------------------
    # Provider feedback (delivered, bounces, complaints, blocks, unsubscribes)
    # ------------------------------------------------------------------

    @http.route(
        "/mkt_campaign/feedback",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        sitemap=False,
        max_content_length=WEBHOOK_MAX_BYTES,
    )
    def provider_feedback(self, **kwargs):
        """What e-mail / SMS / WhatsApp providers report about the messages
        (their event webhooks or a feedback-loop relay): a JSON body
        ``{"events": [{"message_id", "event", "answer", "timestamp"}]}``
        signed in ``X-Mkt-Signature: sha256=<HMAC-SHA256 of the raw body with
        the feedback secret>`` (Settings). Without a secret the endpoint is
        closed; an unsigned or badly signed call is answered 403 and changes
        nothing."""
        payload = self._signed_json_payload(
            "mkt_campaign.feedback_secret",
            "X-Mkt-Signature",
            "Provider feedback",
            "Feedback closed: no secret configured",
        )
        if not isinstance(payload, dict):
            return payload  # the error response
        # sudo: a signed call from the provider, anonymous for Odoo, records
        # the feedback of the campaign's messages
        used = request.env["mkt.trace"].sudo()._process_provider_feedback(payload)
        return request.make_response(
            json.dumps({"used": used}), headers=[("Content-Type", "application/json")]
        )

    # ------------------------------------------------------------------
    # Push devices
    # ------------------------------------------------------------------

    @http.route("/mkt_campaign/push/register", type="jsonrpc", auth="user", methods=["POST"])
    def push_register(self, token, platform="android", **kwargs):
        """The app of a signed-in user registers its device for push
        notifications (its Firebase registration token), always for the
        user's own contact. A token active for another contact is refused
        (it is that contact's device: nobody takes it over); an inactive one
        (unregistered, or dropped by Firebase) may be registered again. A
        contact keeps at most ``mkt_campaign.push_max_devices`` (default 20)
        active devices: registering one more deactivates the oldest ones."""
        if not token or not isinstance(token, str) or len(token) > 4096:
            raise UserError(request.env._("Invalid device token."))
        if platform not in ("android", "ios", "web"):
            platform = "android"
        partner = request.env.user.partner_id
        # sudo: portal users have no access to the devices list; what is
        # written is fixed here (the caller's own contact), never taken from
        # the request
        Token = request.env["mkt.push.token"].sudo().with_context(active_test=False)
        device = Token.search([("token", "=", token)], limit=1)
        if device and device.active and device.partner_id != partner:
            raise UserError(
                request.env._(
                    "This device is registered to another contact: it must be "
                    "unregistered before it can be registered again."
                )
            )
        values = {
            "partner_id": partner.id,
            "platform": platform,
            "active": True,
            "last_error": False,
        }
        if device:
            device.write(values)
        else:
            device = Token.create({"token": token, **values})
        self._push_apply_cap(Token, partner, device)
        return {"id": device.id}

    def _push_apply_cap(self, Token, partner, device):
        try:
            # ir.config_parameter is admin-only: one known key
            cap = int(
                request.env["ir.config_parameter"]
                .sudo()
                .get_param("mkt_campaign.push_max_devices", PUSH_MAX_DEVICES_DEFAULT)
            )
        except ValueError:
            cap = PUSH_MAX_DEVICES_DEFAULT
        cap = max(cap, 1)
        others = Token.search(
            [("partner_id", "=", partner.id), ("active", "=", True), ("id", "!=", device.id)],
            order="write_date desc, id desc",
        )
        stale = others[cap - 1 :]
        if stale:
            stale.write(
                {
                    "active": False,
                    "last_error": request.env._(
                        "Replaced by a newer device (at most %(cap)s active devices per contact).",
                        cap=cap,
                    ),
                }
            )

    @http.route("/mkt_campaign/push/unregister", type="jsonrpc", auth="user", methods=["POST"])
    def push_unregister(self, token, **kwargs):
        # sudo: the user's own devices only (domain on the user's contact)
        device = (
            request.env["mkt.push.token"]
            .sudo()
            .search([("token", "=", token), ("partner_id", "=", request.env.user.partner_id.id)])
        )
        device.active = False
        return {"unregistered": len(device)}
