from odoo import models


class CrmLead(models.Model):
    """Leads can be filtered on the purchases of their contact (partner_id), with
    the fields of models/mkt_purchase_mixin.py; a lead without contact has none."""

    _name = "crm.lead"
    _inherit = ["crm.lead", "mkt.purchase.mixin", "mkt.optin.mixin"]
