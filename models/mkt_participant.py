from odoo import api, fields, models
from odoo.tools import SQL


class MktParticipant(models.Model):
    _name = "mkt.participant"
    _description = "Marketing Campaign Participant"
    _order = "id desc"
    _rec_name = "record_name"

    campaign_id = fields.Many2one(
        "mkt.campaign", "Campaign", required=True, ondelete="cascade", index=True
    )
    model_name = fields.Char(related="campaign_id.model_name")
    res_id = fields.Many2oneReference("Record ID", model_field="model_name", required=True)
    record_name = fields.Char("Record", readonly=True)
    email = fields.Char(readonly=True)
    phone = fields.Char(readonly=True)
    unique_key = fields.Char(
        readonly=True, help="Value of the campaign's unique field when enrolled."
    )
    state = fields.Selection(
        [("running", "Running"), ("completed", "Completed"), ("canceled", "Canceled")],
        default="running", required=True, index=True,
    )
    is_test = fields.Boolean("Test", readonly=True, index=True)
    trace_ids = fields.One2many("mkt.trace", "participant_id", "Steps")

    _campaign_res_idx = models.Index("(campaign_id, res_id)")
    _unique_key_running = models.UniqueIndex(
        "(campaign_id, is_test, unique_key) WHERE state = 'running'",
        "A record is enrolled once in a campaign while it takes part in it.",
    )

    @api.depends("record_name", "res_id")
    def _compute_display_name(self):
        for participant in self:
            participant.display_name = participant.record_name or (
                f"{participant.model_name},{participant.res_id}"
            )

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.model_name,
            "res_id": self.res_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def _update_completion(self):
        """Participants with no step left to run are completed; one query."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(SQL(
            """
            UPDATE mkt_participant p SET state = 'completed', write_date = %s
             WHERE p.id = ANY(%s) AND p.state = 'running'
               AND NOT EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id
                                  AND t.state IN ('scheduled', 'processing'))
            """,
            fields.Datetime.now(), self.ids,
        ))
        self.invalidate_recordset(["state"])
