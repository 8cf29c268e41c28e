from odoo import fields, http
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
