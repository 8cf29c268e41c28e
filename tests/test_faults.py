from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestFaults(MktCampaignCommon):
    @mute_logger("odoo.addons.mkt_campaign.models.mkt_trace")
    def test_step_that_raises_fails_alone(self):
        """A step that cannot run (its filter no longer parses) fails its own
        rows with the reason; the other steps of the same batch run, and
        nothing is left in 'processing'."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("tag", {"activity_type": "server_action"}),
            ]
        )
        self._launch(campaign)
        # written behind the form's back (an upgrade renamed a field, say)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE mkt_activity SET domain = %s WHERE id = %s",
            ["[('no_such_field', '=', 1)]", steps["welcome"].id],
        )
        self.env.invalidate_all()
        self._run_queue(T0)
        welcome = steps["welcome"].trace_ids
        self.assertEqual(set(welcome.mapped("state")), {"failed"})
        self.assertTrue(all("no_such_field" in t.error_message for t in welcome))
        self.assertFalse(self._new_mails)
        self.assertEqual(set(steps["tag"].trace_ids.mapped("state")), {"processed"})
        self.assertFalse(
            self.env["mkt.trace"].search(
                [("campaign_id", "=", campaign.id), ("state", "=", "processing")]
            )
        )

    def test_mode_of_running_campaign(self):
        """A running campaign's mode cannot change (a real run would turn into
        a rehearsal halfway, or the reverse); a stopped one's can."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        with self.assertRaisesRegex(UserError, "mode of a running campaign"):
            campaign.with_user(self.user_mkt_manager).write({"mode": "test"})
        self.assertEqual(campaign.mode, "normal")
        campaign.action_stop()
        campaign.write({"mode": "test"})
        self.assertEqual(campaign.mode, "test")

    def test_rehearsal_never_runs_real_steps(self):
        """The test mode's run executes the rehearsal's own rows only."""
        campaign, steps = self._create_campaign([("welcome", {})], mode="test")
        self._launch(campaign)
        real = steps["welcome"].trace_ids.filtered(lambda t: not t.is_test)
        self.assertFalse(real, "a test launch enrols test participants only")
        # a real row left in the queue (e.g. by an older version) is not touched
        participant = self.env["mkt.participant"].create(
            {
                "campaign_id": campaign.id,
                "res_id": self.alice.id,
                "unique_key": "real",
            }
        )
        self.env.flush_all()
        self.env.cr.execute(
            """INSERT INTO mkt_trace (participant_id, activity_id, campaign_id, res_id,
                                      is_test, state, schedule_date, attempts)
               VALUES (%s, %s, %s, %s, false, 'scheduled', now() at time zone 'utc', 0)
               RETURNING id""",
            [participant.id, steps["welcome"].id, campaign.id, self.alice.id],
        )
        real = self.env["mkt.trace"].browse(self.env.cr.fetchone()[0])
        campaign._run_test_workflow()
        self.assertEqual(real.state, "scheduled")

    def test_parallel_queue_workers(self):
        """Settings > Parallel Queue Workers activates that many queue jobs;
        a launch wakes each active one (each claims its own steps)."""
        Trace = self.env["mkt.trace"]
        crons = Trace._queue_crons()
        self.assertEqual(len(crons), 4)
        self.assertEqual(crons.mapped("active"), [True, False, False, False])
        settings = self.env["res.config.settings"].create({"mkt_queue_workers": 3})
        settings.execute()
        self.assertEqual(crons.mapped("active"), [True, True, True, False])
        self.assertEqual(self.env["res.config.settings"].create({}).mkt_queue_workers, 3)
        self.env["ir.cron.trigger"].sudo().search([("cron_id", "in", crons.ids)]).unlink()
        campaign, _steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        triggered = self.env["ir.cron.trigger"].sudo().search([("cron_id", "in", crons.ids)])
        self.assertEqual(triggered.cron_id, crons[:3])
        with self.assertRaisesRegex(Exception, "1 to 4 parallel workers"):
            self.env["res.config.settings"].create({"mkt_queue_workers": 9})
        self.env["res.config.settings"].create({"mkt_queue_workers": 1}).execute()
        self.assertEqual(crons.mapped("active"), [True, False, False, False])
