import logging

import psycopg2.extensions
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.tools import SQL

from .engine_fields import EngineMany2one

_logger = logging.getLogger(__name__)


class MktParticipant(models.Model):
    _name = "mkt.participant"
    _description = "Marketing Campaign Participant"
    _order = "id desc"
    _rec_name = "record_name"
    # no create/write uid/date: two more triggers per enrolled row
    _log_access = False

    campaign_id = EngineMany2one(
        # indexed by _campaign_res_idx (campaign_id, res_id)
        "mkt.campaign",
        "Campaign",
        required=True,
        ondelete="cascade",
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
        default="running",
        required=True,
    )
    enrolled_date = fields.Datetime(
        "Enrolled On",
        readonly=True,
        default=fields.Datetime.now,
    )
    end_date = fields.Datetime(
        "Left On", readonly=True, help="When the participant completed or left the campaign."
    )
    is_test = fields.Boolean("Test", readonly=True)
    is_record_test = fields.Boolean(
        "Test on One Record",
        readonly=True,
        help="Created by Launch a Test: its steps run one by one from the test screen.",
    )
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

    def unlink(self):
        ids = self.ids
        res = super().unlink()
        # queue rows have no foreign key (engine_fields.py)
        self.env["mkt.trace"]._unlink_queue("participant_id", ids)
        return res

    def action_open_record(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.model_name,
            "res_id": self.res_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def action_open_test(self):
        """The test screen of a test on one record: its steps as they come due,
        with ▶ Run and the simulated events."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Test: %(record)s", record=self.record_name or self.display_name),
            "res_model": "mkt.participant",
            "res_id": self.id,
            "view_mode": "form",
            "views": [(self.env.ref("mkt_campaign.mkt_participant_view_form_test").id, "form")],
            "target": "current",
        }

    def action_stop_test(self):
        """End tests on one record: their pending steps are canceled."""
        self.campaign_id._check_can_run()
        # a completed test may still get steps from a simulated event: it ends too
        tests = self.filtered(lambda p: p.is_record_test and p.state != "canceled")
        tests.trace_ids.filtered(lambda t: t.state == "scheduled")._set_state(
            "canceled", self.env._("The test was stopped by %(user)s.", user=self.env.user.name)
        )
        # the participants' state is the engine's (mkt_participant_payload.py: users
        # write the payload only), for these tests of campaigns the user may run
        tests.sudo().write({"state": "canceled", "end_date": fields.Datetime.now()})
        return True

    def action_exclude(self):
        """Take participants out of their campaign for good: their pending steps
        are canceled and re-synchronisations never enrol the record again."""
        self.campaign_id._check_can_run()
        participants = self
        # the audience's lines are a manager's: a campaign user adds the exclusion
        # of these participants' records only, on campaigns they may run
        Refinement = self.env["mkt.campaign.refinement"].sudo()
        existing = {
            (r.campaign_id.id, r.res_id): r
            for r in Refinement.search(
                [
                    ("campaign_id", "in", participants.campaign_id.ids),
                    ("res_id", "in", participants.mapped("res_id")),
                ]
            )
        }
        to_create = []
        for participant in participants:
            line = existing.get((participant.campaign_id.id, participant.res_id))
            if line:
                line.kind = "exclude"
            elif (participant.campaign_id.id, participant.res_id) not in {
                (v["campaign_id"], v["res_id"]) for v in to_create
            }:
                to_create.append(
                    {
                        "campaign_id": participant.campaign_id.id,
                        "res_id": participant.res_id,
                        "kind": "exclude",
                        "record_name": participant.record_name,
                    }
                )
        Refinement.create(to_create)
        participants.trace_ids.filtered(lambda t: t.state == "scheduled")._set_state(
            "canceled",
            self.env._("Excluded from the campaign by %(user)s.", user=self.env.user.name),
        )
        # the participants' state is the engine's (mkt_participant_payload.py: users
        # write the payload only), for these of campaigns the user may run
        participants.filtered(lambda p: p.state == "running").sudo().write(
            {"state": "canceled", "end_date": fields.Datetime.now()}
        )
        return True

    def _update_completion(self):
        """Participants with no step left to run are completed; one query."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
            UPDATE mkt_participant p SET state = 'completed', end_date = %s
             WHERE p.id = ANY(%s) AND p.state = 'running'
               AND NOT EXISTS (SELECT 1 FROM mkt_trace t WHERE t.participant_id = p.id
                                  AND t.state IN ('scheduled', 'processing'))
            """,
                fields.Datetime.now(),
                self.ids,
            )
        )
        self.invalidate_recordset(["state", "end_date"])

    def _after_steps(self, retry=False):
        """Complete the participants whose last steps just ran. With
        ``retry`` this is its own transaction after the steps' one: a
        conflict with another worker updating the same participants (two
        steps of one person in two batches) is retried on a fresh snapshot
        and never touches the steps' outcome, already committed."""
        for _attempt in range(3 if retry else 1):
            try:
                self._update_completion()
                if retry:
                    # its own transaction (see above), only in the queue's
                    # auto-commit mode
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                return
            except psycopg2.extensions.TransactionRollbackError:
                if not retry:
                    raise
                self.env.cr.rollback()
                self.env.invalidate_all()
        _logger.warning(
            "mkt_campaign: completion of %d participants left to their next step", len(self)
        )

    def _reopen(self):
        """Completed participants with a step to run again are running again,
        except a past participation of a record that entered the campaign
        again since (re-entry): a record runs once at a time. One query."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
            UPDATE mkt_participant p SET state = 'running'
             WHERE p.id = ANY(%s) AND p.state = 'completed'
               AND NOT EXISTS (SELECT 1 FROM mkt_participant o
                                WHERE o.campaign_id = p.campaign_id AND o.is_test = p.is_test
                                  AND o.unique_key = p.unique_key AND o.state = 'running')
            """,
                self.ids,
            )
        )
        self.invalidate_recordset(["state"])

    # ------------------------------------------------------------------
    # Enrolment
    # ------------------------------------------------------------------

    @api.model
    def _enrol_for(self, campaign, now):
        """Enrol the records of ``campaign``'s audience that are not (or no
        longer) its participants, and queue the workflow's first steps for
        them: one INSERT … SELECT built from the audience's query (searched
        with the responsible user's rights). Returns how many were enrolled."""
        campaign.ensure_one()
        self.env.flush_all()
        # one enrolment of a campaign at a time (a manual launch and the sync
        # cron, two workers): the second waits, then sees the first's rows
        self.env.cr.execute(
            SQL("SELECT id FROM mkt_campaign WHERE id = %s FOR NO KEY UPDATE", campaign.id)
        )
        Model = self.env[campaign.model_name]
        # the audience is what the responsible user may read in the campaign's
        # company: _search adds the record rules to the WHERE clause
        audience = Model.with_env(campaign._get_audience_env())
        query = audience._search(campaign._get_audience_domain())
        table = Model._table
        is_test = campaign.mode in ("test", "test_realtime")

        def column(fname):
            field = Model._fields.get(fname)
            if not field or not field.store or not field.column_type:
                return None
            if field.translate:
                return SQL("(t.%s->>'en_US')", SQL.identifier(fname))
            return SQL("t.%s", SQL.identifier(fname))

        # a record without a value of its own takes its contact's
        partner_sql = Model._mkt_partner_sql("t") if campaign.model_name != "res.partner" else None

        def value(fnames, partner_fname):
            for fname in fnames:
                if fname and (col := column(fname)) is not None:
                    return col
            if partner_sql is not None:
                return SQL(
                    "(SELECT rp.%s FROM res_partner rp WHERE rp.id = %s)",
                    SQL.identifier(partner_fname),
                    partner_sql,
                )
            return SQL("NULL")

        email_sql = value([Model._mail_get_primary_email_field()], "email")
        # the sanitized (E.164) number when the model keeps one: the same phone
        # written two ways is one person for the frequency caps
        phone_sql = value(["phone_sanitized", *Model._phone_get_number_fields()], "phone_sanitized")
        name_sql = value([Model._rec_name], "name")
        if campaign.unique_field_id:
            key_sql = SQL(
                # an empty value ('' is stored for some char fields) is no
                # value: such records are each enrolled, not merged into one
                "COALESCE(NULLIF(lower(t.%s::text), ''), 'id:' || t.id::text)",
                SQL.identifier(campaign.unique_field_id.name),
            )
        else:
            key_sql = SQL("'id:' || t.id::text")

        # first steps: at campaign start, or on a date of the record
        begin = campaign.activity_ids.filtered(lambda a: not a.parent_id)
        schedule_values = (
            SQL(", ").join(
                SQL(
                    "(%s::int, %s::timestamp)",
                    act.id,
                    act._get_schedule_date(now, campaign.mode == "test"),
                )
                for act in begin
            )
            if begin
            else None
        )
        # a past participation blocks a new one unless it ended more than
        # `reentry_days` ago (0: it always blocks)
        if campaign.reentry_days:
            blocking = SQL(
                "(p.state = 'running' OR p.end_date IS NULL OR p.end_date > %s)",
                now - relativedelta(days=campaign.reentry_days),
            )
        else:
            blocking = SQL("true")
        # The first enrolment (no participant yet) cannot conflict with the
        # unique index: it runs without ON CONFLICT, whose speculative
        # insertion costs about a quarter of the statement. A later one may
        # meet a participant reopened meanwhile by a tracking event.
        self.env.cr.execute(
            SQL(
                "SELECT 1 FROM mkt_participant WHERE campaign_id = %s AND is_test = %s LIMIT 1",
                campaign.id,
                is_test,
            )
        )
        on_conflict = SQL("ON CONFLICT DO NOTHING") if self.env.cr.rowcount else SQL("")
        # Participants and queue rows have no foreign keys and no create/write
        # uid (see engine_fields.py): no trigger fires per inserted row
        trace_insert = (
            SQL(
                """, traces AS (
                INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id,
                                       is_test, state, schedule_date, attempts)
                SELECT ins.id, a.activity_id, %(campaign)s, ins.res_id, %(is_test)s,
                       'scheduled', a.schedule_date, 0
                  FROM ins CROSS JOIN (VALUES %(values)s) AS a(activity_id, schedule_date)
             RETURNING 1
            )""",
                campaign=campaign.id,
                is_test=is_test,
                values=schedule_values,
            )
            if begin
            else SQL("")
        )
        self.env.cr.execute(
            SQL(
                """
            WITH candidates AS MATERIALIZED (
                -- computed in full before the INSERT: the existence checks run
                -- against the participants as they were, never against rows the
                -- INSERT is adding
                SELECT DISTINCT ON (%(key)s) t.id AS res_id, %(key)s AS unique_key,
                       %(name)s AS record_name, %(email)s AS email, %(phone)s AS phone
                  FROM %(table)s t
                 WHERE t.id IN (%(subquery)s)
                   AND NOT EXISTS (
                        SELECT 1 FROM mkt_participant p
                         WHERE p.campaign_id = %(campaign)s AND p.is_test = %(is_test)s
                           AND p.res_id = t.id AND %(blocking)s
                           AND p.is_record_test IS NOT TRUE)
                   AND NOT EXISTS (
                        SELECT 1 FROM mkt_participant p
                         WHERE p.campaign_id = %(campaign)s AND p.is_test = %(is_test)s
                           AND p.unique_key = %(key)s AND %(blocking)s
                           AND p.is_record_test IS NOT TRUE)
              ORDER BY %(key)s, t.id
            ), ins AS (
                INSERT INTO mkt_participant (campaign_id, res_id, unique_key, record_name,
                                             email, phone, is_test, state, enrolled_date)
                SELECT %(campaign)s, c.res_id, c.unique_key, c.record_name, c.email, c.phone,
                       %(is_test)s, 'running', %(now)s
                  FROM candidates c
                %(on_conflict)s
             RETURNING id, res_id
            )%(trace_insert)s
            SELECT count(*) FROM ins
            """,
                key=key_sql,
                name=name_sql,
                email=email_sql,
                phone=phone_sql,
                table=SQL.identifier(table),
                subquery=query.subselect(),
                campaign=campaign.id,
                is_test=is_test,
                now=now,
                trace_insert=trace_insert,
                blocking=blocking,
                on_conflict=on_conflict,
            )
        )
        count = self.env.cr.fetchone()[0]
        self.env["mkt.participant"].invalidate_model()
        self.env["mkt.trace"].invalidate_model()
        return count
