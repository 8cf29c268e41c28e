import re

from werkzeug.urls import url_parse

from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "mkt_campaign")
class TestOptinConfirmation(HttpCase):
    def test_confirmation_link(self):
        """The signed link of a campaign e-mail opens a page whose button
        confirms the contact's opt-in; opening the link alone confirms
        nothing, a forged one changes nothing."""
        partner = self.env["res.partner"].create({"name": "Optin", "email": "optin@example.com"})
        self.assertFalse(partner.mkt_optin_date)
        url = url_parse(partner.mkt_optin_url)
        self.assertEqual(url.path, "/mkt_campaign/optin")

        forged = f"{url.path}?token=forged"
        response = self.url_open(forged)
        self.assertEqual(response.status_code, 403)
        self.assertIn("invalid or has expired", response.text)
        partner.invalidate_recordset()
        self.assertFalse(partner.mkt_optin_date)

        # a mail scanner following the link: a page, no confirmation
        response = self.url_open(f"{url.path}?{url.query}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Confirm my subscription", response.text)
        partner.invalidate_recordset()
        self.assertFalse(partner.mkt_optin_date)

        # the recipient presses the button: a POST with the page's CSRF token
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)
        token = re.search(r'name="token" value="([^"]+)"', response.text).group(1)
        response = self.url_open(url.path, data={"csrf_token": csrf, "token": token})
        self.assertEqual(response.status_code, 200)
        self.assertIn("Your subscription is confirmed", response.text)
        partner.invalidate_recordset()
        self.assertTrue(partner.mkt_optin_date)
        self.assertTrue(partner._mkt_has_confirmed_optin())

    def test_lead_without_own_confirmation_uses_contact(self):
        partner = self.env["res.partner"].create(
            {"name": "Lead contact", "email": "lc@example.com"}
        )
        lead = self.env["crm.lead"].create({"name": "Lead", "partner_id": partner.id})
        other = self.env["crm.lead"].create({"name": "Other lead", "partner_id": partner.id})
        self.assertFalse(lead._mkt_has_confirmed_optin())
        lead.mkt_optin_date = "2026-01-01 10:00:00"
        self.assertTrue(lead._mkt_has_confirmed_optin())
        self.assertFalse(other._mkt_has_confirmed_optin())
        partner.mkt_optin_date = "2026-01-02 10:00:00"
        self.assertTrue(
            other._mkt_has_confirmed_optin(), "the contact's confirmation covers its leads"
        )
