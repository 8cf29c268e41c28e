from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import T0, MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestQueueIntegrity(MktCampaignCommon):
    """Participants and queue rows have no database foreign keys (enrolment
    speed): deleting a campaign, a step or a participant still takes their
    rows with it, and rows left behind by SQL deletions are cleaned up."""

    def _count(self, table, column, ids):
        self.env.flush_all()
        self.env.cr.execute(f"SELECT count(*) FROM {table} WHERE {column} = ANY(%s)", [list(ids)])
        return self.env.cr.fetchone()[0]

    def _run_two_steps(self):
        """A launched campaign whose first e-mail was sent, its child step
        (after the e-mail, in 2 days) scheduled: 9 queue rows (Dan, who has
        no e-mail address, was rejected and gets no follow-up)."""
        campaign, steps = self._create_campaign(
            [
                ("welcome", {}),
                ("follow_up", {"parent": "welcome", "interval_number": 2, "interval_type": "days"}),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        self.assertEqual(set(self._trace_states(steps["follow_up"]).values()), {"scheduled"})
        return campaign, steps

    def test_enrolled_date(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        self.assertEqual(set(campaign.participant_ids.mapped("enrolled_date")), {T0})

    def test_delete_campaign(self):
        campaign, steps = self._run_two_steps()
        participant_ids = campaign.participant_ids.ids
        self.assertEqual(self._count("mkt_trace", "participant_id", participant_ids), 9)
        campaign.action_stop()
        campaign.unlink()
        self.assertEqual(self._count("mkt_participant", "id", participant_ids), 0)
        self.assertEqual(self._count("mkt_trace", "participant_id", participant_ids), 0)
        self.assertFalse(steps["welcome"].exists())

    def test_delete_step_with_its_children(self):
        """Deleting a step deletes its queue rows and those of the steps under
        it (deleted with it); the participants and other steps stay."""
        campaign, steps = self._run_two_steps()
        other = self._add_step(campaign, name="other")
        campaign.action_stop()
        welcome_ids = steps["welcome"].ids + steps["follow_up"].ids
        steps["welcome"].unlink()
        self.assertFalse(steps["follow_up"].exists())
        self.assertEqual(self._count("mkt_trace", "activity_id", welcome_ids), 0)
        self.assertEqual(len(campaign.participant_ids), 5)
        self.assertEqual(campaign.activity_ids, other)

    def test_delete_participant(self):
        campaign, _steps = self._run_two_steps()
        alice = campaign.participant_ids.filtered(lambda p: p.res_id == self.alice.id)
        self.assertEqual(self._count("mkt_trace", "participant_id", alice.ids), 2)
        alice.unlink()
        self.assertEqual(self._count("mkt_trace", "participant_id", alice.ids), 0)
        self.assertEqual(len(campaign.participant_ids), 4)
        self.assertEqual(campaign.trace_count, 7)

    @mute_logger("odoo.addons.mkt_campaign.models.mkt_trace")
    def test_orphans_cleaned_by_autovacuum(self):
        """Rows of a participant or a step deleted with SQL are deleted by the
        daily autovacuum; the others stay."""
        campaign, steps = self._run_two_steps()
        alice = campaign.participant_ids.filtered(lambda p: p.res_id == self.alice.id)
        self.env.cr.execute("DELETE FROM mkt_participant WHERE id = %s", [alice.id])
        self.env.cr.execute("DELETE FROM mkt_activity WHERE id = %s", [steps["follow_up"].id])
        self.env.invalidate_all()
        self.env["mkt.trace"]._gc_orphan_rows()
        self.assertEqual(self._count("mkt_trace", "participant_id", alice.ids), 0)
        self.assertEqual(self._count("mkt_trace", "activity_id", steps["follow_up"].ids), 0)
        self.assertEqual(self._count("mkt_trace", "activity_id", steps["welcome"].ids), 4)

    def test_relaunch_skips_enrolled_records(self):
        """A second enrolment of a campaign that has participants (stop, then
        launch again) enrols nobody twice."""
        campaign, steps = self._create_campaign([("welcome", {})])
        self._launch(campaign)
        campaign.action_stop()
        self._new_contact()
        self._launch(campaign, T0)
        self.assertEqual(len(campaign.participant_ids), 6)
        self.assertEqual(len(steps["welcome"].trace_ids), 6)
