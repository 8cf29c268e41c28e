from odoo import fields, models


class MailingContact(models.Model):
    _inherit = "mailing.contact"

    mkt_optin_date = fields.Datetime(
        "Opt-in Confirmed On", copy=False,
        help="When the contact confirmed the subscription (double opt-in). Campaigns "
        "that require a confirmed opt-in write only to confirmed contacts.",
    )
