from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL


class MktParticipantMessage(models.TransientModel):
    """Message Participants: a one-off e-mail or SMS to chosen participants
    of a running campaign, beside its workflow.

    The message is a one-off step of the campaign (``is_one_off``, outside
    the workflow: never queued at enrolment nor by Rebuild Queue) whose
    queue rows are the selected participants, due now. So it goes the way
    every step goes: through the queue (consent, frequency caps, sending
    window, exit conditions, retries, never twice), through Email/SMS
    Marketing (blacklist, opt-out, link and open tracking, bounces), and
    it counts in the campaign's queue, results, costs and budget. A plain
    mailing sent beside the campaign would have bypassed the queue's rules
    and appeared in none of them."""

    _name = "mkt.participant.message"
    _description = "Message Campaign Participants"

    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade")
    participant_ids = fields.Many2many("mkt.participant", string="Participants")
    participant_count = fields.Integer("Recipients", compute="_compute_participant_count")
    channel = fields.Selection(
        [("email", "E-mail"), ("sms", "SMS")], default="email", required=True
    )
    name = fields.Char(
        required=True,
        default=lambda self: self.env._(
            "Message of %(date)s", date=fields.Date.context_today(self)
        ),
        help="The name of the one-off step in the queue and the results.",
    )
    subject = fields.Char(help="Placeholders such as {{ object.name }} are rendered.")
    body_html = fields.Html("Body", sanitize=False)
    body_plaintext = fields.Text("SMS Text")

    @api.depends("participant_ids")
    def _compute_participant_count(self):
        for wizard in self:
            wizard.participant_count = len(wizard._get_recipients())

    def _get_recipients(self):
        """The selected participants of the campaign still in it."""
        return self.participant_ids.filtered(
            lambda p: p.campaign_id == self.campaign_id and p.state in ("running", "completed")
        )

    def action_send(self):
        self.ensure_one()
        campaign = self.campaign_id
        campaign._check_can_run()
        if campaign.state != "running" or campaign.is_paused:
            raise UserError(
                self.env._(
                    "Campaign %(campaign)s is not sending: launch or resume it to message "
                    "its participants.",
                    campaign=campaign.name,
                )
            )
        participants = self._get_recipients()
        if not participants:
            raise UserError(
                self.env._(
                    "None of the selected participants is still in campaign %(campaign)s.",
                    campaign=campaign.name,
                )
            )
        content = (
            {"subject": self.subject, "body_html": self.body_html}
            if self.channel == "email"
            else {"body_plaintext": self.body_plaintext}
        )
        values = {"name": self.name, **content}
        # the content is the user's: what they may write, checked with their
        # rights (the template-editor restriction), before anything is created
        self.env["mkt.activity"]._check_content_rights(values, campaign.model_name)
        # sudo: a campaign user may not create steps (a manager's
        # configuration); the one-off step, on a campaign the user may run, is
        # created without the content, which the user writes just below
        activity = (
            self.env["mkt.activity"]
            .sudo()
            .create(
                {
                    "campaign_id": campaign.id,
                    "activity_type": self.channel,
                    "trigger_type": "begin",
                    "is_one_off": True,
                    "name": self.name,
                }
            )
        )
        # written with the user's rights on the step's mailing: Email/SMS
        # Marketing applies its template-editor restriction as to any mailing
        activity.mailing_id.with_env(self.env).write(activity._content_for_type(content))
        # rendered on a record with the user's rights: a message that does not
        # render, or has no content, stops here with the reason
        activity.with_env(self.env)._check_launchable()
        # settled once, as at launch (mkt.campaign.action_start)
        activity.mailing_id.write({"state": "done", "sent_date": fields.Datetime.now()})
        count = self._queue(activity, participants)
        # sudo: a campaign user may run the campaign, not write it (which
        # posting in its chatter requires); the note is a text built here
        # (names escaped), authored by the user
        campaign.sudo().message_post(
            body=Markup("<p>%s</p>")
            % self.env._(
                "%(user)s sent the one-off message %(message)s to %(count)s participants.",
                user=self.env.user.name,
                message=self.name,
                count=count,
            ),
            author_id=self.env.user.partner_id.id,
        )
        if campaign.mode == "test":
            campaign._run_test_workflow()
        else:
            self.env["mkt.trace"]._trigger_queue()
        return self.env["mkt.campaign"]._sent_notification(
            self.env._("Message Participants"),
            self.env._(
                "%(count)s messages are queued: the queue sends them in a moment.", count=count
            ),
        )

    def _queue(self, activity, participants):
        """One queue row per participant, due now and confirmed: one INSERT."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id, is_test,
                                   state, schedule_date, attempts, is_confirmed)
            SELECT p.id, %(activity)s, p.campaign_id, p.res_id, p.is_test, 'scheduled',
                   %(now)s, 0, true
              FROM mkt_participant p
             WHERE p.id = ANY(%(ids)s) AND p.campaign_id = %(campaign)s
            ON CONFLICT DO NOTHING
            """,
                activity=activity.id,
                now=fields.Datetime.now(),
                ids=participants.ids,
                campaign=self.campaign_id.id,
            )
        )
        count = self.env.cr.rowcount
        self.env["mkt.trace"].invalidate_model()
        participants._reopen()
        return count
