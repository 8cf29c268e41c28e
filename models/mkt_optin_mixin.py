from werkzeug.urls import url_encode

from odoo import fields, models, tools


class MktOptinMixin(models.AbstractModel):
    """Double opt-in: the record confirms its subscription by opening a signed
    link, which campaign e-mails offer with ``<t t-out="object.mkt_optin_url"/>``."""

    _name = "mkt.optin.mixin"
    _description = "Marketing Opt-in"

    mkt_optin_date = fields.Datetime(
        "Opt-in Confirmed On", copy=False, tracking=True,
        help="When the contact confirmed the subscription (double opt-in). Campaigns "
        "that require a confirmed opt-in write only to confirmed contacts.",
    )
    mkt_optin_url = fields.Char("Opt-in Confirmation Link", compute="_compute_mkt_optin_url")

    def _compute_mkt_optin_url(self):
        base_url = self.get_base_url() if self else ""
        for record in self:
            if not record.id:
                record.mkt_optin_url = False
                continue
            record.mkt_optin_url = "%s/mkt_campaign/optin?%s" % (base_url, url_encode({
                "model": record._name, "res_id": record.id, "token": record._mkt_optin_token(),
            }))

    def _mkt_optin_token(self):
        self.ensure_one()
        return tools.hmac(self.env(su=True), "mkt_campaign-optin", (self._name, self.id))
