"""Uninstall: what the addon creates at run time outside its own tables goes
with it (the uninstall hook), and the migration registers what earlier
versions created. The whole install -> uninstall -> reinstall and upgrade
path runs for real in scripts/lifecycle."""

import importlib.util
import os

from odoo.tests import Form, tagged, users

from odoo.addons.mkt_campaign import uninstall_hook

from .common import MktCampaignCommon

MIGRATION = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "migrations", "19.0.1.2.0", "post-migrate.py"
)


@tagged("post_install", "-at_install", "mkt_campaign")
class TestLifecycle(MktCampaignCommon):
    def _from_template(self, key, user):
        form = Form(self.env["mkt.campaign.template"].with_user(user))
        form.template = key
        action = form.save().action_create()
        return self.env["mkt.campaign"].browse(action["res_id"])

    def _approved_template(self):
        template = self.env["mkt.whatsapp.template"].create(
            {
                "name": "Spring",
                "template_name": "spring_lifecycle",
                "language": "en_US",
                "model_id": self.partner_model.id,
                "phone_field": "phone",
                "body": "Hello {{1}}",
                "variable_ids": [(0, 0, {"index": 1, "field_path": "name", "sample": "Alice"})],
            }
        )
        # WhatsApp's approval, written by the engine (superuser)
        template.sudo().write({"status": "approved"})
        template.action_allow_multi()
        return template

    @users("mkt_manager")
    def test_template_actions_belong_to_the_module(self):
        """A manager creating a campaign from a template: its server action is
        registered under the module (so uninstalling removes it), and the
        manager gains nothing by it."""
        groups = self.env.user.group_ids
        campaign = self._from_template("tag_hot_contacts", self.env.user)
        action = campaign.sudo().activity_ids.server_action_id
        self.assertEqual(len(action), 1)
        xmlid = (
            self.env["ir.model.data"]
            .sudo()
            .search(
                [
                    ("model", "=", "ir.actions.server"),
                    ("res_id", "=", action.id),
                ]
            )
        )
        self.assertEqual(
            (xmlid.module, xmlid.name, xmlid.noupdate),
            ("mkt_campaign", f"campaign_template_action_{action.id}", True),
        )
        self.assertEqual(self.env.user.group_ids, groups)

    def test_uninstall_hook(self):
        """The hook deletes the WhatsApp list actions, the template campaigns'
        actions and every mkt_campaign.* setting; it leaves other server
        actions (a user's own, used by a step) and other settings alone."""
        template = self._approved_template()
        multi_action = template.multi_action_id
        self.assertTrue(multi_action.binding_model_id)
        campaign = self._from_template("tag_hot_contacts", self.user_mkt_manager)
        template_action = campaign.activity_ids.server_action_id
        own_action = self.env["ir.actions.server"].create(
            {
                "name": "My own action",
                "model_id": self.partner_model.id,
                "state": "code",
                "code": "records.write({'comment': 'hello'})",
            }
        )
        own_step = self.env["mkt.activity"].create(
            {
                "name": "Own",
                "campaign_id": campaign.id,
                "activity_type": "server_action",
                "trigger_type": "begin",
                "server_action_id": own_action.id,
            }
        )
        params = self.env["ir.config_parameter"]
        params.set_param("mkt_campaign.cap_day", "3")
        params.set_param("mkt_campaign.whatsapp_token", "secret")
        params.set_param("mktXcampaign.other", "kept")

        uninstall_hook(self.env)
        self.env.invalidate_all()

        self.assertFalse(multi_action.exists(), "the Actions menu entry is removed")
        self.assertFalse(template_action.exists(), "the template's action is removed")
        self.assertFalse(campaign.activity_ids.filtered(lambda a: a != own_step).server_action_id)
        self.assertEqual(own_step.server_action_id, own_action, "a user's own action stays")
        self.assertFalse(params.search([]).filtered(lambda p: p.key.startswith("mkt_campaign.")))
        self.assertEqual(params.get_param("mktXcampaign.other"), "kept")

    def test_migration_registers_earlier_template_actions(self):
        """Template actions created before 19.0.1.2.0 had no XML id: the
        migration registers those whose code is exactly a template's, not a
        user's own actions."""
        campaign = self._from_template("prioritize_hot_leads", self.user_mkt_manager)
        template_action = campaign.activity_ids.server_action_id
        # as an earlier version left it: no XML id
        self.env["ir.model.data"].search(
            [
                ("model", "=", "ir.actions.server"),
                ("res_id", "=", template_action.id),
            ]
        ).unlink()
        own_action = self.env["ir.actions.server"].create(
            {
                "name": "Own",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "records.write({'priority': '2'})",
            }
        )
        self.env["mkt.activity"].create(
            {
                "name": "Own",
                "campaign_id": campaign.id,
                "activity_type": "server_action",
                "trigger_type": "begin",
                "server_action_id": own_action.id,
            }
        )
        self.env.flush_all()
        spec = importlib.util.spec_from_file_location("mkt_post_migrate_19_0_1_2_0", MIGRATION)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(self.env.cr, "19.0.1.1.0")

        owned = self.env["ir.model.data"].search(
            [
                ("module", "=", "mkt_campaign"),
                ("model", "=", "ir.actions.server"),
                ("name", "=like", "campaign_template_action_%"),
            ]
        )
        self.assertIn(template_action.id, owned.mapped("res_id"))
        self.assertNotIn(own_action.id, owned.mapped("res_id"))
