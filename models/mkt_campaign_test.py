from odoo import fields, models
from odoo.exceptions import UserError, ValidationError


class MktCampaign(models.Model):
    """Test on one record (issue 10, item 3): Launch a Test creates a test
    participant for a record and opens its test screen, where each step runs
    for real on that record only (mkt.trace.action_run_test_step) and the
    recipient's events are simulated (mkt.trace.action_simulate)."""

    _inherit = "mkt.campaign"

    test_event_share = fields.Integer(
        "Simulated Engagement (%)",
        default=0,
        help="Test modes send nothing, so nothing is opened: this share of the test "
        "participants opens their messages, and the same share of those clicks, so that "
        "the workflow's branches on opens and clicks run too.",
    )

    _check_test_event_share = models.Constraint(
        "CHECK (test_event_share BETWEEN 0 AND 100)",
        "The simulated engagement is a percentage, between 0 and 100.",
    )

    def action_open_test_wizard(self):
        """Launch a Test: ask for the record to test the workflow on."""
        self.ensure_one()
        self._check_can_run()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Launch a Test"),
            "res_model": "mkt.campaign.test",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_campaign_id": self.id},
        }

    def action_launch_test(self, res_id):
        """Create a test participant for the record ``res_id`` of the target,
        queue its first steps and return the action of its test screen."""
        self.ensure_one()
        self._check_can_run()
        if not self.activity_ids:
            raise UserError(
                self.env._(
                    "Campaign %(campaign)s has no activity: add at least one step to its "
                    "workflow before testing it.",
                    campaign=self.name,
                )
            )
        record = self.env[self.model_name].browse(int(res_id or 0)).exists()
        if not record:
            raise ValidationError(
                self.env._(
                    "Choose an existing %(target)s record to test the campaign on.",
                    target=self.model_id.name,
                )
            )
        # the tester must be allowed to see the record they message
        record.check_access("read")
        participant = self._create_record_test(record)
        return participant.action_open_test()

    def _create_record_test(self, record):
        """The test participant of ``record`` and its first steps, due now."""
        self.ensure_one()
        email_field = record._mail_get_primary_email_field()
        partner = record.partner_id if "partner_id" in record._fields else record.browse()
        email = (record[email_field] if email_field else False) or (
            partner.email if partner and partner._name == "res.partner" else False
        )
        phone = False
        for fname in record._phone_get_number_fields():
            if record[fname]:
                phone = record[fname]
                break
        now = fields.Datetime.now()
        # the engine's rows: a campaign user may not create participants nor steps
        participant = (
            self.env["mkt.participant"]
            .sudo()
            .create(
                {
                    "campaign_id": self.id,
                    "res_id": record.id,
                    "record_name": record.display_name,
                    "email": email or False,
                    "phone": phone,
                    "is_test": True,
                    "is_record_test": True,
                    "state": "running",
                    "enrolled_date": now,
                }
            )
        )
        # the queue's rows of that test (campaign users only read the queue)
        self.env["mkt.trace"].sudo().create(
            [
                {
                    "participant_id": participant.id,
                    "activity_id": activity.id,
                    "campaign_id": self.id,
                    "res_id": record.id,
                    "is_test": True,
                    "state": "scheduled",
                    "schedule_date": activity._get_schedule_date(now),
                }
                for activity in self.activity_ids.filtered(lambda a: not a.parent_id)
            ]
        )
        return participant

    def action_view_test_participants(self):
        action = super().action_view_test_participants()
        # a test opens on its test screen
        action["views"] = [
            (False, "list"),
            (self.env.ref("mkt_campaign.mkt_participant_view_form_test").id, "form"),
        ]
        action["view_mode"] = "list,form"
        return action
