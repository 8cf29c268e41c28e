from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from .mkt_activity import EVENT_TRIGGERS
from .mkt_trace import EVENT_FIELDS

# what a step's row waits for, by trigger: changing these re-plans the queue
QUEUE_FIELDS = {"trigger_type", "parent_id", "interval_number", "interval_type", "campaign_id"}


class MktCampaign(models.Model):
    """Rebuild Queue: after the workflow of a running campaign changed,
    recompute what is pending — scheduled steps of deleted or moved steps
    canceled with the reason, scheduled steps re-planned from the new delays,
    steps added to the workflow queued for the participants they concern, and
    failed steps requeued on request — except the uncertain ones (interrupted
    while sending: they may have been delivered), unless asked for explicitly.
    Processed (and processing) steps are never touched, so nothing is sent
    twice."""

    _inherit = "mkt.campaign"

    # the workflow proper: one-off messages (Message Participants) are steps
    # of the campaign, but no part of its workflow (never queued at enrolment)
    activity_ids = fields.One2many(domain=[("is_one_off", "=", False)])
    queue_outdated = fields.Boolean(
        readonly=True,
        copy=False,
        help="The workflow changed while the campaign runs: Rebuild Queue applies the "
        "changes to the steps waiting in the queue.",
    )

    def _mkt_engine_fields(self):
        return (*super()._mkt_engine_fields(), "queue_outdated")

    def action_start(self):
        res = super().action_start()
        # a launch queues the workflow as it is (engine-only field,
        # mkt.campaign._check_engine_fields: a campaign user only reads campaigns)
        self.filtered("queue_outdated").sudo().write({"queue_outdated": False})
        return res

    def action_rebuild_queue(self):
        self.ensure_one()
        self._check_can_run()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Rebuild Queue"),
            "res_model": "mkt.campaign.rebuild",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_campaign_id": self.id},
        }

    def _rebuild_queue(self, requeue_failed=False, requeue_uncertain=False):
        """Rebuild the queue of this running campaign, set-based (one
        statement per kind of change, whatever the number of participants).
        ``requeue_failed``: failed steps are scheduled again, but for the
        uncertain ones (``mkt.trace.is_uncertain``: they may have been
        delivered), requeued only with ``requeue_uncertain`` too.
        Returns the counts {canceled, replanned, added, requeued,
        requeued_uncertain, uncertain}, ``uncertain`` being the uncertain
        failed steps left in the queue."""
        self.ensure_one()
        self._check_can_run()
        if self.state != "running":
            raise UserError(
                self.env._(
                    "Campaign %(campaign)s is not running: its queue is built when it is launched.",
                    campaign=self.name,
                )
            )
        self.env.flush_all()
        cr = self.env.cr
        # one rebuild or enrolment of a campaign at a time (_enrol locks it too)
        cr.execute(SQL("SELECT id FROM mkt_campaign WHERE id = %s FOR NO KEY UPDATE", self.id))
        now = fields.Datetime.now()
        reference = self._rebuild_reference_sql()
        delay = SQL(
            """CASE WHEN c.mode = 'test' THEN interval '0'
                    WHEN a.interval_type = 'hours' THEN make_interval(hours => a.interval_number)
                    WHEN a.interval_type = 'days' THEN make_interval(days => a.interval_number)
                    WHEN a.interval_type = 'weeks' THEN make_interval(weeks => a.interval_number)
                    ELSE make_interval(months => a.interval_number) END"""
        )
        # a row fits the workflow when its step still exists in this campaign
        # and hangs where the row does: a first step has no parent row, a
        # child step's parent row is of the step's parent step and processed
        fits = SQL(
            """COALESCE(CASE WHEN a.trigger_type = 'begin' THEN t.parent_id IS NULL
                     ELSE par.activity_id = a.parent_id AND par.state = 'processed'
                          AND (%(reference)s) IS NOT NULL END, false)""",
            reference=reference,
        )
        # 1. scheduled rows of deleted steps, then of steps that moved
        # (another trigger or parent, or their event did not happen)
        cr.execute(
            SQL(
                """UPDATE mkt_trace t SET state = 'canceled', error_message = %(reason)s,
                      processed_date = %(now)s
                WHERE t.campaign_id = %(campaign)s AND t.state = 'scheduled'
                  AND NOT EXISTS (SELECT 1 FROM mkt_activity a
                                   WHERE a.id = t.activity_id AND a.campaign_id = t.campaign_id)""",
                reason=self.env._(
                    "Canceled by Rebuild Queue: the step was deleted from the workflow."
                ),
                now=now,
                campaign=self.id,
            )
        )
        canceled = cr.rowcount
        # a row of an event trigger whose event has not happened (yet): the
        # engine queues such a step when the event comes, as for any
        # participant; the row made under the old trigger is withdrawn
        cr.execute(
            SQL(
                """
            DELETE FROM mkt_trace t
             USING mkt_activity a, mkt_participant p, mkt_trace par
             WHERE t.campaign_id = %(campaign)s AND t.state = 'scheduled'
               AND a.id = t.activity_id AND p.id = t.participant_id AND par.id = t.parent_id
               AND a.trigger_type = ANY(%(events)s) AND par.activity_id = a.parent_id
               AND (%(reference)s) IS NULL
            """,
                campaign=self.id,
                events=list(EVENT_TRIGGERS),
                reference=reference,
            )
        )
        canceled += cr.rowcount
        cr.execute(
            SQL(
                """
            WITH misfits AS (
                SELECT t.id FROM mkt_trace t
                  JOIN mkt_activity a ON a.id = t.activity_id
                  JOIN mkt_campaign c ON c.id = t.campaign_id
                  JOIN mkt_participant p ON p.id = t.participant_id
             LEFT JOIN mkt_trace par ON par.id = t.parent_id
                 WHERE t.campaign_id = %(campaign)s AND t.state = 'scheduled'
                   AND a.is_one_off IS NOT TRUE
                   AND NOT %(fits)s
            )
            UPDATE mkt_trace t SET state = 'canceled', error_message = %(reason)s,
                   processed_date = %(now)s
              FROM misfits m
             WHERE t.id = m.id AND t.state = 'scheduled'
            """,
                campaign=self.id,
                fits=fits,
                now=now,
                reason=self.env._(
                    "Canceled by Rebuild Queue: the step's trigger or parent changed, so it no "
                    "longer applies to this participant."
                ),
            )
        )
        canceled += cr.rowcount
        # 2. scheduled rows re-planned: the step's delay after its reference
        # (enrolment, the parent's run or its event); steps being retried
        # keep their back-off
        cr.execute(
            SQL(
                """
            WITH planned AS (
                SELECT t.id, (%(reference)s) + %(delay)s AS date
                  FROM mkt_trace t
                  JOIN mkt_activity a ON a.id = t.activity_id
                  JOIN mkt_campaign c ON c.id = t.campaign_id
                  JOIN mkt_participant p ON p.id = t.participant_id
             LEFT JOIN mkt_trace par ON par.id = t.parent_id
                 WHERE t.campaign_id = %(campaign)s AND t.state = 'scheduled'
                   AND t.attempts = 0 AND a.is_one_off IS NOT TRUE
            )
            UPDATE mkt_trace t SET schedule_date = planned.date
              FROM planned
             WHERE t.id = planned.id AND planned.date IS NOT NULL
               AND t.schedule_date IS DISTINCT FROM planned.date AND t.state = 'scheduled'
            """,
                reference=reference,
                delay=delay,
                campaign=self.id,
            )
        )
        replanned = cr.rowcount
        # 3. steps added to the workflow: first steps for the participants,
        # child steps under the processed rows of their parent
        cr.execute(
            SQL(
                """
            WITH added AS (
                INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id,
                                       is_test, parent_id, state, schedule_date, attempts,
                                       is_confirmed)
                SELECT p.id, a.id, p.campaign_id, p.res_id, p.is_test, NULL, 'scheduled',
                       p.enrolled_date + %(delay)s, 0, false
                  FROM mkt_participant p
                  JOIN mkt_campaign c ON c.id = p.campaign_id
                  JOIN mkt_activity a ON a.campaign_id = p.campaign_id
                   AND a.trigger_type = 'begin' AND a.is_one_off IS NOT TRUE
                 WHERE p.campaign_id = %(campaign)s AND p.state IN ('running', 'completed')
                   AND p.is_test = (c.mode IN ('test', 'test_realtime'))
                UNION ALL
                SELECT p.id, a.id, p.campaign_id, p.res_id, p.is_test, par.id, 'scheduled',
                       (%(reference)s) + %(delay)s, 0, false
                  FROM mkt_trace par
                  JOIN mkt_participant p ON p.id = par.participant_id
                  JOIN mkt_campaign c ON c.id = par.campaign_id
                  JOIN mkt_activity a ON a.parent_id = par.activity_id
                   AND a.trigger_type != 'begin' AND a.is_one_off IS NOT TRUE
                 WHERE par.campaign_id = %(campaign)s AND par.state = 'processed'
                   AND p.state IN ('running', 'completed')
                   AND p.is_test = (c.mode IN ('test', 'test_realtime'))
                   AND (%(reference)s) IS NOT NULL
                ON CONFLICT DO NOTHING
             RETURNING participant_id
            )
            SELECT participant_id FROM added
            """,
                reference=reference,
                delay=delay,
                campaign=self.id,
            )
        )
        rows = cr.fetchall()
        added = len(rows)
        added_participants = {row[0] for row in rows}
        # 4. failed rows requeued, as Retry does (due now, confirmed); an
        # uncertain one only on explicit request: its message may have left
        requeued = requeued_uncertain = 0
        if requeue_failed:
            cr.execute(
                SQL(
                    """
                WITH failed AS (
                    SELECT t.id, t.is_uncertain FROM mkt_trace t
                      JOIN mkt_activity a ON a.id = t.activity_id
                      JOIN mkt_campaign c ON c.id = t.campaign_id
                      JOIN mkt_participant p ON p.id = t.participant_id
                 LEFT JOIN mkt_trace par ON par.id = t.parent_id
                     WHERE t.campaign_id = %(campaign)s AND t.state = 'failed' AND %(fits)s
                       AND (%(uncertain)s OR t.is_uncertain IS NOT TRUE)
                )
                UPDATE mkt_trace t SET state = 'scheduled', schedule_date = %(now)s,
                       error_message = NULL, is_confirmed = true, is_uncertain = false
                  FROM failed f
                 WHERE t.id = f.id AND t.state = 'failed'
             RETURNING t.participant_id, f.is_uncertain IS TRUE
                """,
                    campaign=self.id,
                    fits=fits,
                    now=now,
                    uncertain=bool(requeue_uncertain),
                )
            )
            rows = cr.fetchall()
            requeued = len(rows)
            requeued_uncertain = sum(1 for _participant, uncertain in rows if uncertain)
            added_participants |= {row[0] for row in rows}
        cr.execute(
            SQL(
                """SELECT count(*) FROM mkt_trace
                WHERE campaign_id = %s AND state = 'failed' AND is_uncertain""",
                self.id,
            )
        )
        uncertain = cr.fetchone()[0]
        self.env["mkt.trace"].invalidate_model()
        Participant = self.env["mkt.participant"]
        Participant.browse(list(added_participants))._reopen()
        Participant.search(
            [
                ("campaign_id", "=", self.id),
                ("state", "=", "running"),
            ]
        )._update_completion()
        # the steps added to the workflow are queued: nothing left for Update
        # (engine-only fields, mkt.campaign._check_engine_fields)
        self.sudo().write({"queue_outdated": False, "needs_update": False})
        counts = {
            "canceled": canceled,
            "replanned": replanned,
            "added": added,
            "requeued": requeued,
            "requeued_uncertain": requeued_uncertain,
            "uncertain": uncertain,
        }
        body = self.env._(
            "Queue rebuilt by %(user)s: %(canceled)s steps canceled, %(replanned)s "
            "re-planned, %(added)s added, %(requeued)s failed steps requeued.",
            user=self.env.user.name,
            **counts,
        )
        note = self._rebuild_uncertain_note(counts) if requeue_failed else ""
        # sudo: a campaign user may run the campaign, not write it (which
        # posting in its chatter requires); the note is a text built here
        # (names escaped), authored by the user
        self.sudo().message_post(
            body=f"{body} {note}" if note else body,
            author_id=self.env.user.partner_id.id,
        )
        if self.mode == "test":
            self._run_test_workflow()
        else:
            self.env["mkt.trace"]._trigger_queue()
        return counts

    @api.model
    def _rebuild_uncertain_note(self, counts):
        """What became of the uncertain failed steps (``counts`` of
        _rebuild_queue) when failed steps were requeued, or ''."""
        if counts["requeued_uncertain"]:
            return self.env._(
                "%(count)s of them were uncertain (interrupted while sending: they may have "
                "been delivered) and requeued on explicit request.",
                count=counts["requeued_uncertain"],
            )
        if counts["uncertain"]:
            return self.env._(
                "%(count)s uncertain failed steps were left alone: interrupted while sending, "
                "they may have been delivered.",
                count=counts["uncertain"],
            )
        return ""

    @api.model
    def _rebuild_reference_sql(self):
        """When a queue row's delay starts (``t`` the row, ``a`` its step,
        ``p`` its participant, ``par`` its parent row): the enrolment for a
        first step, the event of the parent's message for an event trigger,
        the parent's run otherwise."""
        cases = [
            SQL("WHEN %s THEN par.%s", trigger, SQL.identifier(EVENT_FIELDS[event]))
            for trigger, (event, _types) in EVENT_TRIGGERS.items()
        ]
        return SQL(
            "CASE a.trigger_type WHEN 'begin' THEN p.enrolled_date %s ELSE par.processed_date END",
            SQL(" ").join(cases),
        )


class MktActivity(models.Model):
    _inherit = "mkt.activity"

    is_one_off = fields.Boolean(
        "One-off Message",
        readonly=True,
        copy=False,
        help="A message sent once to chosen participants (Message Participants), "
        "outside the workflow.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        activities = super().create(vals_list)
        activities._mark_queue_outdated()
        return activities

    def write(self, vals):
        res = super().write(vals)
        if QUEUE_FIELDS & set(vals):
            self._mark_queue_outdated()
        return res

    def unlink(self):
        self._mark_queue_outdated()
        return super().unlink()

    def _mark_queue_outdated(self):
        """The workflow of running campaigns changed: offer Rebuild Queue."""
        campaigns = self.filtered(lambda a: not a.is_one_off).campaign_id.filtered(
            lambda c: c.state == "running" and not c.queue_outdated
        )
        # the engine's flag (sudo): the user changed the workflow
        campaigns.sudo().write({"queue_outdated": True})
