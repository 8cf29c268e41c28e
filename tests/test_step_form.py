from odoo.tests import Form, tagged, users

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestStepForm(MktCampaignCommon):
    @users("mkt_manager")
    def test_sms_step_saved_from_the_form(self):
        """An SMS step is written in the step form and saved as is: the form's
        hidden e-mail fields (an empty subject) never reach its mailing."""
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "SMS only",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        form = Form(self.env["mkt.activity"].with_context(default_campaign_id=campaign.id))
        form.name = "Text them"
        form.activity_type = "sms"
        form.body_plaintext = "Hello {{ object.name }}, 20% off today"
        step = form.save()
        self.assertEqual(step.mailing_id.mailing_type, "sms")
        self.assertEqual(step.body_plaintext, "Hello {{ object.name }}, 20% off today")
        self.assertTrue(step.mailing_id.subject, "the mailing keeps its default subject")
        # edited again in the form
        with Form(step) as form:
            form.body_plaintext = "Hi {{ object.name }}"
        self.assertEqual(step.mailing_id.body_plaintext, "Hi {{ object.name }}")
        campaign.action_start()
        self.assertEqual(campaign.state, "running")

    def test_utm_source_is_campaign_and_step(self):
        """The tracked links of a step carry the campaign and step names as
        UTM source, never the subject's raw placeholders."""
        campaign, steps = self._create_campaign([("welcome", {})])
        step = steps["welcome"]
        step.subject = "Welcome {{ object.name }}, our spring offers"
        self.assertEqual(step.mailing_id.source_id.name, "Spring Sale - welcome")
        campaign.name = "Summer Sale"
        self.assertEqual(step.mailing_id.source_id.name, "Summer Sale - welcome")
        self.assertNotIn("{{", step.mailing_id.source_id.name)
