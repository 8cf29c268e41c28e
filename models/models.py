from odoo import api, models
from odoo.tools import SQL


class Base(models.AbstractModel):
    _inherit = "base"

    # ------------------------------------------------------------------
    # The contact of a record: the one place campaigns derive it from (time
    # zone, opt-in, push devices, purchases, revenue, mailing lists, the
    # e-mail / phone / name of participants)
    # ------------------------------------------------------------------

    @api.model
    def _mkt_partner_field(self):
        """The field of this model's records that holds their contact: "id"
        for contacts themselves, "partner_id" when it is a many2one to
        res.partner (the first of Odoo's ``_mail_get_partner_fields``), else
        None."""
        if self._name == "res.partner":
            return "id"
        field = self._fields.get("partner_id")
        if field and field.type == "many2one" and field.comodel_name == "res.partner":
            return "partner_id"
        return None

    @api.model
    def _mkt_partner_sql(self, alias):
        """SQL of the contact id of this model's rows in table ``alias``, or
        None when the model stores no contact."""
        fname = self._mkt_partner_field()
        if fname and self._fields[fname].store:
            return SQL.identifier(alias, fname)
        return None

    def _mkt_get_partners(self):
        """{record id: its contact, a res.partner record, empty if it has none}"""
        fname = self._mkt_partner_field()
        Partner = self.env["res.partner"]
        if not fname:
            return dict.fromkeys(self.ids, Partner)
        if fname == "id":
            return {record.id: record for record in self}
        return {record.id: record[fname] for record in self}

    def _mkt_get_tz(self):
        """The time zone a campaign message reaches this record in: its own
        (Odoo's ``_mail_get_timezone``), else its contact's. Empty when
        unknown (the company's applies)."""
        self.ensure_one()
        tz = self._mail_get_timezone()
        if tz:
            return tz
        partner = self._mkt_get_partners()[self.id]
        if partner and partner != self:
            return partner._mail_get_timezone() or False
        return False

    def _mkt_has_confirmed_optin(self):
        """Whether this record (or its contact) confirmed its marketing opt-in."""
        self.ensure_one()
        if "mkt_optin_date" in self._fields and self.mkt_optin_date:
            return True
        partner = self._mkt_get_partners()[self.id]
        if partner and partner != self and "mkt_optin_date" in partner._fields:
            return bool(partner.mkt_optin_date)
        return False
