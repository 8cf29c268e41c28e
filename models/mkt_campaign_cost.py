from odoo import fields, models


class MktCampaignCost(models.Model):
    _name = "mkt.campaign.cost"
    _description = "Marketing Campaign Cost"
    _order = "date desc, id desc"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade", index=True)
    date = fields.Date(required=True, default=fields.Date.context_today)
    name = fields.Char(
        "Description", required=True, help="e.g. Purchase of a contact list, e-mail design."
    )
    activity_id = fields.Many2one(
        "mkt.activity",
        "Step",
        ondelete="set null",
        domain="[('campaign_id', '=', campaign_id)]",
        help="The workflow step the cost belongs to, if any.",
    )
    currency_id = fields.Many2one(related="campaign_id.currency_id")
    amount = fields.Monetary(required=True)
