from odoo import models


class SaleOrder(models.Model):
    _inherit = "sale.order"

    # purchase statistics of the contacts' audience filters (models/res_partner.py):
    # index-only scans in customer order over the confirmed orders
    _mkt_partner_purchase_idx = models.Index(
        "(partner_id) INCLUDE (date_order, amount_total, currency_rate, company_id) "
        "WHERE state = 'sale'"
    )
