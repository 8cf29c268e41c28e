from datetime import timedelta

from odoo.exceptions import AccessError
from odoo.tests import freeze_time, tagged, users
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon

D = timedelta(days=1)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPhases(MktCampaignCommon):
    """Phases of a campaign: Preparation → Sending → Follow-up → Analysis in
    its status bar, moved on by hand or by their conditions (hourly cron), with
    actions on entry; the history is the chatter's tracking."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.preparation = cls.env.ref("mkt_campaign.mkt_campaign_phase_preparation")
        cls.sending = cls.env.ref("mkt_campaign.mkt_campaign_phase_sending")
        cls.follow_up = cls.env.ref("mkt_campaign.mkt_campaign_phase_follow_up")
        cls.analysis = cls.env.ref("mkt_campaign.mkt_campaign_phase_analysis")
        # only the default phases: the database may hold others
        cls.env["mkt.campaign.phase"].search(
            [
                (
                    "id",
                    "not in",
                    (cls.preparation | cls.sending | cls.follow_up | cls.analysis).ids,
                ),
            ]
        ).active = False

    def _campaign(self, **values):
        return self._create_campaign(
            [
                ("welcome", {}),
                ("reminder", {"parent": "welcome", "interval_number": 1, "interval_type": "days"}),
            ],
            **values,
        )

    def _cron(self, when):
        with freeze_time(when):
            self.env["mkt.campaign"].sudo()._cron_phase_transitions()
        self.env.invalidate_all()

    def _phase_history(self, campaign):
        """(old phase, new phase) of the campaign's tracked phase changes, oldest first."""
        values = (
            self.env["mail.tracking.value"]
            .sudo()
            .search(
                [
                    ("mail_message_id", "in", campaign.message_ids.ids),
                    ("field_id.name", "=", "phase_id"),
                ],
                order="id",
            )
        )
        return [(v.old_value_char, v.new_value_char) for v in values]

    def test_default_phases_and_kanban_columns(self):
        campaign, _steps = self._campaign()
        self.assertEqual(campaign.phase_id, self.preparation)
        self.assertTrue(campaign.phase_date)
        columns = self.env["mkt.campaign"]._read_group_phase_ids(
            campaign.phase_id, [("id", "=", campaign.id)]
        )
        self.assertEqual(
            columns.ids,
            (self.preparation | self.sending | self.follow_up | self.analysis).ids,
            "every phase is a kanban column, in order, even an empty one",
        )
        self.assertTrue(self.analysis.fold)

    def test_conditions_move_campaign_on(self):
        """launched → first steps sent → N days after the last message."""
        campaign, _steps = self._campaign()
        # the campaign is created in an earlier request than its changes
        self.flush_tracking()
        self._cron(T0)
        self.assertEqual(campaign.phase_id, self.preparation, "a draft campaign stays")
        self._launch(campaign)
        self._cron(T0)
        self.assertEqual(campaign.phase_id, self.sending, "launched: Sending")
        self._run_queue(T0)
        self._cron(T0)
        self.assertEqual(campaign.phase_id, self.follow_up, "all first steps sent: Follow-up")
        # the reminder is still to send: not N days after the last message
        self._cron(T0 + 10 * D)
        self.assertEqual(campaign.phase_id, self.follow_up)
        self._run_queue(T0 + D)
        self._cron(T0 + 7 * D)
        self.assertEqual(campaign.phase_id, self.follow_up, "6 days after the last message")
        self._cron(T0 + 8 * D + timedelta(hours=1))
        self.assertEqual(campaign.phase_id, self.analysis, "7 days after the last message")
        self._cron(T0 + 30 * D)
        self.assertEqual(campaign.phase_id, self.analysis, "the last phase stays")
        self.assertEqual(
            self._phase_history(campaign),
            [
                ("Preparation", "Sending"),
                ("Sending", "Follow-up"),
                ("Follow-up", "Analysis"),
            ],
        )
        notes = campaign.message_ids.mapped("body")
        self.assertTrue(any("all first steps of the workflow are sent" in b for b in notes))

    def test_first_steps_moves_in_one_run(self):
        """A campaign meeting several phases' conditions moves through them in one run."""
        campaign, _steps = self._campaign()
        self._launch(campaign)
        self._run_queue(T0)
        self._cron(T0)
        self.assertEqual(campaign.phase_id, self.follow_up)

    def test_end_date_condition(self):
        self.follow_up.condition = "end_date"
        campaign, _steps = self._campaign(end_date=T0 + 3 * D)
        campaign.phase_id = self.follow_up
        self._launch(campaign)
        self._cron(T0 + 2 * D)
        self.assertEqual(campaign.phase_id, self.follow_up)
        self._cron(T0 + 3 * D)
        self.assertEqual(campaign.phase_id, self.analysis)
        campaign2, _steps = self._campaign(name="No end")
        campaign2.phase_id = self.follow_up
        self._launch(campaign2)
        self._cron(T0 + 300 * D)
        self.assertEqual(campaign2.phase_id, self.follow_up, "no end date: it stays")

    def test_entry_actions(self):
        """Entering a phase runs its server action on the campaign and tells
        the responsible, in the responsible's language."""
        action = self.env["ir.actions.server"].create(
            {
                "name": "Log the analysis",
                "model_id": self.env["ir.model"]._get_id("mkt.campaign"),
                "state": "code",
                "code": "for record in records: record.message_post(body='Analysis started')",
            }
        )
        self.analysis.write({"server_action_id": action.id, "notify_responsible": True})
        campaign, _steps = self._campaign(user_id=self.user_mkt_manager.id)
        campaign.phase_id = self.follow_up
        self.assertFalse(any("Analysis started" in b for b in campaign.message_ids.mapped("body")))
        campaign.phase_id = self.analysis
        bodies = campaign.message_ids.mapped("body")
        self.assertTrue(any("Analysis started" in b for b in bodies))
        notice = campaign.message_ids.filtered(lambda m: "entered the phase" in (m.body or ""))
        self.assertEqual(len(notice), 1)
        self.assertIn("Spring Sale", notice.body)
        self.assertIn("Analysis", notice.body)
        self.assertEqual(notice.partner_ids, self.user_mkt_manager.partner_id)
        # moving within the same phase runs nothing again
        campaign.write({"phase_id": self.analysis.id})
        self.assertEqual(
            len(campaign.message_ids.filtered(lambda m: "entered the phase" in (m.body or ""))), 1
        )

    def test_entry_action_responsible_without_rights(self):
        """An action the responsible may not run does not run when the cron
        moves the campaign in: the chatter says why, the move stays."""
        action = self.env["ir.actions.server"].create(
            {
                "name": "Admin only",
                "model_id": self.env["ir.model"]._get_id("mkt.campaign"),
                "state": "code",
                "code": "for record in records: record.message_post(body='Admin action ran')",
                "group_ids": [(6, 0, self.env.ref("base.group_system").ids)],
            }
        )
        self.sending.server_action_id = action
        campaign, _steps = self._campaign(user_id=self.user_mkt_manager.id)
        self._launch(campaign)
        self._cron(T0)
        self.assertEqual(campaign.phase_id, self.sending)
        bodies = campaign.message_ids.mapped("body")
        self.assertFalse(any("Admin action ran" in b for b in bodies))
        self.assertTrue(any("could not run" in b and "may not run" in b for b in bodies))

    def test_entry_action_without_responsible(self):
        """A campaign whose responsible was removed while it runs runs no
        server action on entering a phase: the chatter says why, as for a
        server-action step (one check, one message)."""
        action = self.env["ir.actions.server"].create(
            {
                "name": "Note it",
                "model_id": self.env["ir.model"]._get_id("mkt.campaign"),
                "state": "code",
                "code": "for record in records: record.message_post(body='Entry action ran')",
            }
        )
        self.sending.server_action_id = action
        campaign, _steps = self._campaign(user_id=self.user_mkt_manager.id)
        self._launch(campaign)
        campaign.user_id = False
        self._cron(T0)
        self.assertEqual(campaign.phase_id, self.sending)
        bodies = campaign.message_ids.mapped("body")
        self.assertFalse(any("Entry action ran" in b for b in bodies))
        self.assertTrue(
            any(
                f"Campaign {campaign.name} has no responsible user: nobody may run its server "
                "action Note it." in b
                for b in bodies
            )
        )

    @users("mkt_manager")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.models")
    def test_manager_cannot_set_forbidden_action(self):
        """A manager cannot put a server action reserved to administrators on a
        phase, nor move a campaign into a phase carrying one."""
        admin = (
            self.env["ir.actions.server"]
            .sudo()
            .create(
                {
                    "name": "Admin only",
                    "model_id": self.env["ir.model"]._get_id("mkt.campaign"),
                    "state": "code",
                    "code": "records.write({'name': 'pwned'})",
                    "group_ids": [(6, 0, self.env.ref("base.group_system").ids)],
                }
            )
        )
        groups = self.env.user.group_ids
        Phase = self.env["mkt.campaign.phase"]
        with self.assertRaises(AccessError) as caught:
            Phase.create({"name": "Escalate", "server_action_id": admin.id})
        self.assertEqual(
            str(caught.exception),
            f"Phase Escalate: {self.env.user.name} may not run the server action Admin only "
            f"(reserved to {self.env.ref('base.group_system').sudo().full_name}).",
        )
        phase = Phase.create({"name": "Harmless", "sequence": 50})
        with self.assertRaises(AccessError):
            phase.write({"server_action_id": admin.id})
        self.analysis.sudo().server_action_id = admin
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Mine",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        with self.assertRaises(AccessError):
            campaign.write({"phase_id": self.analysis.id})
        self.assertEqual(campaign.name, "Mine")
        with self.assertRaises(AccessError):
            campaign.write({"phase_date": T0})
        self.assertEqual(self.env.user.group_ids, groups)

    @users("mkt_user")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_user_cannot_edit_phases(self):
        with self.assertRaises(AccessError):
            self.env["mkt.campaign.phase"].create({"name": "Mine"})
        with self.assertRaises(AccessError):
            self.sending.with_user(self.env.user).write({"condition": "manual"})
