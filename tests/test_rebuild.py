import importlib.util
import os
from datetime import timedelta
from unittest.mock import patch

import psycopg2

from odoo.exceptions import AccessError, UserError
from odoo.fields import Domain
from odoo.tests import freeze_time, tagged, users
from odoo.tools import mute_logger

from ..tools.mail_batch import SmtpBatch
from .common import T0, MktCampaignCommon

D = timedelta(days=1)
MIGRATION = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "migrations", "19.0.1.4.0", "post-migrate.py"
)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestRebuildQueue(MktCampaignCommon):
    """Rebuild Queue: after the workflow of a running campaign changed, the
    pending steps follow it; processed steps are never sent again."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the contacts with an e-mail: every welcome e-mail is processed
        cls.mail_domain = repr([("category_id", "in", cls.tag.ids), ("email", "!=", False)])

    def _campaign(self):
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("reminder", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
            ],
            domain=self.mail_domain,
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"scheduled"})
        return campaign, steps

    def _rebuild(
        self, campaign, requeue_failed=False, when=T0 + timedelta(hours=2), requeue_uncertain=False
    ):
        with freeze_time(when):
            wizard = self.env["mkt.campaign.rebuild"].create(
                {
                    "campaign_id": campaign.id,
                    "requeue_failed": requeue_failed,
                    "requeue_uncertain": requeue_uncertain,
                }
            )
            result = wizard.action_rebuild()
        self.env.invalidate_all()
        return result

    def _interrupt(self, traces, when):
        """The worker that claimed ``traces`` at ``when`` died while sending
        their chunk; the next run recovers them (failed, uncertain)."""
        Trace = self.env["mkt.trace"]
        with freeze_time(when):
            claimed = Trace._claim(Domain("id", "in", traces.ids))
        self.assertEqual(claimed, traces)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE mkt_trace SET send_started = true, processing_date = %s WHERE id = ANY(%s)",
            [when - timedelta(hours=1), traces.ids],
        )
        self.env.invalidate_all()
        with freeze_time(when), mute_logger("odoo.addons.mkt_campaign.models.mkt_trace"):
            Trace._recover_stale()
        self.env.invalidate_all()

    def _sent_to(self):
        return sorted(to for mail in self._mails for to in mail["email_to"])

    def test_changed_delay_replanned_processed_kept(self):
        campaign, steps = self._campaign()
        self.assertFalse(campaign.queue_outdated)
        welcome_done = {t.id: t.processed_date for t in steps["welcome"].trace_ids}
        steps["reminder"].interval_number = 3
        self.assertTrue(campaign.queue_outdated, "Rebuild Queue is offered")
        self._rebuild(campaign)
        self.assertFalse(campaign.queue_outdated)
        for trace in steps["reminder"].trace_ids:
            self.assertEqual(trace.state, "scheduled")
            self.assertEqual(trace.schedule_date, trace.parent_id.processed_date + 3 * D)
        self.assertEqual(
            {t.id: t.processed_date for t in steps["welcome"].trace_ids},
            welcome_done,
            "processed steps are untouched",
        )
        self.assertIn("re-planned", campaign.message_ids[0].body)
        # nothing due at the old date; the welcome e-mail never goes again
        self._run_queue(T0 + 2 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"scheduled"})
        self.assertFalse(self._mails, "nothing is sent twice")
        self._run_queue(T0 + 3 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(len(self._mails), len(steps["reminder"].trace_ids))
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"processed"})
        for trace in steps["welcome"].trace_ids:
            self.assertEqual(len(trace.mailing_trace_ids), 1, "one welcome e-mail each")

    def test_added_and_moved_steps(self):
        campaign, steps = self._campaign()
        participants = campaign.participant_ids
        # a new follow-up of the welcome e-mail: queued under its processed rows
        gift = self._add_step(
            campaign, name="gift", parent=steps["welcome"], interval_number=2, interval_type="days"
        )
        # the reminder now follows the gift: its rows under the welcome are canceled
        steps["reminder"].parent_id = gift
        self._rebuild(campaign)
        self.assertEqual(len(gift.trace_ids), len(participants))
        for trace in gift.trace_ids:
            self.assertEqual(trace.parent_id.activity_id, steps["welcome"])
            self.assertEqual(trace.schedule_date, trace.parent_id.processed_date + 2 * D)
        self.assertEqual(set(steps["reminder"].trace_ids.mapped("state")), {"canceled"})
        self.assertIn("trigger or parent changed", steps["reminder"].trace_ids[0].error_message)
        # the gift runs, then the reminder follows it as the workflow now says
        self._run_queue(T0 + 2 * D)
        self.assertEqual(set(gift.trace_ids.mapped("state")), {"processed"})
        new_reminders = steps["reminder"].trace_ids.filtered(lambda t: t.state == "scheduled")
        self.assertEqual(new_reminders.parent_id, gift.trace_ids)
        # rebuilding again changes nothing: no duplicate, no re-send
        self._rebuild(campaign, when=T0 + 2 * D)
        self.assertEqual(len(gift.trace_ids), len(participants))
        self.assertIn("0 steps canceled, 0 re-planned, 0 added", campaign.message_ids[0].body)

    def test_new_first_step_and_completed_participants(self):
        """A first step added later reaches the participants, including those
        who had completed the workflow (who run again)."""
        campaign, _steps = self._create_campaign([("welcome", {})], domain=self.mail_domain)
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
        survey = self._add_step(campaign, name="survey", interval_number=1, interval_type="days")
        self._rebuild(campaign)
        self.assertEqual(len(survey.trace_ids), len(campaign.participant_ids))
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"running"})
        for trace in survey.trace_ids:
            self.assertEqual(trace.schedule_date, trace.participant_id.enrolled_date + D)

    def test_deleted_step(self):
        """A deleted step's rows go with it; participants left with nothing
        to do complete."""
        campaign, steps = self._campaign()
        steps["reminder"].unlink()
        self.assertTrue(campaign.queue_outdated)
        self._rebuild(campaign)
        self.assertEqual(set(campaign.participant_ids.mapped("state")), {"completed"})
        self.assertEqual(set(steps["welcome"].trace_ids.mapped("state")), {"processed"})

    def test_failed_requeued_on_request(self):
        campaign, steps = self._campaign()
        self._run_queue(T0 + D)
        failed = steps["reminder"].trace_ids[:2]
        failed._set_state("failed", "SMTP down")
        self._rebuild(campaign)
        self.assertEqual(set(failed.mapped("state")), {"failed"}, "not without the option")
        self._rebuild(campaign, requeue_failed=True, when=T0 + 2 * D)
        self.assertEqual(set(failed.mapped("state")), {"scheduled"})
        self.assertEqual(set(failed.mapped("schedule_date")), {T0 + 2 * D})
        others = steps["reminder"].trace_ids - failed
        self.assertEqual(set(others.mapped("state")), {"processed"}, "processed ones stay")

    def test_uncertain_failed_steps_not_requeued(self):
        """A step interrupted while sending may have been delivered: Requeue
        Failed Steps leaves it failed (and says so), the other failed steps
        are requeued as before, processed ones are never touched; only the
        explicit second option requeues it."""
        campaign, steps = self._campaign()
        reminders = steps["reminder"].trace_ids
        interrupted, ordinary = reminders[:2], reminders[2:3]
        self._interrupt(interrupted, T0 + D)
        self.assertEqual(set(interrupted.mapped("state")), {"failed"})
        self.assertEqual(interrupted.mapped("is_uncertain"), [True, True])
        self.assertIn("Interrupted while sending", interrupted[0].error_message)
        ordinary._set_state("failed", "SMTP down")
        self._run_queue(T0 + D)
        processed = reminders - interrupted - ordinary
        self.assertTrue(processed)
        self.assertEqual(set(processed.mapped("state")), {"processed"})
        done = {t.id: t.processed_date for t in processed | steps["welcome"].trace_ids}
        self.assertEqual(
            self.env["mkt.trace"].search(
                [("campaign_id", "=", campaign.id), ("is_uncertain", "=", True)]
            ),
            interrupted,
        )

        wizard = self.env["mkt.campaign.rebuild"].create({"campaign_id": campaign.id})
        self.assertEqual(wizard.uncertain_count, 2, "the wizard shows what it leaves alone")
        uncertain_list = wizard.action_view_uncertain()
        self.assertIn(("campaign_id", "=", campaign.id), uncertain_list["domain"])
        self.assertEqual(uncertain_list["context"], {"search_default_filter_uncertain": 1})

        result = self._rebuild(campaign, requeue_failed=True, when=T0 + 2 * D)
        self.assertEqual(ordinary.state, "scheduled", "an ordinary failure is requeued")
        self.assertEqual(ordinary.schedule_date, T0 + 2 * D)
        self.assertEqual(set(interrupted.mapped("state")), {"failed"}, "not without the option")
        self.assertEqual(interrupted.mapped("is_uncertain"), [True, True])
        self.assertIn("Interrupted while sending", interrupted[0].error_message)
        self.assertIn("1 failed steps requeued", result["params"]["message"])
        self.assertIn("2 uncertain failed steps were left alone", result["params"]["message"])
        self.assertIn("may have been delivered", campaign.message_ids[0].body)

        # the explicit option alone does nothing: it comes with Requeue Failed Steps
        self._rebuild(campaign, requeue_uncertain=True, when=T0 + 2 * D)
        self.assertEqual(set(interrupted.mapped("state")), {"failed"})

        self._rebuild(campaign, requeue_failed=True, requeue_uncertain=True, when=T0 + 3 * D)
        self.assertEqual(set(interrupted.mapped("state")), {"scheduled"})
        self.assertEqual(set(interrupted.mapped("schedule_date")), {T0 + 3 * D})
        self.assertEqual(interrupted.mapped("is_uncertain"), [False, False])
        self.assertIn(
            "2 of them were uncertain (interrupted while sending: they may have been delivered) "
            "and requeued on explicit request",
            campaign.message_ids[0].body,
        )
        self.assertEqual(
            {t.id: t.processed_date for t in processed | steps["welcome"].trace_ids},
            done,
            "processed steps are never touched",
        )
        self.assertEqual(set(processed.mapped("state")), {"processed"})

    def test_retry_clears_uncertain(self):
        """Retry leaves an uncertain step alone and says so; its form's Retry,
        once the user checked it, requeues it: an ordinary step again."""
        _campaign, steps = self._campaign()
        interrupted = steps["reminder"].trace_ids[:1]
        self._interrupt(interrupted, T0 + D)
        self.assertTrue(interrupted.is_uncertain)
        # Retry (also the list's, on a selection) leaves it alone and says so
        answer = interrupted.action_retry()
        self.assertEqual(answer["params"]["type"], "warning")
        self.assertIn("1 of the selected steps", answer["params"]["message"])
        self.assertEqual(interrupted.state, "failed")
        self.assertTrue(interrupted.is_uncertain)
        # the form's Retry (action_retry_uncertain, confirmed), once checked, requeues it
        interrupted.action_retry_uncertain()
        self.assertEqual(interrupted.state, "scheduled")
        self.assertFalse(interrupted.is_uncertain)

    @mute_logger("odoo.addons.mkt_campaign.models.mkt_trace")
    def test_error_after_first_message_uncertain(self):
        """A chunk that raises once its first message left may have been
        partly delivered: failed and uncertain. One that raises before is an
        ordinary failure."""

        def send_then_fail(batch, messages, on_first_send=None, keep_open=False):
            on_first_send()
            raise ConnectionResetError("connection reset by the SMTP server")

        def fail_before_sending(batch, messages, on_first_send=None, keep_open=False):
            raise ConnectionResetError("connection reset by the SMTP server")

        def fast_path(step):
            # the batch-native path (no thread replies): its SMTP batch fails
            self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.fast_email", "1")
            step.mailing_id.reply_to_mode = "new"
            self.assertFalse(step.mailing_id._mkt_fast_email_unsupported())

        campaign, steps = self._campaign()
        fast_path(steps["reminder"])
        with patch.object(SmtpBatch, "send", send_then_fail):
            self._run_queue(T0 + D)
        reminders = steps["reminder"].trace_ids
        self.assertEqual(set(reminders.mapped("state")), {"failed"})
        self.assertEqual(set(reminders.mapped("is_uncertain")), {True})
        self.assertIn("connection reset", reminders[0].error_message)

        campaign2, steps2 = self._campaign()
        fast_path(steps2["reminder"])
        with patch.object(SmtpBatch, "send", fail_before_sending):
            self._run_queue(T0 + D)
        reminders2 = steps2["reminder"].trace_ids
        self.assertEqual(set(reminders2.mapped("state")), {"failed"})
        self.assertEqual(set(reminders2.mapped("is_uncertain")), {False})
        self._rebuild(campaign2, requeue_failed=True, when=T0 + 2 * D)
        self.assertEqual(set(reminders2.mapped("state")), {"scheduled"})

    @mute_logger("odoo.addons.mkt_campaign.models.mkt_trace", "odoo.sql_db")
    def test_conflict_after_first_message_uncertain(self):
        """A database conflict once the first message of a chunk left (which
        the design rules out: a batch writes only its own rows then) is not
        requeued as an ordinary conflict is: the chunk fails, uncertain, and
        Rebuild Queue leaves it alone."""

        def send_then_conflict(batch, messages, on_first_send=None, keep_open=False):
            on_first_send()
            raise psycopg2.extensions.TransactionRollbackError("could not serialize access")

        campaign, steps = self._campaign()
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.fast_email", "1")
        steps["reminder"].mailing_id.reply_to_mode = "new"
        with patch.object(SmtpBatch, "send", send_then_conflict):
            self._run_queue(T0 + D)
        reminders = steps["reminder"].trace_ids
        self.assertEqual(set(reminders.mapped("state")), {"failed"})
        self.assertEqual(set(reminders.mapped("is_uncertain")), {True})
        self.assertIn("The result could not be recorded", reminders[0].error_message)
        self._rebuild(campaign, requeue_failed=True, when=T0 + 2 * D)
        self.assertEqual(set(reminders.mapped("state")), {"failed"}, "left alone")

    def test_migration_marks_earlier_interrupted_steps(self):
        """Rows failed by an interruption before 19.0.1.4.0 are recognised by
        their reason (on a started sending) and marked uncertain; other
        failures are not."""
        _campaign, steps = self._campaign()
        reminders = steps["reminder"].trace_ids
        interrupted, conflict, ordinary, not_started = reminders[:4]
        self._interrupt(interrupted | conflict | ordinary, T0 + D)
        interrupted_reason = interrupted.error_message
        self.env.flush_all()
        # as an earlier version left them: no mark
        self.env.cr.execute(
            """UPDATE mkt_trace SET is_uncertain = NULL,
                      error_message = CASE id WHEN %s THEN %s WHEN %s THEN %s ELSE %s END
                WHERE id = ANY(%s)""",
            [
                conflict.id,
                "The result could not be recorded (could not serialize access). It is not "
                "retried automatically so that nobody receives the message twice; use Retry "
                "once you checked it was not delivered.",
                ordinary.id,
                "The step could not run: 100% of_ the quota",
                interrupted_reason,
                (interrupted | conflict | ordinary).ids,
            ],
        )
        self.env.cr.execute(
            "UPDATE mkt_trace SET state = 'failed', error_message = %s WHERE id = %s",
            [interrupted_reason, not_started.id],
        )
        spec = importlib.util.spec_from_file_location("mkt_post_migrate_19_0_1_4_0", MIGRATION)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(self.env.cr, "19.0.1.3.0")
        self.env.invalidate_all()
        self.assertTrue(interrupted.is_uncertain)
        self.assertTrue(conflict.is_uncertain)
        self.assertFalse(ordinary.is_uncertain)
        self.assertFalse(not_started.is_uncertain, "its sending had not started")

    @users("mkt_user")
    def test_campaign_user_rebuilds(self):
        """Campaign users run campaigns: they rebuild the queue too (the
        manager changed the workflow), and the chatter names them."""
        campaign, steps = self._campaign()
        steps["reminder"].interval_number = 2
        campaign = campaign.with_user(self.env.user)
        self.assertTrue(campaign.queue_outdated)
        wizard = self.env["mkt.campaign.rebuild"].create({"campaign_id": campaign.id})
        self.assertEqual(wizard.uncertain_count, 0)
        action = campaign.action_rebuild_queue()
        self.assertEqual(action["res_model"], "mkt.campaign.rebuild")
        self._rebuild(campaign)
        self.assertFalse(campaign.queue_outdated)
        for trace in steps["reminder"].sudo().trace_ids:
            self.assertEqual(trace.schedule_date, trace.parent_id.processed_date + 2 * D)
        note = campaign.sudo().message_ids[0]
        self.assertIn("Queue rebuilt by Ursula Campaign User", note.body)
        self.assertEqual(note.author_id, self.env.user.partner_id)

    def test_only_running_campaign(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        with self.assertRaises(UserError):
            campaign._rebuild_queue()

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user_cannot_rebuild(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.sudo().action_start()
        with self.assertRaises(AccessError):
            campaign.with_user(self.env.user)._rebuild_queue()
        with self.assertRaises(AccessError):
            campaign.with_user(self.env.user).write({"queue_outdated": False})
