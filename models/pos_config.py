from odoo import fields, models


class PosConfig(models.Model):
    _inherit = "pos.config"

    mkt_receipt_contacts = fields.Boolean(
        "Receipts Feed the Contacts",
        help="When a receipt is sent by e-mail or SMS, the address or number is kept on "
        "the order and, where it has none, on its customer, for marketing messages. "
        "Numbers are stored in international format (E.164) read with the shop's "
        "country; an invalid number is refused and nothing is stored.",
    )
