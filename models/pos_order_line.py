from odoo import models


class PosOrderLine(models.Model):
    _inherit = "pos.order.line"

    # "products bought" audience filters (models/res_partner.py): POS order
    # lines have no index on product_id
    _mkt_product_purchase_idx = models.Index("(product_id) INCLUDE (order_id, qty)")
