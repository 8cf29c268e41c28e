from odoo import api, fields, models
from odoo.exceptions import ValidationError


class MktCampaignTest(models.TransientModel):
    """Launch a Test: the record of the campaign's target to run the
    workflow on, step by step."""

    _name = "mkt.campaign.test"
    _description = "Marketing Campaign: Launch a Test"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade")
    model_id = fields.Many2one(related="campaign_id.model_id")
    model_name = fields.Char(related="campaign_id.model_name")
    record_ref = fields.Reference(
        selection="_selection_record_ref",
        string="Record",
        help="The record the test's messages go to, for real: pick one, or create one.",
    )

    @api.model
    def _selection_record_ref(self):
        # ir.model is admin-only: the names of the models campaigns may target
        return [
            (model.model, model.name)
            for model in self.env["ir.model"].sudo().search([("is_mailing_enabled", "=", True)])
        ]

    def action_launch(self):
        self.ensure_one()
        record = self.record_ref
        if not record or record._name != self.model_name:
            raise ValidationError(
                self.env._(
                    "Choose a %(target)s record to test the campaign on.",
                    target=self.model_id.name,
                )
            )
        return self.campaign_id.action_launch_test(record.id)
