from werkzeug.urls import url_parse

from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "mkt_campaign")
class TestOptinConfirmation(HttpCase):
    def test_confirmation_link(self):
        """The signed link of a campaign e-mail confirms the contact's opt-in;
        a forged one changes nothing."""
        partner = self.env["res.partner"].create({"name": "Optin", "email": "optin@example.com"})
        self.assertFalse(partner.mkt_optin_date)
        url = url_parse(partner.mkt_optin_url)
        self.assertEqual(url.path, "/mkt_campaign/optin")

        forged = f"{url.path}?model=res.partner&res_id={partner.id}&token=forged"
        response = self.url_open(forged)
        self.assertEqual(response.status_code, 403)
        partner.invalidate_recordset()
        self.assertFalse(partner.mkt_optin_date)

        response = self.url_open(f"{url.path}?{url.query}")
        self.assertEqual(response.status_code, 200)
        partner.invalidate_recordset()
        self.assertTrue(partner.mkt_optin_date)
        self.assertTrue(partner._mkt_has_confirmed_optin())

    def test_lead_without_own_confirmation_uses_contact(self):
        partner = self.env["res.partner"].create({"name": "Lead contact", "email": "lc@example.com"})
        lead = self.env["crm.lead"].create({"name": "Lead", "partner_id": partner.id})
        other = self.env["crm.lead"].create({"name": "Other lead", "partner_id": partner.id})
        self.assertFalse(lead._mkt_has_confirmed_optin())
        lead.mkt_optin_date = "2026-01-01 10:00:00"
        self.assertTrue(lead._mkt_has_confirmed_optin())
        self.assertFalse(other._mkt_has_confirmed_optin())
        partner.mkt_optin_date = "2026-01-02 10:00:00"
        self.assertTrue(other._mkt_has_confirmed_optin(), "the contact's confirmation covers its leads")
