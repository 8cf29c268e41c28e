from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestValidation(MktCampaignCommon):
    def _assert_not_launched(self, campaign, error, message):
        with self.assertRaisesRegex(error, message):
            campaign.action_start()
        self.assertEqual(campaign.state, "draft")
        self.assertFalse(campaign.participant_ids)

    # ------------------------------------------------------------------
    # Filters and delays
    # ------------------------------------------------------------------

    def test_filter_does_not_parse(self):
        with self.assertRaisesRegex(
            ValidationError,
            r"The filter of campaign Broken is invalid(.|\n)*Filter: \[\('name', '=',",
        ):
            self._create_campaign(name="Broken", domain="[('name', '=',")

    def test_filter_unknown_field(self):
        with self.assertRaisesRegex(
            ValidationError, "The filter of campaign Broken is invalid.*no_such_field"
        ):
            self._create_campaign(name="Broken", domain="[('no_such_field', '=', 1)]")

    def test_step_filter_invalid(self):
        campaign, _steps = self._create_campaign()
        with self.assertRaisesRegex(
            ValidationError, "The filter of step Follow-up is invalid.*nonexistent"
        ):
            self._add_step(campaign, "Follow-up", domain="[('nonexistent', '!=', False)]")

    def test_filter_with_context_values(self):
        """Filters may use the usual evaluation context (dates, user)."""
        campaign, _steps = self._create_campaign(
            domain="[('create_date', '>=',"
            " (context_today() - relativedelta(days=7)).strftime('%Y-%m-%d')),"
            " ('user_id', '!=', uid)]",
        )
        self.assertTrue(campaign._get_domain())

    def test_negative_delay(self):
        campaign, _steps = self._create_campaign()
        with self.assertRaisesRegex(
            ValidationError, "The delay of step Too early cannot be negative"
        ):
            self._add_step(campaign, "Too early", interval_number=-1)

    # ------------------------------------------------------------------
    # Content
    # ------------------------------------------------------------------

    def test_email_without_content(self):
        campaign, steps = self._create_campaign([("welcome", {"subject": False})])
        self._assert_not_launched(
            campaign, ValidationError, "The e-mail of step welcome has no subject"
        )
        steps["welcome"].write({"subject": "Hello", "body_html": "<p><br></p>"})
        self._assert_not_launched(
            campaign, ValidationError, "The e-mail of step welcome has no content"
        )
        steps["welcome"].body_html = "<p>Hello</p>"
        campaign.action_start()
        self.assertEqual(campaign.state, "running")

    def test_sms_without_text(self):
        campaign, _steps = self._create_campaign(
            [("sms", {"activity_type": "sms", "body_plaintext": "  "})]
        )
        self._assert_not_launched(campaign, ValidationError, "The SMS of step sms has no text")

    @mute_logger("odoo.addons.mail.models.mail_render_mixin")
    def test_placeholder_does_not_render(self):
        campaign, steps = self._create_campaign(
            [("welcome", {"subject": "Hi {{ object.nonexistent_field }}"})]
        )
        self._assert_not_launched(
            campaign, ValidationError, "The Subject of step welcome does not render"
        )
        steps["welcome"].write(
            {
                "subject": "Hi {{ object.name }}",
                "body_html": '<p>Hi <t t-out="object.nonexistent_field"/></p>',
            }
        )
        self._assert_not_launched(campaign, ValidationError, "of step welcome does not render")

    # ------------------------------------------------------------------
    # Workflow structure
    # ------------------------------------------------------------------

    def test_email_event_under_non_email_parent(self):
        campaign, steps = self._create_campaign([("tag", {"activity_type": "server_action"})])
        with self.assertRaisesRegex(
            ValidationError,
            "Step Thanks is triggered by 'Parent e-mail opened', "
            "but its parent tag is not a e-mail step",
        ):
            self._add_step(campaign, "Thanks", parent=steps["tag"], trigger_type="email_open")
        email = self._add_step(campaign, "Welcome")
        with self.assertRaisesRegex(ValidationError, "is not a SMS step"):
            self._add_step(campaign, "Clicked", parent=email, trigger_type="sms_click")
        # any parent is fine for 'after the parent step'
        self._add_step(campaign, "Then", parent=steps["tag"], trigger_type="after_parent")

    def test_trigger_needs_parent(self):
        campaign, steps = self._create_campaign([("welcome", {})])
        with self.assertRaisesRegex(ValidationError, "choose its parent step"):
            self._add_step(campaign, "Orphan", trigger_type="email_not_open")
        with self.assertRaisesRegex(ValidationError, "cannot have a parent"):
            self._add_step(campaign, "Start", parent=steps["welcome"], trigger_type="begin")
        other, other_steps = self._create_campaign([("elsewhere", {})], name="Other")
        with self.assertRaisesRegex(ValidationError, "belongs to another campaign"):
            self._add_step(campaign, "Crossed", parent=other_steps["elsewhere"])

    def test_no_loop(self):
        campaign, steps = self._create_campaign(
            [
                ("a", {"activity_type": "server_action"}),
                ("b", {"activity_type": "server_action", "parent": "a"}),
            ]
        )
        # the parent store refuses it first ("Recursion Detected"), or our check
        with self.assertRaisesRegex(UserError, "Recursion Detected|cannot form a loop"):
            steps["a"].write({"trigger_type": "after_parent", "parent_id": steps["b"].id})

    def test_server_action_required(self):
        campaign, steps = self._create_campaign(
            [("tag", {"activity_type": "server_action", "server_action_id": False})]
        )
        self._assert_not_launched(
            campaign, ValidationError, "Step tag runs a server action: choose which one"
        )
        steps["tag"].server_action_id = self.env["ir.actions.server"].create(
            {
                "name": "Lead action",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "pass",
            }
        )
        self._assert_not_launched(campaign, ValidationError, "applies to Lead")

    # ------------------------------------------------------------------
    # Campaign life cycle
    # ------------------------------------------------------------------

    def test_launch_without_activities(self):
        campaign, _steps = self._create_campaign()
        self._assert_not_launched(
            campaign, UserError, "Campaign Spring Sale has no activity: add at least one step"
        )

    def test_launch_twice_delete_running(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign.action_start()
        with self.assertRaisesRegex(UserError, "Campaign Spring Sale is already running"):
            campaign.action_start()
        with self.assertRaisesRegex(UserError, "Stop a running campaign before deleting it"):
            campaign.unlink()
        with self.assertRaisesRegex(UserError, "Stop the campaign before resetting it to draft"):
            campaign.action_draft()
        with self.assertRaisesRegex(UserError, "already has participants cannot change"):
            campaign.model_id = self.env["ir.model"]._get("crm.lead")
        campaign.action_stop()
        campaign.unlink()

    def test_unique_field_of_other_model(self):
        with self.assertRaisesRegex(ValidationError, "does not belong to its target"):
            self._create_campaign(
                unique_field_id=self.env["ir.model.fields"]._get("crm.lead", "email_from").id
            )

    def test_step_mailing_not_launched_from_email_marketing(self):
        """The mailing of a step is sent by the campaign, recipient by
        recipient: Email Marketing refuses to send it to its whole audience."""
        campaign, steps = self._create_campaign(
            [("welcome", {}), ("sms", {"activity_type": "sms"})]
        )
        for key in ("welcome", "sms"):
            mailing = steps[key].mailing_id
            self.assertEqual(mailing.mkt_activity_id, steps[key])
            for method in ("action_launch", "action_put_in_queue"):
                with (
                    self.subTest(step=key, method=method),
                    self.assertRaisesRegex(
                        UserError,
                        f"is the content of step {key} of campaign Spring Sale: "
                        "the campaign sends it",
                    ),
                ):
                    getattr(mailing, method)()
            self.assertEqual(mailing.state, "draft")
        # an ordinary mailing is not concerned
        mailing = self.env["mailing.mailing"].create(
            {
                "subject": "Newsletter",
                "body_html": "<p>News</p>",
                "mailing_model_id": self.partner_model.id,
                "mailing_domain": self.audience_domain,
            }
        )
        mailing.action_put_in_queue()
        self.assertEqual(mailing.state, "in_queue")
