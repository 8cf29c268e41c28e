from odoo import models


class Base(models.AbstractModel):
    _inherit = "base"

    def _mkt_get_tz(self):
        """The time zone a campaign message reaches this record in: its own,
        else its contact's. Empty when unknown (the company's applies)."""
        self.ensure_one()
        if "tz" in self._fields and self.tz:
            return self.tz
        if "partner_id" in self._fields and self._fields["partner_id"].comodel_name == "res.partner":
            return self.partner_id.tz
        return False

    def _mkt_has_confirmed_optin(self):
        """Whether this record (or its contact) confirmed its marketing opt-in."""
        self.ensure_one()
        if "mkt_optin_date" in self._fields and self.mkt_optin_date:
            return True
        if (
            "partner_id" in self._fields and self._fields["partner_id"].comodel_name == "res.partner"
            and "mkt_optin_date" in self.partner_id._fields
        ):
            return bool(self.partner_id.mkt_optin_date)
        return False
