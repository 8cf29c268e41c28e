from odoo import models


class ResPartner(models.Model):
    """Contacts can be filtered on their purchases (models/mkt_purchase_mixin.py):
    is a customer, products and categories bought, number of orders, amount
    spent (in total and over the last 30, 90 and 365 days), last purchase."""

    _name = "res.partner"
    _inherit = ["res.partner", "mkt.purchase.mixin", "mkt.optin.mixin"]
