import hashlib
import hmac
import json

from odoo import fields, http
from odoo.exceptions import UserError
from odoo.http import request
from odoo.tools import consteq

OPTIN_MODELS = ("res.partner", "crm.lead", "mailing.contact")


class MktCampaignController(http.Controller):
    @http.route("/mkt_campaign/optin", type="http", auth="public", website=False, sitemap=False)
    def confirm_optin(self, model=None, res_id=None, token=None, **kwargs):
        """The recipient confirms the subscription (double opt-in) from the
        signed link of a campaign e-mail. A bad signature changes nothing."""
        try:
            res_id = int(res_id)
        except (TypeError, ValueError):
            res_id = 0
        record = None
        if model in OPTIN_MODELS and res_id and token:
            record = request.env[model].sudo().browse(res_id).exists()
        if not record or not consteq(record._mkt_optin_token(), token):
            return request.make_response(
                request.env._("This confirmation link is invalid or has expired."),
                headers=[("Content-Type", "text/plain; charset=utf-8")], status=403,
            )
        if not record.mkt_optin_date:
            record.mkt_optin_date = fields.Datetime.now()
        return request.make_response(
            request.env._("Thank you: your subscription is confirmed."),
            headers=[("Content-Type", "text/plain; charset=utf-8")],
        )

    @http.route("/mkt_campaign/whatsapp/webhook", type="http", auth="public", methods=["GET"],
                csrf=False, sitemap=False)
    def whatsapp_verify(self, **kwargs):
        """WhatsApp checks the webhook once: echo its challenge when the verify
        token is the one set in the settings."""
        expected = request.env["ir.config_parameter"].sudo().get_param(
            "mkt_campaign.whatsapp_verify_token")
        if (kwargs.get("hub.mode") == "subscribe" and expected
                and consteq(kwargs.get("hub.verify_token") or "", expected)):
            return request.make_response(kwargs.get("hub.challenge") or "",
                                         headers=[("Content-Type", "text/plain")])
        return request.make_response("Forbidden", status=403)

    @http.route("/mkt_campaign/whatsapp/webhook", type="http", auth="public", methods=["POST"],
                csrf=False, sitemap=False)
    def whatsapp_webhook(self, **kwargs):
        """Message statuses and replies. With an app secret set, the payload
        must carry WhatsApp's signature (X-Hub-Signature-256)."""
        body = request.httprequest.get_data()
        secret = request.env["ir.config_parameter"].sudo().get_param(
            "mkt_campaign.whatsapp_app_secret")
        if secret:
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            if not consteq(request.httprequest.headers.get("X-Hub-Signature-256", ""), expected):
                return request.make_response("Invalid signature", status=403)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return request.make_response("Invalid JSON", status=400)
        request.env["mkt.trace"].sudo()._whatsapp_webhook(payload)
        return request.make_response("OK", headers=[("Content-Type", "text/plain")])

    @http.route("/mkt_campaign/push/register", type="jsonrpc", auth="user", methods=["POST"])
    def push_register(self, token, platform="android", **kwargs):
        """The app of a signed-in user registers its device for push
        notifications (its Firebase registration token)."""
        if not token or not isinstance(token, str) or len(token) > 4096:
            raise UserError(request.env._("Invalid device token."))
        if platform not in ("android", "ios", "web"):
            platform = "android"
        Token = request.env["mkt.push.token"].sudo().with_context(active_test=False)
        device = Token.search([("token", "=", token)], limit=1)
        values = {"partner_id": request.env.user.partner_id.id, "platform": platform,
                  "active": True, "last_error": False}
        if device:
            device.write(values)
        else:
            device = Token.create({"token": token, **values})
        return {"id": device.id}

    @http.route("/mkt_campaign/push/unregister", type="jsonrpc", auth="user", methods=["POST"])
    def push_unregister(self, token, **kwargs):
        device = request.env["mkt.push.token"].sudo().search([
            ("token", "=", token), ("partner_id", "=", request.env.user.partner_id.id)])
        device.active = False
        return {"unregistered": len(device)}
