from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain
from odoo.tools import SQL


class MktCampaign(models.Model):
    """Exit conditions: a filter "participants leave when…" on the target.
    A participant whose record meets it leaves the campaign (state *Left*)
    and its pending steps are canceled with the reason; it is checked when
    steps come due (one query per batch) and by the hourly sync. Records
    meeting it are not enrolled."""

    _inherit = "mkt.campaign"

    exit_domain = fields.Char(
        "Participants Leave When",
        help="Participants whose record meets this filter leave the campaign: their "
        "pending steps are canceled. Checked when their steps come due and by the "
        "hourly synchronisation; matching records are not enrolled. Empty: nobody "
        "leaves.",
    )
    left_count = fields.Integer(
        "Left",
        compute="_compute_left_count",
        help="Participants who left the campaign on its exit condition.",
    )

    def _compute_left_count(self):
        counts = dict(
            self.env["mkt.participant"]._read_group(
                [("campaign_id", "in", self.ids), ("state", "=", "left"), ("is_test", "=", False)],
                ["campaign_id"],
                ["__count"],
            )
        )
        for campaign in self:
            campaign.left_count = counts.get(campaign, 0)

    @api.constrains("model_id", "exit_domain")
    def _check_exit_domain(self):
        for campaign in self:
            campaign._get_exit_domain()

    def _has_exit_domain(self):
        self.ensure_one()
        return (self.exit_domain or "").strip() not in ("", "[]")

    def _get_exit_domain(self):
        """The exit condition, parsed as the other filters (plain values
        only), or None when there is none."""
        self.ensure_one()
        if not self._has_exit_domain():
            return None
        return self._parse_domain(
            self.exit_domain,
            self.model_name,
            self.env._("the exit condition of campaign %(name)s", name=self.name),
        )

    @api.depends("exit_domain")
    def _compute_record_count(self):
        return super()._compute_record_count()

    def _get_audience_domain(self):
        domain = super()._get_audience_domain()
        exit_domain = self._get_exit_domain()
        if exit_domain is not None:
            # a record that would leave at once is not enrolled
            domain &= ~exit_domain
        return domain

    @api.model
    def _cron_sync_participants(self):
        res = super()._cron_sync_participants()
        # also campaigns whose audience is frozen (no enrolment): people leave them
        campaigns = self.search([("state", "=", "running"), ("exit_domain", "!=", False)])
        for campaign in campaigns:
            campaign._apply_exit_condition()
        return res

    def _apply_exit_condition(self, res_ids=None):
        """Participants (running) whose record meets the exit condition leave:
        state Left, their scheduled steps canceled with the reason. The
        condition is searched with the responsible's rights, as the audience.
        ``res_ids``: only these records (a batch of due steps). Set-based: one
        UPDATE of the participants, one of their steps. Returns the ids of the
        participants who left."""
        self.ensure_one()
        try:
            exit_domain = self._get_exit_domain()
            if exit_domain is None:
                return []
            audience_env = self._get_audience_env()
        except UserError:
            # the responsible was archived, the filter no longer parses: the
            # sync and the launch report it; nobody leaves on a broken filter
            return []
        if res_ids is not None:
            exit_domain &= Domain("id", "in", list(res_ids))
        Model = self.env[self.model_name].with_env(audience_env).with_context(active_test=False)
        query = Model._search(exit_domain)
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """
            WITH leavers AS (
                UPDATE mkt_participant p SET state = 'left', end_date = %(now)s
                 WHERE p.campaign_id = %(campaign)s AND p.state = 'running'
                   AND p.res_id IN (%(matching)s)
             RETURNING p.id
            ), canceled AS (
                UPDATE mkt_trace t SET state = 'canceled', error_message = %(reason)s,
                       processed_date = %(now)s
                  FROM leavers l
                 WHERE t.participant_id = l.id AND t.state = 'scheduled'
            )
            SELECT id FROM leavers
            """,
                now=now,
                campaign=self.id,
                matching=query.subselect(),
                reason=self._exit_reason(),
            )
        )
        left = [row[0] for row in self.env.cr.fetchall()]
        if left:
            self.env["mkt.participant"].invalidate_model(["state", "end_date"])
            self.env["mkt.trace"].invalidate_model(["state", "error_message", "processed_date"])
        return left

    def _exit_reason(self):
        return self.env._("The participant left the campaign: the record meets its exit condition.")


class MktParticipant(models.Model):
    _inherit = "mkt.participant"

    state = fields.Selection(
        selection_add=[("left", "Left")],
        ondelete={"left": lambda records: records.write({"state": "canceled"})},
    )


class MktTrace(models.Model):
    _inherit = "mkt.trace"

    def _execute_activity(self, activity):
        """Steps come due: participants whose record meets the campaign's
        exit condition leave first (one query for the batch), and their steps
        are canceled instead of run."""
        campaign = activity.campaign_id
        if campaign._has_exit_domain():
            campaign._apply_exit_condition(res_ids=set(self.mapped("res_id")))
        leaving = self.filtered(lambda t: t.participant_id.state == "left")
        leaving._set_state("canceled", campaign._exit_reason())
        return super(MktTrace, self - leaving)._execute_activity(activity)
