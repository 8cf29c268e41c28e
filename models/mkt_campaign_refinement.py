from odoo import api, fields, models
from odoo.exceptions import ValidationError


class MktCampaignRefinement(models.Model):
    """A record added to or excluded from a campaign's audience by hand.
    Exclusions hold across re-synchronisations and relaunches."""

    _name = "mkt.campaign.refinement"
    _description = "Marketing Campaign Audience: Manual Refinement"
    _order = "kind, id"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade", index=True)
    model_name = fields.Char(related="campaign_id.model_name")
    kind = fields.Selection(
        [("include", "Always include"), ("exclude", "Never include")],
        required=True,
        default="exclude",
    )
    record_ref = fields.Reference(
        selection="_selection_record_ref",
        string="Record",
        compute="_compute_record_ref",
        inverse="_inverse_record_ref",
    )
    res_id = fields.Many2oneReference("Record ID", model_field="model_name")
    record_name = fields.Char(compute="_compute_record_name", store=True)

    _unique_record = models.UniqueIndex(
        "(campaign_id, res_id)", "A record is either included or excluded, once."
    )

    @api.constrains("res_id")
    def _check_res_id(self):
        if any(not line.res_id for line in self):
            raise ValidationError(self.env._("Choose the record to include or exclude."))

    @api.model
    def _selection_record_ref(self):
        # ir.model is admin-only: the names of the models campaigns may target
        return [
            (model.model, model.name)
            for model in self.env["ir.model"].sudo().search([("is_mailing_enabled", "=", True)])
        ]

    @api.depends("campaign_id.model_name", "res_id")
    def _compute_record_ref(self):
        for line in self:
            line.record_ref = (
                f"{line.model_name},{line.res_id}" if line.model_name and line.res_id else False
            )

    @api.depends("campaign_id.model_name", "res_id")
    def _compute_record_name(self):
        for line in self:
            if line.model_name and line.res_id:
                record = self.env[line.model_name].browse(line.res_id).exists()
                line.record_name = record.display_name if record else line.record_name
            else:
                line.record_name = False

    def _inverse_record_ref(self):
        for line in self:
            if line.record_ref:
                if line.record_ref._name != line.model_name:
                    raise ValidationError(
                        self.env._(
                            "%(record)s is not a record of the campaign's target.",
                            record=line.record_ref.display_name,
                        )
                    )
                line.res_id = line.record_ref.id
