from odoo import fields, models


class MktCampaignRefuse(models.TransientModel):
    _name = "mkt.campaign.refuse"
    _description = "Refuse a Marketing Campaign"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade")
    reason = fields.Text(required=True, help="Sent to the campaign's responsible.")

    def action_refuse(self):
        self.ensure_one()
        self.campaign_id._action_refuse(self.reason)
        return {"type": "ir.actions.act_window_close"}
