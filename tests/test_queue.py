import socket
from contextlib import closing
from datetime import timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.fields import Domain
from odoo.tests import TransactionCase, freeze_time, tagged, users
from odoo.tools import mute_logger

from odoo.addons.base.models.ir_mail_server import IrMail_Server

from .common import T0, MktCampaignCommon

H = timedelta(hours=1)
MIN = timedelta(minutes=1)


def closed_loopback_port():
    """A TCP port on 127.0.0.1 that nothing listens on: connecting to it is
    refused at once, like an SMTP server that is down."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install", "-at_install", "mkt_campaign")
class TestQueue(MktCampaignCommon):
    def _scheduled(self, activity, partners):
        return activity.trace_ids.filtered(lambda t: t.res_id in partners.ids)

    @users("mkt_user")
    def test_cancel_selected(self):
        """Canceling selected rows of the queue: those are never run, the
        others are; rows already run are left as they are."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("follow_up", {"parent": "welcome", "interval_number": 1}),
            ]
        )
        self._launch(campaign)
        welcome = steps["welcome"].trace_ids.with_user(self.env.user)
        selected = welcome.filtered(lambda t: t.res_id in (self.alice | self.bob).ids)
        selected.action_cancel()
        self.env.invalidate_all()
        self.assertEqual(set(selected.mapped("state")), {"canceled"})
        self.assertEqual(
            set(selected.mapped("error_message")), {"Canceled by Ursula Campaign User."}
        )
        self.assertEqual(set(selected.participant_id.mapped("state")), {"completed"})

        self._run_queue(T0)
        self.assertEqual(set(selected.mapped("state")), {"canceled"})
        sent_to = self.env["res.partner"].browse(self._new_mails.mapped("res_id"))
        self.assertEqual(sent_to, self.alice_dup | self.carol)
        self.assertEqual(steps["welcome"].canceled_count, 2)
        self.assertFalse(
            steps["follow_up"].trace_ids.filtered(lambda t: t.res_id in (self.alice | self.bob).ids)
        )

        # canceling processed rows does nothing
        processed = welcome.filtered(lambda t: t.state == "processed")
        processed.action_cancel()
        self.assertEqual(set(processed.mapped("state")), {"processed"})

    def test_stop_cancels_pending(self):
        campaign, steps = self._create_campaign([("welcome", {"interval_number": 1})])
        self._launch(campaign)
        campaign.action_stop()
        self.assertEqual(campaign.state, "stopped")
        traces = steps["welcome"].trace_ids
        self.assertEqual(set(traces.mapped("state")), {"canceled"})
        self.assertEqual(set(traces.mapped("error_message")), {"The campaign was stopped."})
        self._run_queue(T0 + 2 * H)
        self.assertEqual(set(traces.mapped("state")), {"canceled"})

    def test_batches(self):
        """The cron works through the due queue in batches within one run."""
        self.env["ir.config_parameter"].set_param("mkt_campaign.batch_size", 2)
        campaign, steps = self._create_campaign([("tag", {"activity_type": "server_action"})])
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(steps["tag"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(set(steps["tag"].trace_ids.mapped("attempts")), {1})

    def test_transient_failure_retry_with_backoff(self):
        """The SMTP server is down: the step is retried later with exponential
        back-off, then failed after the maximal number of attempts; once the
        server is back, Retry sends it."""
        params = self.env["ir.config_parameter"]
        params.set_param("mkt_campaign.max_attempts", 3)
        params.set_param("mkt_campaign.retry_delay_minutes", 5)
        down = self.env["ir.mail_server"].create(
            {
                "name": "Down",
                "smtp_host": "127.0.0.1",
                "smtp_port": closed_loopback_port(),
                "smtp_encryption": "none",
            }
        )
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("id", "=", self.bob.id)]),
        )
        steps["welcome"].mailing_id.mail_server_id = down
        self._launch(campaign)
        trace = steps["welcome"].trace_ids
        Trace = self.env["mkt.trace"]

        def run(when):
            # sending really happens, to the closed loopback port only
            with freeze_time(when), patch.object(IrMail_Server, "_disable_send", lambda *a: False):
                Trace._cron_execute_activities()
            self.env.invalidate_all()

        run(T0)
        self.assertEqual((trace.state, trace.attempts), ("scheduled", 1))
        self.assertEqual(trace.schedule_date, T0 + 5 * MIN)
        self.assertTrue(trace.error_message.startswith("Attempt 1 failed, retrying: "))
        self.assertFalse(trace.mailing_trace_ids, "the failed message is not kept")
        self.assertEqual(steps["welcome"].scheduled_count, 1)

        run(T0 + 4 * MIN)
        self.assertEqual(trace.attempts, 1, "not retried before its time")
        run(T0 + 5 * MIN)
        self.assertEqual((trace.state, trace.attempts), ("scheduled", 2))
        self.assertEqual(trace.schedule_date, T0 + 15 * MIN, "the delay doubles")
        run(T0 + 15 * MIN)
        self.assertEqual((trace.state, trace.attempts), ("failed", 3))
        self.assertIn("(gave up after 3 attempts)", trace.error_message)
        self.assertEqual(steps["welcome"].failed_count, 1)
        self.assertEqual(trace.participant_id.state, "completed")

        # the server is fixed: retry
        steps["welcome"].mailing_id.mail_server_id = False
        with freeze_time(T0 + H):
            trace.with_user(self.user_mkt_user).action_retry()
        self.assertEqual((trace.state, trace.schedule_date), ("scheduled", T0 + H))
        self.assertFalse(trace.error_message)
        self.assertEqual(trace.participant_id.state, "running")
        self._run_queue(T0 + H)
        self.assertEqual(trace.state, "processed")
        self.assertEqual(self._mailing_trace(trace).trace_status, "sent")

    def test_transient_failure_on_manual_confirmation(self):
        """A campaign user confirms a step while the SMTP server is down: the
        step is queued again for a later attempt like in automatic mode."""
        down = self.env["ir.mail_server"].create(
            {
                "name": "Down",
                "smtp_host": "127.0.0.1",
                "smtp_port": closed_loopback_port(),
                "smtp_encryption": "none",
            }
        )
        campaign, steps = self._create_campaign(
            [("welcome", {})],
            domain=repr([("id", "=", self.bob.id)]),
            mode="manual",
        )
        steps["welcome"].mailing_id.mail_server_id = down
        self._launch(campaign)
        trace = steps["welcome"].trace_ids.with_user(self.user_mkt_user)
        with freeze_time(T0), patch.object(IrMail_Server, "_disable_send", lambda *a: False):
            trace.action_confirm()
            self.env["mkt.trace"].sudo()._cron_execute_activities()
        self.env.invalidate_all()
        self.assertEqual((trace.state, trace.attempts), ("scheduled", 1))
        self.assertEqual(trace.schedule_date, T0 + 5 * MIN)
        self.assertTrue(trace.is_confirmed)
        # the confirmation holds for the next attempt: the cron sends it
        steps["welcome"].mailing_id.mail_server_id = False
        self._run_queue(T0 + 5 * MIN)
        self.assertEqual(trace.state, "processed")

    @mute_logger("odoo.addons.mkt_campaign.models.mkt_trace")
    def test_recover_killed_batch(self):
        """Rows left 'processing' by a worker that died (here: claimed without
        a worker lock, past the processing timeout): e-mails whose sending
        had started end failed with the reason (never sent twice); e-mails not
        started yet, server actions and test rows go back to the queue and
        run; rows of a batch still running are left alone."""
        test_campaign, test_steps = self._create_campaign(
            [("welcome", {})], mode="test_realtime", name="Rehearsal"
        )
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("tag", {"activity_type": "server_action"}),
            ]
        )
        self._launch(campaign)
        self._launch(test_campaign)
        with freeze_time(T0):
            claimed = self.env["mkt.trace"]._claim(Domain.TRUE)
        self.assertEqual(len(claimed), 15)
        self.assertEqual(set(claimed.mapped("state")), {"processing"})
        # the worker died 40 minutes ago while sending Alice's and Bob's
        # chunk, except for Carol's e-mail claimed just now by a live batch
        carol_mail = self._scheduled(steps["welcome"], self.carol)
        in_flight = steps["welcome"].trace_ids.filtered(
            lambda t: t.res_id in (self.alice | self.bob).ids
        )
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE mkt_trace SET processing_date = %s WHERE id = ANY(%s)",
            [T0 - timedelta(minutes=40), (claimed - carol_mail).ids],
        )
        self.env.cr.execute(
            "UPDATE mkt_trace SET processing_date = %s WHERE id = %s", [T0 - 5 * MIN, carol_mail.id]
        )
        self.env.cr.execute(
            "UPDATE mkt_trace SET send_started = true WHERE id = ANY(%s)", [in_flight.ids]
        )
        self.env.invalidate_all()

        self._run_queue(T0)
        self.assertEqual(set(in_flight.mapped("state")), {"failed"})
        self.assertIn("Interrupted while sending", in_flight[0].error_message)
        not_started = steps["welcome"].trace_ids - in_flight - carol_mail
        self.assertEqual(
            {t.res_id: t.state for t in not_started},
            {self.alice_dup.id: "processed", self.dan.id: "rejected"},
            "e-mails not started yet are sent by the next run",
        )
        self.assertEqual(set(not_started.mapped("attempts")), {1}, "the lost claim does not count")
        sent_to = set(self._new_mails.mapped("email_to"))
        self.assertFalse(
            sent_to & set((self.alice | self.bob).mapped("email")), "nothing is sent twice"
        )
        self.assertEqual(carol_mail.state, "processing", "a recent batch may still be running")
        self.assertEqual(set(steps["tag"].trace_ids.mapped("state")), {"processed"})
        self.assertEqual(set(steps["tag"].trace_ids.mapped("attempts")), {1})
        self.assertIn(self.other_tag, self.alice.category_id)
        self.assertEqual(set(test_steps["welcome"].trace_ids.mapped("state")), {"processed"})

        # past the timeout, Carol's e-mail is recovered too: not started, sent
        self._run_queue(T0 + 31 * MIN)
        self.assertEqual(carol_mail.state, "processed")


@tagged("post_install", "-at_install", "mkt_campaign")
class TestQueueConcurrency(TransactionCase):
    """Real concurrent transactions. This class has no fixture of its own: the
    test transaction must hold no lock the committed setup would wait for
    (the mail fixture renames the company, which locks its row)."""

    def test_two_workers_never_share_a_step(self):
        """Two cron workers claiming at the same time (two real database
        transactions): each due step is claimed by exactly one of them."""
        registry = self.registry
        with registry.cursor() as cr:
            cr.execute("SET LOCAL lock_timeout = '10s'")
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            partners = env["res.partner"].create(
                [
                    {"name": f"Concurrent {i}", "email": f"concurrent{i}@example.com"}
                    for i in range(20)
                ]
            )
            campaign = env["mkt.campaign"].create(
                {
                    "name": "Concurrent claims",
                    "model_id": env["ir.model"]._get_id("res.partner"),
                    "domain": repr([("id", "in", partners.ids)]),
                }
            )
            env["mkt.activity"].create(
                {
                    "campaign_id": campaign.id,
                    "name": "Tag",
                    "activity_type": "server_action",
                    "trigger_type": "begin",
                }
            )
            campaign.write({"state": "running"})
            campaign._sync_participants()
            cr.execute("SELECT id FROM mkt_trace WHERE campaign_id = %s", [campaign.id])
            all_ids = {row[0] for row in cr.fetchall()}
            # two worker processes must see these rows: committed, and
            # removed by the cleanup below
            cr.commit()  # pylint: disable=invalid-commit
        self.addCleanup(self._delete_committed, campaign.id, partners.ids)
        self.assertEqual(len(all_ids), 20)

        domain = Domain("campaign_id", "=", campaign.id)
        workers = []

        def worker():
            cr = registry.cursor()
            workers.append(cr)
            cr.execute("SET LOCAL lock_timeout = '5s'")
            return api.Environment(cr, SUPERUSER_ID, {})["mkt.trace"]

        try:
            worker_a, worker_b = worker(), worker()
            claimed_a = set(worker_a._claim(domain, limit=12).ids)
            claimed_b = set(worker_b._claim(domain, limit=None).ids)
            self.assertEqual(len(claimed_a), 12, "a worker claims at most its batch size")
            self.assertFalse(claimed_a & claimed_b, "no step is claimed twice")
            self.assertEqual(claimed_a | claimed_b, all_ids, "every due step is claimed")
            worker_a.env.cr.commit()
            # a third worker finds nothing: A's steps are processing, B's are locked
            worker_c = worker()
            self.assertFalse(worker_c._claim(domain, limit=None))
            worker_c.env.cr.execute(
                "SELECT count(*) FROM mkt_trace WHERE campaign_id = %s AND state = 'processing'",
                [campaign.id],
            )
            self.assertEqual(worker_c.env.cr.fetchone()[0], 12)
        finally:
            for cr in workers:
                cr.rollback()
                cr.close()

    def _delete_committed(self, campaign_id, partner_ids):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            campaign = env["mkt.campaign"].browse(campaign_id)
            campaign.write({"state": "stopped"})
            campaign.unlink()
            env["res.partner"].browse(partner_ids).unlink()
