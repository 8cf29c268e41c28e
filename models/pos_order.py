from odoo import models


class PosOrder(models.Model):
    _inherit = "pos.order"

    # purchase statistics of the contacts' audience filters (models/res_partner.py):
    # index-only scans in customer order over the paid and posted orders
    _mkt_partner_purchase_idx = models.Index(
        "(partner_id) INCLUDE (date_order, amount_total, currency_rate, is_refund, "
        "company_id) "
        "WHERE state IN ('paid', 'done') AND partner_id IS NOT NULL"
    )
