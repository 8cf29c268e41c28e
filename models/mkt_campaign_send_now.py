from odoo import fields, models
from odoo.exceptions import UserError


class MktCampaign(models.Model):
    _inherit = "mkt.campaign"

    one_off_activity_ids = fields.One2many(
        "mkt.activity",
        "campaign_id",
        "One-off Messages",
        domain=[("is_one_off", "=", True)],
        readonly=True,
    )


class MktTrace(models.Model):
    _inherit = "mkt.trace"

    def action_send_now(self):
        """Send Now: the selected scheduled steps are due now (and confirmed,
        in manual confirmation mode). They go through the queue like any due
        step — consent, frequency caps, the sending window, the step's filter
        and exit conditions still apply — and the queue, woken now, sends
        them outside the user's request (its own transactions, so that a
        message is never sent twice)."""
        self.campaign_id._check_can_run()
        # the queue's own fields, written below: a campaign user only reads the steps
        traces = self.sudo().filtered(lambda t: t.state == "scheduled")
        if not traces:
            raise UserError(
                self.env._(
                    "Only scheduled steps can be sent now: the selected ones already ran or "
                    "were canceled."
                )
            )
        held = traces.campaign_id.filtered(
            lambda c: c.state != "running" or c.is_paused or c.budget_paused
        )
        if held:
            raise UserError(
                self.env._(
                    "Campaign %(campaign)s is not sending (stopped, paused or over its "
                    "budget): resume it to send its steps.",
                    campaign=held[0].name,
                )
            )
        # the queue's own fields: a campaign user may not write the steps
        traces.write({"schedule_date": fields.Datetime.now(), "is_confirmed": True})
        self._trigger_queue()
        return self.env["mkt.campaign"]._sent_notification(
            self.env._("Send Now"),
            self.env._(
                "%(count)s steps are due now: the queue sends them in a moment. Consent, "
                "frequency caps and the sending window still apply.",
                count=len(traces),
            ),
        )


class MktParticipant(models.Model):
    _inherit = "mkt.participant"

    def action_message_participants(self):
        """Message Participants: a one-off e-mail or SMS to the selected
        participants of one campaign (wizard mkt.participant.message)."""
        campaign = self.campaign_id
        if len(campaign) != 1:
            raise UserError(self.env._("Select participants of one campaign to message them."))
        campaign._check_can_run()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Message Participants"),
            "res_model": "mkt.participant.message",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {
                "default_campaign_id": campaign.id,
                "default_participant_ids": [fields.Command.set(self.ids)],
            },
        }
