from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

# written by the engine only (Launch, Update)
UPDATE_ENGINE_FIELDS = ("needs_update",)


class MktCampaign(models.Model):
    """Update a running workflow (issue 10, item 4): steps added or changed
    after the launch reach the participants already past their parent."""

    _inherit = "mkt.campaign"

    needs_update = fields.Boolean(
        "Workflow Changed",
        readonly=True,
        copy=False,
        help="Steps were added or their trigger changed since the workflow was last "
        "applied to the participants (at launch, then by Update).",
    )

    def _mkt_engine_fields(self):
        return (*super()._mkt_engine_fields(), *UPDATE_ENGINE_FIELDS)

    def action_start(self):
        res = super().action_start()
        # the steps as launched: later changes show the Update button (engine-only
        # field, mkt.campaign._check_engine_fields: a campaign user only reads campaigns)
        self.sudo().write({"needs_update": False})
        return res

    def action_update(self):
        """Apply the workflow as it is now to the participants of running
        campaigns: a step whose parent a participant already passed (or a
        first step, for everyone enrolled) is scheduled from now, with its
        delay. Nobody gets a step they already have in the queue, whatever
        its state: nothing is sent twice, and running Update again adds
        nothing. Set-based: one INSERT … SELECT per step."""
        self._check_can_run()
        running = self.filtered(lambda c: c.state == "running")
        if not running:
            raise UserError(
                self.env._(
                    "Only a running campaign's workflow can be updated: a draft one applies "
                    "its workflow when launched."
                )
            )
        running.activity_ids._check_launchable()
        count = running._schedule_new_steps()
        # engine-only field (mkt.campaign._check_engine_fields): a campaign user only reads
        running.sudo().write({"needs_update": False})
        running.filtered(lambda c: c.mode == "test")._run_test_workflow()
        if count:
            self.env["mkt.trace"]._trigger_queue()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success" if count else "info",
                "title": self.env._("Workflow updated"),
                "message": self.env._(
                    "%(count)s steps scheduled for participants already past their parent.",
                    count=count,
                )
                if count
                else self.env._(
                    "Every participant already has the workflow's steps: nothing to schedule."
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _schedule_new_steps(self):
        """Queue the steps participants miss; returns how many were queued."""
        self.env.flush_all()
        cr = self.env.cr
        now = fields.Datetime.now()
        participants = set()
        total = 0
        for campaign in self:
            ignore_delay = campaign.mode == "test"
            for activity in campaign.activity_ids:
                date = activity._get_schedule_date(now, ignore_delay)
                # nobody runs a step twice (whatever the parent it came from),
                # test participants on one record follow their test screen
                missing = SQL(
                    """p.state IN ('running', 'completed') AND p.is_record_test IS NOT TRUE
                       AND NOT EXISTS (SELECT 1 FROM mkt_trace x
                                        WHERE x.participant_id = p.id
                                          AND x.activity_id = %s)""",
                    activity.id,
                )
                if not activity.parent_id:
                    cr.execute(
                        SQL(
                            """
                        INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id,
                                               is_test, state, schedule_date, attempts,
                                               is_confirmed)
                        SELECT p.id, %(activity)s, p.campaign_id, p.res_id, p.is_test,
                               'scheduled', %(date)s, 0, false
                          FROM mkt_participant p
                         WHERE p.campaign_id = %(campaign)s AND %(missing)s
                        ON CONFLICT DO NOTHING
                        RETURNING participant_id
                        """,
                            activity=activity.id,
                            date=date,
                            campaign=campaign.id,
                            missing=missing,
                        )
                    )
                else:
                    cr.execute(
                        SQL(
                            """
                        INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id,
                                               is_test, parent_id, state, schedule_date,
                                               attempts, is_confirmed)
                        SELECT t.participant_id, %(activity)s, t.campaign_id, t.res_id,
                               t.is_test, t.id, 'scheduled', %(date)s, 0, false
                          FROM mkt_trace t
                          JOIN mkt_participant p ON p.id = t.participant_id
                         WHERE t.activity_id = %(parent)s AND t.state = 'processed'
                           AND %(fired)s AND %(missing)s
                        ON CONFLICT DO NOTHING
                        RETURNING participant_id
                        """,
                            activity=activity.id,
                            date=date,
                            parent=activity.parent_id.id,
                            fired=activity._update_trigger_condition(),
                            missing=missing,
                        )
                    )
                rows = cr.fetchall()
                total += len(rows)
                participants.update(row[0] for row in rows)
        self.env["mkt.trace"].invalidate_model()
        if participants:
            self.env["mkt.participant"].browse(participants)._reopen()
        return total
