from odoo import models


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    # "products bought" audience filters (models/res_partner.py)
    _mkt_product_purchase_idx = models.Index(
        "(product_id) INCLUDE (order_partner_id, company_id) WHERE state = 'sale'"
    )
