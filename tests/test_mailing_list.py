from odoo.exceptions import AccessError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import MktCampaignCommon


@tagged("post_install", "-at_install", "mkt_campaign")
class TestMailingList(MktCampaignCommon):
    """ "Save as Mailing List": an Email Marketing list from the campaign's
    current audience, one contact per e-mail address."""

    @users("mkt_user")
    def test_save_audience_as_list(self):
        campaign, _steps = self._create_campaign([("welcome", {})])
        campaign = campaign.with_user(self.env.user)
        action = campaign.action_save_mailing_list()
        mailing_list = self.env["mailing.list"].browse(action["res_id"])
        self.assertIn("Spring Sale", mailing_list.name)
        contacts = mailing_list.contact_ids
        # Dan has no address; Alice and Alice Again share one
        self.assertEqual(
            sorted(contacts.mapped("email_normalized")),
            ["alice@example.com", "bob@example.com", "carol@example.com"],
        )
        self.assertEqual(mailing_list.contact_count, 3)
        alice = contacts.filtered(lambda c: c.email_normalized == "alice@example.com")
        self.assertEqual(alice.name, "Alice Audience", "the first record represents the address")
        self.assertFalse(mailing_list.subscription_ids.filtered("opt_out"))
        self.assertIn("saved as the mailing list", campaign.message_ids[0].body)
        # the list is an audience Email Marketing and campaigns can use
        other, _steps = self._create_campaign(
            [("welcome", {})],
            domain="[]",
            mailing_list_ids=[(6, 0, mailing_list.ids)],
        )
        # Alice, Alice Again (the same address), Bob and Carol
        self.assertEqual(other.record_count, 4)

    def test_leads_audience(self):
        leads = self.env["crm.lead"].create(
            [
                {"name": "Lead with e-mail", "email_from": "lead@example.com", "type": "lead"},
                {"name": "Lead of a contact", "partner_id": self.carol.id, "type": "lead"},
                {"name": "Lead without e-mail", "type": "lead"},
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Leads",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "domain": repr([("id", "in", leads.ids)]),
            }
        )
        mailing_list = campaign._save_mailing_list(name="Leads list")
        self.assertEqual(mailing_list.name, "Leads list")
        self.assertEqual(
            sorted(mailing_list.contact_ids.mapped("email_normalized")),
            ["carol@example.com", "lead@example.com"],
        )

    def test_mailing_contacts_audience(self):
        contacts = self.env["mailing.contact"].create(
            [
                {"name": "Mia", "email": "mia@example.com"},
                {"name": "No Mail"},
            ]
        )
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Contacts",
                "model_id": self.env["ir.model"]._get_id("mailing.contact"),
                "domain": repr([("id", "in", contacts.ids)]),
            }
        )
        mailing_list = campaign._save_mailing_list()
        self.assertEqual(mailing_list.contact_ids, contacts[0], "the contact itself, subscribed")

    @users("mkt_user")
    def test_only_what_the_user_may_read(self):
        """The list holds the records both the responsible and the user saving
        it may read: a contact of another company stays out."""
        # created by the administrator (a new company is given to its creator)
        other_company = (
            self.env["res.company"]
            .with_user(self.env.ref("base.user_admin"))
            .sudo()
            .create({"name": "Other Co"})
        )
        self.assertNotIn(other_company, self.env.user.company_ids)
        self.bob.sudo().company_id = other_company
        self.user_mkt_manager.sudo().company_ids |= other_company
        campaign, _steps = self._create_campaign(
            [("welcome", {})],
            user_id=self.user_mkt_manager.id,
            company_id=False,
        )
        mailing_list = campaign.with_user(self.env.user)._save_mailing_list()
        self.assertNotIn(
            "bob@example.com", mailing_list.sudo().contact_ids.mapped("email_normalized")
        )
        self.assertEqual(len(mailing_list.sudo().contact_ids), 2)

    @users("mkt_internal")
    @mute_logger("odoo.addons.base.models.ir_model", "odoo.addons.base.models.ir_rule")
    def test_internal_user_refused(self):
        """As the attacker: an internal user without marketing rights saves a
        campaign's audience: refused, no list is created."""
        campaign, _steps = self._create_campaign([("welcome", {})])
        groups = self.env.user.group_ids
        lists = self.env["mailing.list"].sudo().search_count([])
        with self.assertRaises(AccessError):
            campaign.with_user(self.env.user).action_save_mailing_list()
        self.assertEqual(self.env["mailing.list"].sudo().search_count([]), lists)
        self.assertEqual(self.env.user.group_ids, groups)
