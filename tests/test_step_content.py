from odoo.tests import Form, tagged

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestStepContent(MktCampaignCommon):
    """An e-mail step starts from a template of the target and previews
    itself on the first record of the audience."""

    def test_template_copied_and_previewed(self):
        campaign, _steps = self._create_campaign()
        template = self.env["mail.template"].create(
            {
                "name": "Partner greeting",
                "model_id": self.partner_model.id,
                "subject": "Hi {{ object.name }}",
                "body_html": '<p>Dear <t t-out="object.name"/>, welcome.</p>',
            }
        )
        form = Form(self.env["mkt.activity"].with_context(default_campaign_id=campaign.id))
        form.name = "Greeting"
        form.mail_template_id = template
        self.assertEqual(form.subject, "Hi {{ object.name }}")
        self.assertIn('t-out="object.name"', form.body_html)
        step = form.save()
        self.assertEqual(step.mailing_id.subject, "Hi {{ object.name }}")
        first = self.env["res.partner"].search(campaign._get_audience_domain(), limit=1)
        self.assertIn(f"Dear {first.name}, welcome.", step.preview_html)
        self.assertIn(f"Hi {first.name}", step.preview_html)
        self.assertNotIn("t-out", step.preview_html)
