import logging
import random
from collections import defaultdict
from datetime import timedelta

import psycopg2.errors

from odoo import api, fields, models, modules
from odoo.exceptions import UserError
from odoo.fields import Domain
from odoo.tools import SQL, split_every

from ..tools.mail_batch import SmtpBatch
from .engine_fields import EngineMany2one
from .mkt_activity import EVENT_CANCELS, EVENT_TRIGGERS, NEGATIVE_TRIGGERS

_logger = logging.getLogger(__name__)

# the cron jobs that run the queue (data/ir_cron_data.xml)
QUEUE_CRONS = (
    "mkt_campaign.ir_cron_execute_activities",
    "mkt_campaign.ir_cron_execute_activities_2",
    "mkt_campaign.ir_cron_execute_activities_3",
    "mkt_campaign.ir_cron_execute_activities_4",
)
# namespace (first key) of the session advisory locks that tell whether the
# worker processing a step is still alive
WORKER_LOCK_CLASS = 0x6D6B74  # "mkt"
# a database conflict between two workers (serialization failure, deadlock):
# transient, the transaction is retried
TransientDbError = psycopg2.extensions.TransactionRollbackError
# the outcomes a channel adapter returns for a step (_execute_channel)
CHANNEL_STATES = {"processed", "rejected", "failed", "retry"}
EVENT_FIELDS = {
    "open": "open_datetime",
    "click": "click_datetime",
    "reply": "reply_datetime",
    "bounce": "bounce_datetime",
}
# the queue condition that leaves the steps of a test on one record to the
# test screen (▶ Run): the queue never runs them by itself
NOT_RECORD_TEST = SQL(
    "(NOT mkt_trace.is_test OR NOT EXISTS (SELECT 1 FROM mkt_participant rtp"
    " WHERE rtp.id = mkt_trace.participant_id AND rtp.is_record_test))"
)


class MktTrace(models.Model):
    _name = "mkt.trace"
    _description = "Marketing Campaign Queue"
    _order = "schedule_date desc, id desc"
    _rec_name = "activity_id"
    # no create/write uid/date: two more triggers per enrolled row, and the
    # queue has its own dates (schedule_date, processing_date, processed_date)
    _log_access = False

    participant_id = EngineMany2one(
        # indexed by _unique_step (participant_id, activity_id, parent_id)
        "mkt.participant",
        "Participant",
        required=True,
        ondelete="cascade",
    )
    activity_id = EngineMany2one(
        "mkt.activity", "Step", required=True, ondelete="cascade", index=True
    )
    activity_type = fields.Selection(related="activity_id.activity_type")
    campaign_id = EngineMany2one(
        "mkt.campaign", "Campaign", required=True, ondelete="cascade", index=True
    )
    model_name = fields.Char(related="campaign_id.model_name")
    campaign_paused = fields.Boolean(related="campaign_id.is_paused", string="Campaign Paused")
    res_id = fields.Many2oneReference("Record ID", model_field="model_name")
    record_name = fields.Char(related="participant_id.record_name", string="Contact")
    email = fields.Char(related="participant_id.email")
    phone = fields.Char(related="participant_id.phone")
    is_test = fields.Boolean("Test", readonly=True)
    parent_id = EngineMany2one(
        "mkt.trace", "Triggered By", ondelete="cascade", index="btree_not_null"
    )
    child_ids = fields.One2many("mkt.trace", "parent_id", "Triggered Steps")
    state = fields.Selection(
        [
            ("scheduled", "Scheduled"),
            ("processing", "Processing"),
            ("processed", "Processed"),
            ("rejected", "Rejected"),
            ("failed", "Failed"),
            ("canceled", "Canceled"),
        ],
        default="scheduled",
        required=True,
        readonly=True,
    )
    schedule_date = fields.Datetime("Scheduled", readonly=True)
    processing_date = fields.Datetime(
        "Processing Since", readonly=True, help="When a worker claimed the step (its last attempt)."
    )
    processed_date = fields.Datetime("Processed On", readonly=True)
    attempts = fields.Integer(readonly=True)
    send_started = fields.Boolean(
        "Sending Started",
        readonly=True,
        help="The worker started sending this step's message. A worker that stops "
        "before recording the result leaves it uncertain: it is never sent again "
        "automatically.",
    )
    is_uncertain = fields.Boolean(
        "Uncertain",
        readonly=True,
        copy=False,
        help="The step failed while its message was being sent (its worker stopped, or "
        "its result could not be recorded): it may have been delivered. Rebuild Queue "
        "does not requeue it unless asked to explicitly; use Retry on its form once "
        "you checked it was not delivered.",
    )
    worker_key = fields.Integer(
        "Worker",
        readonly=True,
        help="Key of the session lock held by the worker processing the step: when "
        "the lock is free, that worker is gone and its steps are recovered.",
    )
    is_confirmed = fields.Boolean(
        "Confirmed",
        readonly=True,
        help="In a campaign in manual confirmation mode, a step runs only once confirmed.",
    )
    error_message = fields.Text("Reason", readonly=True)
    mailing_trace_ids = fields.One2many("mailing.trace", "mkt_trace_id", "Message Traces")
    whatsapp_message_id = fields.Char(
        "WhatsApp Message",
        readonly=True,
        index="btree_not_null",
        help="ID WhatsApp gave the message (wamid): its status updates come with it.",
    )
    open_datetime = fields.Datetime("Opened On", readonly=True)
    click_datetime = fields.Datetime("Clicked On", readonly=True)
    reply_datetime = fields.Datetime("Replied On", readonly=True)
    bounce_datetime = fields.Datetime("Bounced On", readonly=True)
    opens = fields.Integer(compute="_compute_engagement")
    clicks = fields.Integer(compute="_compute_engagement")

    _due_idx = models.Index("(schedule_date, id) WHERE state = 'scheduled'")
    # a participant runs a first step once, and a step is triggered once by
    # the same parent (whose participant is the child's)
    _unique_step = models.UniqueIndex(
        "(participant_id, activity_id, COALESCE(parent_id, 0))",
        "A participant runs a step once per triggering step.",
    )

    def _compute_engagement(self):
        clicks = dict(
            self.env["link.tracker.click"]._read_group(
                [("mailing_trace_id.mkt_trace_id", "in", self.ids)],
                ["mailing_trace_id"],
                ["__count"],
            )
        )
        per_trace = defaultdict(int)
        for mailing_trace, count in clicks.items():
            per_trace[mailing_trace.mkt_trace_id.id] += count
        for trace in self:
            trace.clicks = per_trace.get(trace.id, 0) or (1 if trace.click_datetime else 0)
            trace.opens = 1 if trace.open_datetime else 0

    # ------------------------------------------------------------------
    # Actions (queue buttons)
    # ------------------------------------------------------------------

    def action_cancel(self):
        self.campaign_id._check_can_run()
        traces = self.filtered(lambda t: t.state == "scheduled")
        traces._set_state("canceled", self.env._("Canceled by %(user)s.", user=self.env.user.name))
        traces.participant_id._update_completion()
        return True

    def action_confirm(self):
        """Manual confirmation mode: confirm steps. Nothing is sent inside the
        user's request: the queue cron, woken now, runs those already due."""
        self.campaign_id._check_can_run()
        # the queue's own field: a campaign user may not write the steps
        traces = self.sudo().filtered(lambda t: t.state == "scheduled")
        traces.write({"is_confirmed": True})
        if traces:
            self._trigger_queue()
        return True

    def action_retry(self):
        """Requeue the failed steps, now. Uncertain ones (interrupted while
        sending: the message may have been delivered) are left alone and
        counted in a notification: each is retried from its form (Retry asks
        first), once the user checked it was not delivered."""
        uncertain = self.filtered(lambda t: t.state == "failed" and t.is_uncertain)
        (self - uncertain)._retry()
        if not uncertain:
            return True
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "warning",
                "title": self.env._("Uncertain steps not retried"),
                "message": self.env._(
                    "%(count)s of the selected steps were interrupted while sending and may "
                    "have been delivered: they were not retried. Check them, then use Retry on "
                    "the form of each, which asks for a confirmation.",
                    count=len(uncertain),
                ),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_retry_uncertain(self):
        """Requeue failed steps, uncertain ones included: the user checked
        that their message was not delivered (the button asks first)."""
        self._retry()
        return True

    def _retry(self):
        self.campaign_id._check_can_run()
        # the queue's own fields: a campaign user reads the steps, the engine writes them
        traces = self.sudo().filtered(lambda t: t.state == "failed")
        traces.write(
            {
                "state": "scheduled",
                "schedule_date": fields.Datetime.now(),
                "error_message": False,
                "is_confirmed": True,
                # the user checked that the message of an uncertain step was not delivered
                "is_uncertain": False,
            }
        )
        traces.participant_id._reopen()
        self._trigger_queue()

    def action_open_record(self):
        return self.participant_id.action_open_record()

    # ------------------------------------------------------------------
    # Queue processing
    # ------------------------------------------------------------------

    @api.model
    def _cron_execute_activities(self):
        params = self.env["ir.config_parameter"]
        batch_size = int(params.get_param("mkt_campaign.batch_size", 500)) or 500
        cron = self.env["ir.cron"]
        auto_commit = not modules.module.current_test
        report = auto_commit or bool(self.env.context.get("ir_cron_progress_id"))
        # only the scheduler shows the remaining count: outside it, don't count
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        # A session lock, held until this run ends, marks the steps this worker
        # claims as alive: when its process dies, the database frees the lock
        # and the next run of any worker recovers them (_recover_stale).
        # Without commits (tests) a crash rolls the claim back: no lock needed.
        worker_key = self._lock_worker() if auto_commit else None
        SmtpBatch.open_shared()  # e-mail steps keep their SMTP session across chunks
        try:
            self._recover_stale(own_key=worker_key)
            # steps past their expiry are canceled before any is claimed
            self._expire_overdue()
            if report:
                cron._commit_progress(remaining=self._count_due() if in_cron else None)
            while True:
                try:
                    traces = self._claim(Domain.TRUE, limit=batch_size, worker_key=worker_key)
                except TransientDbError:
                    # another worker changed these rows after our snapshot: next run
                    self.env.cr.rollback()
                    break
                if not traces:
                    break
                if auto_commit:
                    # the claim is durable before anything is sent: no other worker
                    # can take these steps, and a crash leaves them in 'processing'
                    self.env.cr.commit()  # pylint: disable=invalid-commit
                conflicts = traces._execute(auto_commit=auto_commit)
                remaining = self._count_due() if in_cron else None
                if report and not cron._commit_progress(len(traces), remaining=remaining):
                    break
                if conflicts:
                    # steps met another worker's update and are due again:
                    # leave them to the next run (woken below) on a fresh
                    # start rather than spin on them
                    break
        finally:
            # the SMTP sessions e-mail steps kept open across chunks
            SmtpBatch.close_shared()
            if worker_key:
                self._unlock_worker(worker_key)
        next_due = self._next_due_date()
        if next_due:
            self._trigger_queue(next_due)

    @api.model
    def _queue_crons(self):
        """The cron jobs running the queue: the main one, then the extra
        workers (Settings > Parallel Queue Workers), active or not."""
        # ir.cron is admin-only: the queue's own jobs, by xmlid, to wake or count them
        crons = self.env["ir.cron"].sudo()
        for xmlid in QUEUE_CRONS:
            crons |= self.env.ref(xmlid, raise_if_not_found=False) or crons.browse()
        return crons.with_context(active_test=False)

    @api.model
    def _trigger_queue(self, at=None):
        """Wake every active queue job: each takes its share of due steps."""
        for cron in self._queue_crons().filtered("active"):
            cron._trigger(at)

    @api.model
    def _lock_worker(self):
        """Take a session advisory lock under a random key: the mark of this
        worker on the steps it claims, held until _unlock_worker."""
        key = random.randint(1, 2**31 - 1)
        self.env.cr.execute(SQL("SELECT pg_advisory_lock(%s, %s)", WORKER_LOCK_CLASS, key))
        return key

    @api.model
    def _unlock_worker(self, key):
        """Release the worker's lock. The connection goes back to Odoo's pool:
        a lock left on it would keep a dead run's steps 'alive'."""
        cr = self.env.cr
        try:
            cr.execute(SQL("SELECT pg_advisory_unlock(%s, %s)", WORKER_LOCK_CLASS, key))
        except psycopg2.Error:
            # the transaction is aborted (the run is failing): unlock after it
            cr.rollback()
            cr.execute(SQL("SELECT pg_advisory_unlock(%s, %s)", WORKER_LOCK_CLASS, key))

    @api.model
    def _dead_workers(self, own_key=None):
        """Keys of the workers that left steps in 'processing' and are gone:
        their session lock is free."""
        self.env.cr.execute(
            "SELECT DISTINCT worker_key FROM mkt_trace"
            " WHERE state = 'processing' AND worker_key IS NOT NULL"
        )
        dead = []
        for (key,) in self.env.cr.fetchall():
            if key == own_key:
                continue
            self.env.cr.execute(SQL("SELECT pg_try_advisory_lock(%s, %s)", WORKER_LOCK_CLASS, key))
            if self.env.cr.fetchone()[0]:
                dead.append(key)
                self.env.cr.execute(
                    SQL("SELECT pg_advisory_unlock(%s, %s)", WORKER_LOCK_CLASS, key)
                )
        return dead

    @api.model
    def _due_query(self, domain, ignore_schedule=False, ignore_mode=False):
        """SQL selecting the ids of the steps that may run now."""
        query = self._search(Domain("state", "=", "scheduled") & domain)
        query.add_join(
            "JOIN",
            "c",
            "mkt_campaign",
            SQL(
                "c.id = mkt_trace.campaign_id AND c.state = 'running'"
                # a campaign paused by its budget sends nothing (mkt_campaign_budget.py)
                " AND c.budget_paused IS NOT TRUE"
                # nor one paused by a user (Pause / Resume)
                " AND c.is_paused IS NOT TRUE"
            ),
        )
        # the steps of a test on one record run from its test screen only
        query.add_where(NOT_RECORD_TEST)
        if not ignore_schedule:
            query.add_where(SQL("mkt_trace.schedule_date <= %s", fields.Datetime.now()))
        if not ignore_mode:
            query.add_where(
                SQL("(c.mode != 'manual' OR mkt_trace.is_confirmed OR mkt_trace.is_test)")
            )
        return query

    @api.model
    def _count_due(self):
        self.env.cr.execute(
            SQL("SELECT count(*) FROM (%s) q", self._due_query(Domain.TRUE).subselect())
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _next_due_date(self):
        query = self._due_query(Domain.TRUE, ignore_schedule=True)
        self.env.cr.execute(query.select(SQL("min(mkt_trace.schedule_date)")))
        return self.env.cr.fetchone()[0]

    @api.model
    def _claim(self, domain, limit=None, ignore_schedule=False, ignore_mode=False, worker_key=None):
        """Lock and mark as 'processing' a batch of due steps. Rows another
        worker holds are skipped (SKIP LOCKED), so workers never share a step.
        ``worker_key``: the claiming worker's lock (_lock_worker)."""
        self.env.flush_all()
        query = self._due_query(domain, ignore_schedule=ignore_schedule, ignore_mode=ignore_mode)
        query.order = SQL("mkt_trace.schedule_date, mkt_trace.id")
        query.limit = limit
        # The locked batch is a MATERIALIZED CTE, evaluated once: as an
        # "IN (subquery)" the planner may pick a nested-loop semi-join that
        # rescans the LIMIT … SKIP LOCKED subquery for every outer row and
        # claims far more than ``limit`` rows (seen on freshly filled tables).
        self.env.cr.execute(
            SQL(
                """
            WITH batch AS MATERIALIZED (%(ids)s FOR UPDATE OF mkt_trace SKIP LOCKED)
            UPDATE mkt_trace t
               SET state = 'processing', attempts = t.attempts + 1,
                   processing_date = %(now)s, worker_key = %(key)s, send_started = false
              FROM batch
             WHERE t.id = batch.id
               AND t.state = 'scheduled'
         RETURNING t.id
            """,
                ids=query.select(SQL("mkt_trace.id")),
                now=fields.Datetime.now(),
                key=worker_key,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        traces = self.browse(ids)
        traces.invalidate_recordset(
            ["state", "attempts", "processing_date", "worker_key", "send_started"]
        )
        return traces

    @api.model
    def _recover_stale(self, own_key=None):
        """Steps left in 'processing' by a worker that is gone: its session
        lock is free (it was killed, its server stopped), or, for steps claimed
        without a lock, it took longer than the processing timeout.

        - steps whose sending had not started go back to the queue as they
          were (the attempt did not happen);
        - steps with no effect outside the database (server actions, test
          runs) were rolled back with the worker's transaction: queued again;
        - messages whose sending had started may have left: they end failed
          with the reason, so that nobody is messaged twice. That is at most
          one chunk per worker (mkt_campaign.send_chunk_size)."""
        params = self.env["ir.config_parameter"]
        timeout = int(params.get_param("mkt_campaign.processing_timeout_minutes", 30))
        limit = fields.Datetime.now() - timedelta(minutes=timeout)
        self.env.flush_all()
        dead = self._dead_workers(own_key)
        self.env.cr.execute(
            SQL(
                """SELECT t.id FROM mkt_trace t
                WHERE t.state = 'processing'
                  AND (t.worker_key = ANY(%s)
                       OR (t.worker_key IS NULL AND t.processing_date < %s))
                  FOR UPDATE SKIP LOCKED""",
                dead,
                limit,
            )
        )
        stale = self.browse([row[0] for row in self.env.cr.fetchall()])
        if not stale:
            return stale
        uncertain = stale.filtered(
            lambda t: t.send_started and not t.is_test and t.activity_id._mkt_sends_messages()
        )
        (stale - uncertain)._postpone(fields.Datetime.now(), False)
        uncertain._fail_uncertain(
            self.env._(
                "Interrupted while sending: the worker stopped before recording the result. "
                "It is not retried automatically so that nobody receives the message twice; "
                "use Retry once you checked it was not delivered."
            )
        )
        uncertain.participant_id._update_completion()
        _logger.warning(
            "mkt_campaign: recovered %d interrupted steps (%d uncertain, failed)",
            len(stale),
            len(uncertain),
        )
        return stale

    def _postpone(self, date, reason):
        """Back to the queue until ``date``, with the reason; the attempt the
        claim counted did not happen."""
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """UPDATE mkt_trace SET state = 'scheduled', schedule_date = %s,
                      error_message = %s, attempts = GREATEST(attempts - 1, 0),
                      send_started = false, worker_key = NULL
                WHERE id = ANY(%s)""",
                date,
                reason or None,
                self.ids,
            )
        )
        self.invalidate_recordset(
            [
                "state",
                "schedule_date",
                "error_message",
                "attempts",
                "send_started",
                "worker_key",
            ]
        )

    @api.model
    def _unlink_queue(self, fname, ids):
        """Delete the queue rows of these campaigns, steps or participants
        (``fname``: campaign_id, activity_id or participant_id): the
        ``ondelete='cascade'`` of the queue's EngineMany2one fields, in one
        DELETE."""
        if not ids:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL("DELETE FROM mkt_trace WHERE %s = ANY(%s)", SQL.identifier(fname), list(ids))
        )
        self.invalidate_model()

    @api.autovacuum
    def _gc_orphan_rows(self):
        """Participants and queue rows whose campaign, participant or step is
        gone, e.g. deleted with SQL or with the target model: deleted."""
        self.env.cr.execute("""
            DELETE FROM mkt_participant p
             WHERE NOT EXISTS (SELECT 1 FROM mkt_campaign c WHERE c.id = p.campaign_id)
        """)
        self.env.cr.execute("""
            DELETE FROM mkt_trace t
             WHERE NOT EXISTS (SELECT 1 FROM mkt_participant p WHERE p.id = t.participant_id)
                OR NOT EXISTS (SELECT 1 FROM mkt_activity a WHERE a.id = t.activity_id)
        """)
        if self.env.cr.rowcount:
            _logger.info(
                "Deleted %d queue rows of deleted participants or steps", self.env.cr.rowcount
            )
        self.invalidate_model()

    def _set_state(self, state, message=False):
        if not self:
            return
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """UPDATE mkt_trace SET state = %s, error_message = %s,
                      processed_date = CASE WHEN %s THEN %s ELSE processed_date END
                WHERE id = ANY(%s)""",
                state,
                message or None,
                state != "scheduled",
                fields.Datetime.now(),
                self.ids,
            )
        )
        self.invalidate_recordset(["state", "error_message", "processed_date"])

    def _fail_uncertain(self, message):
        """These steps' messages may have left, but their result is unknown
        (the worker stopped while sending, or the result could not be
        recorded): failed with ``message`` and marked uncertain, so that
        nothing requeues them unless a user asks for it explicitly (Retry,
        Rebuild Queue's option): nobody receives a message twice."""
        if not self:
            return
        self._set_state("failed", message)
        self.env.cr.execute(
            SQL("UPDATE mkt_trace SET is_uncertain = true WHERE id = ANY(%s)", self.ids)
        )
        self.invalidate_recordset(["is_uncertain"])

    def _execute(self, auto_commit=False):
        """Run claimed ('processing') steps, grouped by activity: set-based
        filter checks, one action call per group, then their children.

        Messages go out by chunks (mkt_campaign.send_chunk_size, 50): with
        ``auto_commit`` each chunk is marked started and committed before it
        is sent, and its outcome is committed right after, so that a worker
        killed mid-batch leaves one chunk of uncertain outcome at most and
        the rest of the batch goes back to the queue."""
        # ir.config_parameter is admin-only (a test run executes as its user): one known key
        params = self.env["ir.config_parameter"].sudo()
        chunk_size = int(params.get_param("mkt_campaign.send_chunk_size", 50)) or 50
        conflicts = False
        for activity in self.activity_id:
            traces = self.filtered(lambda t, a=activity: t.activity_id == a)
            size = chunk_size if activity._mkt_sends_messages() else len(traces)
            for ids in split_every(size, traces.ids):
                conflicts |= self.browse(ids)._execute_chunk(activity, auto_commit)
        if not auto_commit:
            self.participant_id._after_steps()
        return conflicts

    def _execute_chunk(self, activity, auto_commit):
        """Execute one chunk of claimed steps of ``activity`` in its own
        transaction (``auto_commit``) or savepoint. A step that raises fails
        its own rows with the reason; a database conflict with another worker
        sends the chunk back to the queue, unless a message already left.
        Returns whether it did."""
        cr = self.env.cr
        if activity._mkt_sends_messages():
            self.env.flush_all()
            cr.execute(
                SQL(
                    "UPDATE mkt_trace SET send_started = true, processing_date = %s"
                    " WHERE id = ANY(%s)",
                    fields.Datetime.now(),
                    self.ids,
                )
            )
            self.invalidate_recordset(["send_started", "processing_date"])
            if auto_commit:
                # durable before a message leaves: a crash after it never
                # sends these steps a second time
                cr.commit()  # pylint: disable=invalid-commit
        # the channel marks the moment a message leaves (_mark_sending)
        progress = {"sending": False}
        requeued = False
        try:
            with cr.savepoint():
                self.with_context(mkt_send_progress=progress)._execute_activity(activity)
        except TransientDbError as error:
            self.env.invalidate_all()
            if progress["sending"]:
                # cannot happen by design (a batch writes only its own rows
                # once sending starts); if it does, never send twice
                _logger.error(
                    "mkt_campaign: conflict after sending step %s: %s", activity.id, error
                )
                self._fail_uncertain(
                    self.env._(
                        "The result could not be recorded (%(error)s). It is not retried "
                        "automatically so that nobody receives the message twice; use Retry "
                        "once you checked it was not delivered.",
                        error=error.pgerror or error,
                    )
                )
            else:
                # another worker changed a row this chunk needed: nothing left,
                # the steps are due again at once and the attempt does not count
                _logger.info(
                    "mkt_campaign: step %s met a concurrent update, requeued: %s",
                    activity.id,
                    error,
                )
                self._postpone(fields.Datetime.now(), False)
                requeued = True
        except Exception as error:  # noqa: BLE001 - the reason is kept on the chunk's steps
            self.env.invalidate_all()
            _logger.exception("mkt_campaign: step %s raised", activity.id)
            message = self.env._(
                "The step could not run: %(error)s",
                error=str(error) or type(error).__name__,
            )
            if progress["sending"]:
                # raised after the first message left: some may have been delivered
                self._fail_uncertain(message)
            else:
                self._set_state("failed", message)
        if auto_commit:
            # the chunk's outcome is kept whatever happens to the next one
            cr.commit()  # pylint: disable=invalid-commit
            self.participant_id._after_steps(retry=True)
        return requeued

    def _mark_sending(self):
        """Called by a channel right before a message leaves: from then on a
        database conflict must not send the chunk back to the queue."""
        progress = self.env.context.get("mkt_send_progress")
        if progress is not None:
            progress["sending"] = True

    def _execute_activity(self, activity):
        campaign = activity.campaign_id
        # whether the enrolled records still exist, whatever the caller may read: the
        # step's filter below is searched with the campaign responsible's rights
        Model = self.env[campaign.model_name].sudo().with_context(active_test=False)
        res_ids = set(Model.browse(self.mapped("res_id")).exists().ids)
        missing = self.filtered(lambda t: t.res_id not in res_ids)
        missing._set_state("rejected", self.env._("The record no longer exists."))
        todo = self - missing

        if todo and activity.domain not in (False, "", "[]"):
            # the step's filter sees what the campaign's responsible user may
            # read in the campaign's company (record rules, multi-company)
            try:
                Audience = Model.with_env(campaign._get_audience_env())
                matching = set(
                    Audience.with_context(active_test=False)
                    .search(activity._get_domain() & Domain("id", "in", todo.mapped("res_id")))
                    .ids
                )
            except UserError as e:
                # the responsible user was archived, the filter no longer parses…
                todo._set_state("failed", str(e))
                todo, matching = todo.browse(), set()
            unmatched = todo.filtered(lambda t: t.res_id not in matching)
            unmatched._set_state(
                "rejected", self.env._("The record no longer matches the step's filter.")
            )
            todo -= unmatched

        if todo and activity.trigger_type in NEGATIVE_TRIGGERS:
            event = NEGATIVE_TRIGGERS[activity.trigger_type][0]
            happened = todo.filtered(lambda t: t.parent_id[EVENT_FIELDS[event]])
            happened._set_state(
                "canceled",
                {
                    "open": self.env._("The parent message was opened in time."),
                    "click": self.env._("The parent message was clicked in time."),
                    "reply": self.env._("The parent message was replied to in time."),
                }[event],
            )
            todo -= happened

        # a step on a date of the record waits for that date
        todo = todo._apply_record_date(activity)

        real = todo.filtered(lambda t: not t.is_test)
        # consent, frequency caps and sending window: the others wait or are rejected
        sendable = self.env["mkt.sending.policy"]._apply(real, activity)
        todo -= real - sendable
        # a test on one record really sends, to that record only (▶ Run)
        real = sendable | todo.filtered("participant_id.is_record_test")
        outcome = {}  # trace -> (state, message)
        if real:
            outcome = real._execute_channel(activity)
        done = todo.filtered(lambda t: t not in outcome)
        done._set_state("processed")
        by_outcome = defaultdict(lambda: self.browse())
        for trace, result in outcome.items():
            by_outcome[result] |= trace
            if result[0] == "processed":
                # processed with a note: its children are queued too
                done |= trace
        retry = self.browse()
        for (state, message), traces in by_outcome.items():
            if state == "retry":
                retry |= traces
            else:
                traces._set_state(state, message)
        retry._schedule_retry(outcome)
        # the participants are running (these steps were processing): no
        # reopening, whose UPDATE could meet another worker's batch
        done._schedule_children(reopen=False)
        # audience-wide tests: a share of the participants opens and clicks
        done._simulate_test_engagement(activity)

    def _execute_channel(self, activity):
        """Hand these steps (claimed, one chunk of ``activity``, past the
        filter, consent, caps and window checks) to the step's channel and
        return their outcome. The queue knows no channel: it looks the
        adapter up in the channel registry, ``mkt.activity._mkt_channel()``.

        The channel adapter contract:

        - an adapter is one method, called with the chunk: ``adapter(traces)``,
          ``traces`` being ``mkt.trace`` rows of one activity
          (``traces.activity_id``), in 'processing', in the queue's
          transaction (a savepoint of the chunk);
        - it returns ``{trace: (state, reason)}``, ``state`` one of
          ``processed`` / ``rejected`` / ``failed`` / ``retry`` and ``reason``
          the text shown on the queue row (``False`` for none). Steps absent
          from the dict are processed; processed steps get their children
          queued; ``retry`` is retried with back-off up to
          ``mkt_campaign.max_attempts``, then failed;
        - a channel whose message leaves the database calls
          ``traces._mark_sending()`` right before the first one leaves: from
          then on a database conflict no longer sends the chunk back to the
          queue (it could message someone twice);
        - before that call, ``psycopg2.extensions.TransactionRollbackError``
          (another worker's concurrent update) must propagate, never be turned
          into a failure: the queue requeues the chunk, attempt not counted;
        - any other exception fails the chunk's steps with its text; an
          adapter catches the errors of one recipient and returns them as that
          step's outcome instead;
        - the adapter writes only its own steps' rows and its channel's
          records; states, retries, children and events are the queue's;
        - it runs as superuser (the queue's cron, or the commented sudo of a
          user's action on steps of a campaign they may run: Send Now, ▶ Run),
          so it needs no sudo of its own; the content it renders was checked
          with its author's rights when written (mkt.activity._check_content_rights).
        """
        channel = activity._mkt_channel()
        if not channel:
            raise UserError(
                self.env._(
                    "No channel sends steps of type %(type)s.",
                    type=activity.activity_type,
                )
            )
        outcome = channel.execute(self) or {}
        for trace, (state, _reason) in outcome.items():
            if state not in CHANNEL_STATES:
                raise ValueError(f"channel {activity.activity_type} returned {state!r} for {trace}")
        return outcome

    def _schedule_retry(self, outcome):
        # ir.config_parameter is admin-only (a test run executes as its user): known keys
        params = self.env["ir.config_parameter"].sudo()
        max_attempts = int(params.get_param("mkt_campaign.max_attempts", 5))
        delay = int(params.get_param("mkt_campaign.retry_delay_minutes", 5))
        now = fields.Datetime.now()
        # one UPDATE per (attempt, reason): a whole batch fails together when
        # the mail server is down
        groups = defaultdict(lambda: self.browse())
        for trace in self:
            groups[(trace.attempts, outcome[trace][1])] |= trace
        for (attempts, message), traces in groups.items():
            if attempts >= max_attempts:
                traces._set_state(
                    "failed",
                    self.env._(
                        "%(error)s (gave up after %(attempts)s attempts)",
                        error=message,
                        attempts=attempts,
                    ),
                )
            else:
                traces.write(
                    {
                        "state": "scheduled",
                        # exponential back-off: delay, 2×delay, 4×delay…
                        "schedule_date": now + timedelta(minutes=delay * 2 ** (attempts - 1)),
                        "error_message": self.env._(
                            "Attempt %(attempt)s failed, retrying: %(error)s",
                            attempt=attempts,
                            error=message,
                        ),
                    }
                )

    def _schedule_children(self, triggers=None, event_date=None, reopen=True):
        """Queue the child steps of processed steps. ``triggers`` defaults to
        the time-based ones; events pass the trigger they fire. ``reopen``:
        completed participants with a new step run again."""
        if not self:
            return
        now = event_date or fields.Datetime.now()
        triggers = triggers or ["after_parent", "record_date", *NEGATIVE_TRIGGERS]
        for activity in self.activity_id:
            parents = self.filtered(lambda t, a=activity: t.activity_id == a)
            for child in activity.child_ids.filtered(lambda c: c.trigger_type in triggers):
                for _is_test, group in parents.grouped("is_test").items():
                    ignore_delay = child.campaign_id.mode == "test"
                    self.env.cr.execute(
                        SQL(
                            """
                        INSERT INTO mkt_trace (participant_id, activity_id, campaign_id,
                                               res_id, is_test, parent_id, state,
                                               schedule_date, attempts, is_confirmed)
                        SELECT t.participant_id, %(child)s, t.campaign_id, t.res_id,
                               t.is_test, t.id, 'scheduled', %(date)s, 0, false
                          FROM mkt_trace t
                         WHERE t.id = ANY(%(ids)s)
                        ON CONFLICT DO NOTHING
                        """,
                            child=child.id,
                            ids=group.ids,
                            date=child._get_schedule_date(now, ignore_delay),
                        )
                    )
        if reopen:
            self.participant_id._reopen()
        self.invalidate_recordset(["child_ids"])

    def _fail_after_sending(self, reason):
        """The provider accepted the message of these steps, then reported
        it undelivered (SMS delivery report, WhatsApp 'failed' status): the
        step fails (it is no longer counted as sent) and its follow-ups are
        canceled. A step whose message was opened, clicked or replied to was
        delivered: a late or repeated report never moves it backwards."""
        failed = self.filtered(
            lambda t: (
                t.state == "processed"
                and not (t.open_datetime or t.click_datetime or t.reply_datetime)
            )
        )
        if not failed:
            return failed
        failed._set_state("failed", reason)
        failed.child_ids.filtered(lambda c: c.state == "scheduled")._set_state(
            "canceled", self.env._("The parent message could not be delivered.")
        )
        failed.participant_id._update_completion()
        return failed

    # ------------------------------------------------------------------
    # Tracking events (called by mailing.trace)
    # ------------------------------------------------------------------

    def _process_event(self, event, channel):
        """A message of these steps was opened / clicked / replied / bounced:
        record it once, cancel the 'not' twins and queue the matching children."""
        field = EVENT_FIELDS[event]
        first = self.filtered(lambda t: not t[field] and t.state == "processed")
        if not first:
            return
        now = fields.Datetime.now()
        first.write({field: now})
        pending_children = first.child_ids.filtered(lambda c: c.state == "scheduled")
        if event == "bounce":
            pending_children._set_state("canceled", self.env._("The parent e-mail bounced."))
            triggers = ["email_bounce"]
        else:
            cancels = EVENT_CANCELS.get((event, channel), [])
            pending_children.filtered(lambda c: c.activity_id.trigger_type in cancels)._set_state(
                "canceled",
                {
                    "open": self.env._("Canceled: the parent message was opened."),
                    "click": self.env._("Canceled: the parent message was clicked."),
                    "reply": self.env._("Canceled: the parent message was replied to."),
                }[event],
            )
            triggers = [
                trigger
                for trigger, (trigger_event, types) in EVENT_TRIGGERS.items()
                if trigger_event == event and channel in types
            ]
        first._schedule_children(triggers=triggers, event_date=now)
        first.participant_id._update_completion()
        self._trigger_queue()
