from contextlib import contextmanager

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.mkt_campaign.wizard.mkt_campaign_template import TEMPLATES
from odoo.addons.point_of_sale.tests.common import TestPoSCommon

from .common import EMAIL_BODY, T0, MktCampaignCommon
from .test_whatsapp import WhatsAppMixin

# issue 7, attack 2: code in a placeholder, run when the content is rendered
PAYLOAD = "{{ object.env.ref('base.group_system').write({'user_ids': [(4, %d)]}) }}"
QWEB_PAYLOAD = (
    "<p><t t-out=\"object.env.ref('base.group_system').write({'user_ids': [(4, %d)]})\"/></p>"
)


class ContentSecurityMixin:
    @contextmanager
    def assertRefused(self, exception, text):
        """Odoo's assertRaises (with a savepoint: a write refused after the
        fact is rolled back, as in a request) and the message."""
        with self.assertRaises(exception) as caught:
            yield caught
        self.assertIn(text, str(caught.exception))

    @classmethod
    def _restrict_rendering(cls):
        # Odoo's mail test classes turn the restriction off; the setting of a
        # real database (mail's default) is on: users are no template editors
        cls.env["ir.config_parameter"].sudo().set_param("mail.restrict.template.rendering", True)

    def assertNoEscalation(self, user, groups_before):
        """The attacker's groups are the same as before the attempt."""
        self.env.invalidate_all()
        user = user.sudo()
        self.assertEqual(user.group_ids, groups_before, f"{user.name}'s groups are unchanged")
        self.assertFalse(user.has_group("base.group_system"))
        self.assertNotIn(user, self.env.ref("base.group_system").sudo().all_user_ids)


@tagged("post_install", "-at_install", "mkt_campaign", "security")
class TestContentRights(ContentSecurityMixin, WhatsAppMixin, MktCampaignCommon):
    """Content a user writes is written and rendered with that user's rights:
    the template-editor restriction of Email Marketing applies to every step
    content; WhatsApp variables, server actions and engine fields are checked
    against the user too."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._restrict_rendering()
        cls.user_editor = mail_new_test_user(
            cls.env,
            login="mkt_editor",
            name="Edith Template Editor",
            email="edith.editor@example.com",
            groups="base.group_user,mkt_campaign.group_mkt_campaign_manager,"
            "mail.group_mail_template_editor",
        )
        cls.campaign, cls.steps = cls._create_campaign([("welcome", {})])
        cls.campaign.user_id = cls.user_mkt_manager

    def test_restriction_is_on(self):
        self.assertTrue(
            self.env["ir.config_parameter"].sudo().get_param("mail.restrict.template.rendering")
        )
        self.assertFalse(self.user_mkt_manager.has_group("mail.group_mail_template_editor"))

    @users("mkt_manager")
    @mute_logger("odoo.addons.mail.models.mail_render_mixin")
    def test_manager_payload_in_step_content(self):
        """A manager who is no template editor cannot put code in a step's
        subject, body, SMS text or push title / text, on create or write, nor
        in the step's mailing directly."""
        me = self.env.user
        groups = me.sudo().group_ids
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Manager's campaign",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        payload, qweb_payload = PAYLOAD % me.id, QWEB_PAYLOAD % me.id
        attempts = [
            {"activity_type": "email", "subject": payload, "body_html": EMAIL_BODY},
            {"activity_type": "email", "subject": "Hello", "body_html": qweb_payload},
            {"activity_type": "sms", "body_plaintext": payload},
            {"activity_type": "push", "push_title": payload, "push_body": "Hi"},
            {"activity_type": "push", "push_title": "Hi", "push_body": payload},
            {
                "activity_type": "email",
                "name": payload,
                "subject": "Hello",
                "body_html": EMAIL_BODY,
            },
        ]
        for values in attempts:
            with (
                self.subTest(values=values),
                self.assertRefused(AccessError, "Mail Template Editor"),
            ):
                self.env["mkt.activity"].create(
                    {"campaign_id": campaign.id, "name": "Hello", **values}
                )
        self.assertFalse(campaign.activity_ids)

        email = self.env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Hello",
                "subject": "Hello {{ object.name }}",
                "body_html": EMAIL_BODY,
            }
        )
        sms = self.env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Text",
                "activity_type": "sms",
                "body_plaintext": "Hi {{ object.name }}",
            }
        )
        push = self.env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Push",
                "activity_type": "push",
                "push_title": "Hi {{ object.name }}",
                "push_body": "Spring sale",
            }
        )
        for step, values in (
            (email, {"subject": payload}),
            (email, {"body_html": qweb_payload}),
            (sms, {"body_plaintext": payload}),
            (push, {"push_title": payload}),
            (push, {"push_body": payload}),
        ):
            with (
                self.subTest(values=values),
                self.assertRefused(AccessError, "Mail Template Editor"),
            ):
                step.write(values)
        # nor through Email Marketing, on the step's mailing itself
        with self.assertRefused(AccessError, "Mail Template Editor"):
            email.mailing_id.write({"subject": payload})
        self.assertEqual(email.subject, "Hello {{ object.name }}")
        self.assertEqual(push.push_title, "Hi {{ object.name }}")

        # simple placeholders are fine: the campaign launches and sends
        (email | sms | push).unlink()
        self.env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Hello",
                "subject": "Hello {{ object.name }}",
                "body_html": EMAIL_BODY,
            }
        )
        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        self.assertNoEscalation(me, groups)

    def test_template_editor_dynamic_content(self):
        """A template editor's dynamic content (an expression beyond a simple
        field) is accepted, checked at launch and rendered by the queue."""
        campaign = (
            self.env["mkt.campaign"]
            .with_user(self.user_editor)
            .create(
                {
                    "name": "Editor's campaign",
                    "model_id": self.partner_model.id,
                    "domain": self.audience_domain,
                }
            )
        )
        step = (
            self.env["mkt.activity"]
            .with_user(self.user_editor)
            .create(
                {
                    "campaign_id": campaign.id,
                    "name": "Hello",
                    "subject": "Hello {{ object.name.upper() }}",
                    "body_html": '<p>Hi <t t-out="object.name.upper()"/></p>',
                }
            )
        )
        push = (
            self.env["mkt.activity"]
            .with_user(self.user_editor)
            .create(
                {
                    "campaign_id": campaign.id,
                    "name": "Push",
                    "activity_type": "push",
                    "push_title": "Hi {{ object.name.upper() }}",
                    "push_body": "Spring sale",
                }
            )
        )
        self.assertEqual(
            push._render_push(push.push_title, self.alice.ids), {self.alice.id: "Hi ALICE AUDIENCE"}
        )
        push.unlink()
        self._launch(campaign.with_user(self.user_editor))
        self._run_queue(T0)
        self.assertEqual(self._traces(step, self.alice).state, "processed")
        sent = [m for m in self._mails if any("alice@" in to for to in m["email_to"])]
        self.assertEqual(sent[0]["subject"], "Hello ALICE AUDIENCE")

        # the same expression is refused to a manager who is no editor
        with self.assertRefused(AccessError, "Mail Template Editor"):
            step.with_user(self.user_mkt_manager).write(
                {"subject": "Bye {{ object.name.upper() }}"}
            )

    def test_campaign_user_launches_editor_content(self):
        """A campaign user (no template editor) launches a campaign whose
        dynamic content an editor wrote: checked at launch, not refused."""
        Activity = self.env["mkt.activity"].with_user(self.user_editor)
        campaign = (
            self.env["mkt.campaign"]
            .with_user(self.user_editor)
            .create(
                {
                    "name": "Editor's push",
                    "model_id": self.partner_model.id,
                    "domain": self.audience_domain,
                }
            )
        )
        Activity.create(
            {
                "campaign_id": campaign.id,
                "name": "Hello",
                "subject": "Hello {{ object.name.upper() }}",
                "body_html": '<p>Hi <t t-out="object.name.upper()"/></p>',
            }
        )
        Activity.create(
            {
                "campaign_id": campaign.id,
                "name": "Push",
                "activity_type": "push",
                "push_title": "Hi {{ object.name.upper() }}",
                "push_body": "Spring sale",
            }
        )
        self._launch(campaign.with_user(self.user_mkt_user))
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.participant_count, 5)

    def test_campaign_templates_for_non_editor(self):
        """New from Template works for a manager who is no template editor:
        the templates' texts are the module's, not the manager's."""
        # the lead templates' audience is what the responsible may read
        self.user_mkt_manager.group_ids |= self.env.ref("sales_team.group_sale_salesman_all_leads")
        for key, _label in TEMPLATES:
            with self.subTest(template=key):
                form = Form(self.env["mkt.campaign.template"].with_user(self.user_mkt_manager))
                form.template = key
                action = form.save().action_create()
                campaign = self.env["mkt.campaign"].browse(action["res_id"])
                self.assertTrue(campaign.activity_ids)
                campaign._check_launchable()

    # ------------------------------------------------------------------
    # WhatsApp variables
    # ------------------------------------------------------------------

    @users("mkt_manager")
    def test_whatsapp_variable_forbidden_field(self):
        """A WhatsApp variable or phone field only reaches fields its author
        may read: no user secrets, no field reserved to other groups."""
        Template = self.env["mkt.whatsapp.template"]
        base = {"name": "Leak", "template_name": "leak", "body": "Hello {{1}}"}
        # a field of users reserved to a group the manager is not in
        restricted = next(
            fname
            for fname, field in self.env["res.users"]._fields.items()
            if field.groups in ("base.group_system", "base.group_erp_manager")
            and not field.relational
        )
        for path in (
            "create_uid.password",
            "user_id.api_key_ids",
            f"create_uid.{restricted}",
            f"user_ids.{restricted}",
        ):
            with (
                self.subTest(path=path),
                self.assertRefused(ValidationError, "not readable by you"),
            ):
                Template.create(
                    {**base, "variable_ids": [Command.create({"index": 1, "field_path": path})]}
                )
            with self.subTest(phone=path), self.assertRaises(ValidationError):
                Template.create(
                    {
                        **base,
                        "phone_field": path,
                        "variable_ids": [Command.create({"index": 1, "field_path": "name"})],
                    }
                )
        template = Template.create(
            {**base, "variable_ids": [Command.create({"index": 1, "field_path": "name"})]}
        )
        # a variable written on its own is checked as well
        with self.assertRefused(ValidationError, "not readable by you"):
            template.variable_ids.write({"field_path": "create_uid.password"})
        with self.assertRefused(ValidationError, "not readable by you"):
            self.env["mkt.whatsapp.template.variable"].create(
                {"template_id": template.id, "index": 2, "field_path": "user_id.password"}
            )
        self.assertEqual(template.variable_ids.field_path, "name")

    # ------------------------------------------------------------------
    # Server actions
    # ------------------------------------------------------------------

    def test_server_action_group_refused(self):
        """A server action reserved to a group the manager lacks can neither be
        chosen by the manager nor run for a campaign the manager is
        responsible for."""
        admin_tag = self.env["res.partner.category"].create({"name": "Admin only"})
        action = self._tagging_action(admin_tag)
        action.group_ids = self.env.ref("base.group_system")
        groups = self.user_mkt_manager.group_ids
        manager_env = self.env(user=self.user_mkt_manager)
        campaign = manager_env["mkt.campaign"].create(
            {
                "name": "Admin action",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
            }
        )
        refusal = (
            f"Step Tag: {self.user_mkt_manager.name} may not run the server action "
            f"{action.name} (reserved to {self.env.ref('base.group_system').full_name})."
        )
        with self.assertRefused(AccessError, refusal):
            manager_env["mkt.activity"].create(
                {
                    "campaign_id": campaign.id,
                    "name": "Tag",
                    "activity_type": "server_action",
                    "server_action_id": action.id,
                }
            )
        allowed = self._tagging_action()
        step = manager_env["mkt.activity"].create(
            {
                "campaign_id": campaign.id,
                "name": "Tag",
                "activity_type": "server_action",
                "server_action_id": allowed.id,
            }
        )
        with self.assertRefused(AccessError, refusal):
            step.write({"server_action_id": action.id})

        # a step set up by an administrator, on a campaign the manager runs:
        # the action does not run, the steps fail with the reason
        self._add_step(
            campaign, name="Admin tag", activity_type="server_action", server_action_id=action.id
        )
        self._launch(campaign.with_user(self.user_mkt_manager))
        self._run_queue(T0)
        admin_step = campaign.activity_ids.filtered(lambda a: a.name == "Admin tag")
        traces = admin_step.trace_ids
        self.assertEqual(set(traces.mapped("state")), {"failed"})
        self.assertIn("may not run the server action", traces[0].error_message)
        self.assertFalse(self.partners.filtered(lambda p: admin_tag in p.category_id))
        self.assertEqual(
            self.partners.filtered(lambda p: self.other_tag in p.category_id),
            self.partners,
            "the allowed action ran",
        )
        self.assertEqual(set(step.trace_ids.mapped("state")), {"processed"})
        self.assertNoEscalation(self.user_mkt_manager, groups)

    def test_server_action_without_responsible(self):
        """A server-action step of a campaign whose responsible was removed
        while it runs does not run: its steps fail with the reason."""
        tag = self.env["res.partner.category"].create({"name": "Nobody's"})
        campaign = self.env["mkt.campaign"].create(
            {
                "name": "Orphan action",
                "model_id": self.partner_model.id,
                "domain": self.audience_domain,
                "user_id": self.user_mkt_manager.id,
            }
        )
        step = self._add_step(
            campaign,
            name="Tag",
            activity_type="server_action",
            server_action_id=self._tagging_action(tag).id,
        )
        self._launch(campaign.with_user(self.user_mkt_manager))
        campaign.user_id = False
        self._run_queue(T0)
        self.assertEqual(set(step.trace_ids.mapped("state")), {"failed"})
        self.assertEqual(
            step.trace_ids[0].error_message,
            f"Campaign Orphan action has no responsible user: nobody may run its server "
            f"action {step.server_action_id.name}.",
        )
        self.assertFalse(self.partners.filtered(lambda p: tag in p.category_id))

    # ------------------------------------------------------------------
    # Engine fields
    # ------------------------------------------------------------------

    @users("mkt_manager")
    @mute_logger("odoo.addons.base.models.ir_model")
    def test_engine_fields_not_forged(self):
        """readonly fields are not writable over RPC: the campaign's state,
        the queue's and participants' states, a template's status and its
        Actions entry. The engine still writes them."""
        campaign = self.campaign.with_user(self.env.user)
        with self.assertRefused(AccessError, "Launch, Stop"):
            campaign.write({"state": "running"})
        with self.assertRefused(AccessError, "Launch, Stop"):
            self.env["mkt.campaign"].create(
                {
                    "name": "Forged",
                    "model_id": self.partner_model.id,
                    "state": "running",
                }
            )
        self.assertEqual(campaign.state, "draft")
        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        traces = campaign.participant_ids.trace_ids
        self.assertTrue(traces)
        with self.assertRaises(AccessError):
            traces.write({"state": "processed"})
        with self.assertRaises(AccessError):
            campaign.participant_ids.write({"state": "completed"})
        with self.assertRaises(AccessError):
            self.env["mkt.trace"].create(
                {
                    "campaign_id": campaign.id,
                    "activity_id": self.steps["welcome"].id,
                    "participant_id": campaign.participant_ids[0].id,
                    "res_id": self.alice.id,
                    "state": "processed",
                }
            )
        self.assertEqual(set(traces.mapped("state")), {"scheduled"})

        Template = self.env["mkt.whatsapp.template"]
        template = Template.create(
            {
                "name": "Spring",
                "template_name": "spring",
                "body": "Hello {{1}}",
                "variable_ids": [Command.create({"index": 1, "field_path": "name"})],
            }
        )
        code_action = self.env["ir.actions.server"].sudo().search([], limit=1)
        for values in (
            {"status": "approved"},
            {"multi_action_id": code_action.id},
            {"wa_template_id": "123"},
        ):
            with self.subTest(values=values), self.assertRefused(AccessError, "cannot be written"):
                template.write(values)
            with self.subTest(create=values), self.assertRefused(AccessError, "cannot be written"):
                Template.create(
                    {"name": "Forged", "template_name": "forged", "body": "Hi", **values}
                )
        self.assertEqual((template.status, template.multi_action_id), ("draft", code_action[:0]))

        # a step's mailing is linked by the campaign only
        mailing = self.steps["welcome"].mailing_id.with_user(self.env.user)
        with self.assertRefused(AccessError, "set by the campaign"):
            mailing.write({"mkt_activity_id": False})
        with self.assertRefused(AccessError, "set by the campaign"):
            self.env["mailing.mailing"].create(
                {
                    "subject": "Mine",
                    "mailing_model_id": self.partner_model.id,
                    "mkt_activity_id": self.steps["welcome"].id,
                }
            )
        self.assertEqual(mailing.mkt_activity_id, self.steps["welcome"])
        with self.assertRefused(UserError, "Only a template approved"):
            template.action_allow_multi()

    @users("mkt_manager")
    def test_engine_writes_template_status(self):
        """Submitting and refreshing a template (WhatsApp's answers) still work
        for a manager, and changed content still goes back to draft."""
        self._start_whatsapp()
        template = self.env["mkt.whatsapp.template"].create(
            {
                "name": "Spring",
                "template_name": "spring_ok",
                "body": "Hello {{1}}",
                "variable_ids": [Command.create({"index": 1, "field_path": "name"})],
            }
        )
        template.action_submit()
        self.assertEqual(template.status, "pending")
        self.wa.set_template_status("spring_ok", "APPROVED")
        template.action_refresh_status()
        self.assertEqual(template.status, "approved")
        template.action_allow_multi()
        self.assertTrue(template.multi_action_id)
        template.body = "Hi {{1}}"
        self.assertEqual(template.status, "draft")

        # a campaign user (read-only on templates) cannot make the engine write
        as_user = template.with_user(self.user_mkt_user)
        for method in (
            as_user.action_submit,
            as_user.action_refresh_status,
            as_user.action_allow_multi,
            as_user.action_disallow_multi,
        ):
            with self.subTest(method=method.__name__), self.assertRaises(AccessError):
                method()
        self.assertEqual(template.status, "draft")

    @mute_logger("odoo.addons.base.models.ir_rule", "odoo.addons.base.models.ir_model")
    def test_attack_whatsapp_list_action_without_template_rights(self):
        """An employee who may edit contacts but neither read WhatsApp templates
        nor run campaigns runs a template's "WhatsApp: …" entry of the contacts'
        Actions menu: refused, nothing is sent (the template used to be read as
        superuser, which let anyone with the menu entry message the contacts)."""
        self._start_whatsapp()
        template = self._approved_template(template_name="spring_list")
        template.action_allow_multi()
        employee = self.user_internal
        employee.group_ids += self.env.ref("base.group_partner_manager")
        self.assertFalse(self.env["mkt.whatsapp.template"].with_user(employee).has_access("read"))
        campaigns_before = self.env["mkt.campaign"].search([])
        action = template.multi_action_id.with_user(employee).with_context(
            active_model="res.partner", active_ids=self.partners.ids
        )
        with self.assertRaises(AccessError):
            action.run()
        self.assertFalse(self.wa.messages)
        self.assertEqual(self.env["mkt.campaign"].search([]), campaigns_before)

        # a campaign user who may edit contacts sends it (read access to the templates)
        self.user_mkt_user.group_ids += self.env.ref("base.group_partner_manager")
        action.with_user(self.user_mkt_user).run()
        self._run_queue()
        self.assertTrue(self.wa.messages)


@tagged("post_install", "-at_install", "mkt_campaign", "security")
class TestPosContentRights(ContentSecurityMixin, MktCampaignCommon, TestPoSCommon):
    """Attack 2 of issue 7: a cashier types code as the subject of Send
    Marketing Message; and selects orders of another company."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._restrict_rendering()
        cls.pos_clerk = mail_new_test_user(
            cls.env,
            login="pos_clerk",
            name="Paula POS",
            email="paula.pos@example.com",
            groups="base.group_user,point_of_sale.group_pos_user",
        )
        cls.pos_clerk_2 = mail_new_test_user(
            cls.env,
            login="pos_clerk_2",
            name="Pia Other Shop",
            email="pia.pos@example.com",
            groups="base.group_user,point_of_sale.group_pos_user",
            company_id=cls.company_2.id,
            company_ids=[Command.set(cls.company_2.ids)],
        )
        cls.product = cls.env["product.product"].create(
            {
                "name": "Flower pot",
                "type": "consu",
                "available_in_pos": True,
                "taxes_id": [Command.clear()],
            }
        )
        config = cls.basic_config
        config.open_ui()
        cls.session = config.current_session_id
        cls.session.set_opening_control(0, None)
        cls.rita = cls.env["res.partner"].create(
            {"name": "Rita Regular", "email": "rita@example.com", "phone": "+32470111111"}
        )
        cls.rita_order = cls._order(cls.rita)
        cls.walkin_order = cls._order(email="walkin@example.com")

    @classmethod
    def _order(cls, partner=None, email=None):
        order = cls.env["pos.order"].create(
            {
                "session_id": cls.session.id,
                "partner_id": partner.id if partner else False,
                "company_id": cls.env.company.id,
                "amount_total": 10,
                "amount_paid": 10,
                "amount_tax": 0,
                "amount_return": 0,
                "lines": [
                    Command.create(
                        {
                            "product_id": cls.product.id,
                            "qty": 1,
                            "price_unit": 10,
                            "price_subtotal": 10,
                            "price_subtotal_incl": 10,
                            "tax_ids": [],
                        }
                    )
                ],
            }
        )
        if email:
            order.write({"email": email})
        return order

    def _wizard(self, orders, **values):
        form = Form(
            self.env["mkt.pos.send"].with_context(active_model="pos.order", active_ids=orders.ids)
        )
        for fname, value in values.items():
            setattr(form, fname, value)
        return form.save()

    @users("pos_clerk")
    @mute_logger("odoo.addons.mail.models.mail_render_mixin")
    def test_pos_clerk_payload_refused(self):
        """The payload as subject, body or SMS text is refused with a clear
        message; nothing is created; the cashier's groups are unchanged."""
        me = self.env.user
        groups = me.sudo().group_ids
        self.assertFalse(me.has_group("mail.group_mail_template_editor"))
        for values in (
            {"subject": PAYLOAD % me.id, "body_html": "<p>Hi</p>"},
            {"channel": "sms", "body_plaintext": PAYLOAD % me.id},
            {"name": PAYLOAD % me.id, "channel": "sms", "body_plaintext": "Hi"},
        ):
            with self.subTest(values=values):
                wizard = self._wizard(self.rita_order, **{"name": "Attack", **values})
                with self.assertRefused(AccessError, "Mail Template Editor"):
                    wizard.action_send()
                self.assertNoEscalation(me, groups)
        self.assertFalse(
            self.env["mkt.campaign"].sudo().search([("name", "in", ["Attack", PAYLOAD % me.id])])
        )

        # code in the body (kept as a mail template keeps its placeholders):
        # the preview does not run it, sending is refused, nothing runs
        wizard = self._wizard(
            self.rita_order,
            name="Body attack",
            subject="Hi",
            body_html="<p>Hi</p>" + QWEB_PAYLOAD % me.id,
        )
        self.assertIn("does not render", wizard.preview)
        self.assertNoEscalation(me, groups)
        with self.assertRefused(AccessError, "Mail Template Editor"):
            wizard.action_send()
        self._run_queue()
        self.assertNoEscalation(me, groups)
        self.assertFalse(self.env["mkt.campaign"].sudo().search([("name", "=", "Body attack")]))

        # a simple placeholder still works for the cashier, and the walk-in
        # gets a customer in the order's company
        self._wizard(
            self.rita_order | self.walkin_order,
            name="Thanks",
            subject="Thanks {{ object.name }}",
            body_html="<p>See you soon.</p>",
        ).action_send()
        campaign = self.env["mkt.campaign"].sudo().search([("name", "=", "Thanks")])
        self.assertEqual(campaign.state, "running")
        walkin = self.walkin_order.partner_id
        self.assertEqual(
            (walkin.email, walkin.company_id), ("walkin@example.com", self.walkin_order.company_id)
        )
        self._run_queue()
        sent = [m for m in self._mails if any("rita@" in to for to in m["email_to"])]
        self.assertEqual(sent[0]["subject"], "Thanks Rita Regular")
        self.assertTrue([m for m in self._mails if any("walkin@" in to for to in m["email_to"])])
        self.assertNoEscalation(me, groups)

    @users("pos_clerk")
    def test_pos_clerk_sends_editor_template(self):
        """An e-mail template an editor wrote may be sent unchanged by the
        cashier, as Odoo's composer allows; the same text typed is refused."""
        template = (
            self.env["mail.template"]
            .sudo()
            .create(
                {
                    "name": "Shop news",
                    "model_id": self.env["ir.model"]._get_id("res.partner"),
                    "subject": "News for {{ object.name.upper() }}",
                    "body_html": "<p>Spring is in store.</p>",
                }
            )
        )
        form = Form(
            self.env["mkt.pos.send"].with_context(
                active_model="pos.order", active_ids=self.rita_order.ids
            )
        )
        form.name = "Shop news"
        form.template_id = template.with_env(self.env)
        form.save().action_send()
        self._run_queue()
        sent = [m for m in self._mails if any("rita@" in to for to in m["email_to"])]
        self.assertEqual(sent[0]["subject"], "News for RITA REGULAR")
        typed = self._wizard(
            self.rita_order,
            name="Typed",
            subject="News for {{ object.name.upper() }}",
            body_html="<p>Hi</p>",
        )
        with self.assertRefused(AccessError, "Mail Template Editor"):
            typed.action_send()

    @users("pos_clerk_2")
    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_pos_other_company_orders(self):
        """A cashier of another company selects orders they may not read: the
        dialog refuses, creates no contact and changes no order."""
        partners_before = self.env["res.partner"].sudo().search_count([])
        orders = self.rita_order | self.walkin_order
        with self.assertRaises(AccessError):
            Form(
                self.env["mkt.pos.send"].with_context(
                    active_model="pos.order", active_ids=orders.ids
                )
            )
        with self.assertRaises(AccessError):
            self.env["mkt.pos.send"].create(
                {
                    "order_ids": [Command.set(orders.ids)],
                    "name": "Steal",
                    "subject": "Hi",
                    "body_html": "<p>Hi</p>",
                }
            )
        # orders that became unreadable after the dialog opened: refused at Send
        wizard = (
            self.env["mkt.pos.send"]
            .sudo()
            .create(
                {
                    "order_ids": [Command.set(orders.ids)],
                    "name": "Steal",
                    "subject": "Hi",
                    "body_html": "<p>Hi</p>",
                }
            )
            .with_env(self.env)
        )
        self.assertEqual((wizard.order_count, wizard.recipient_count), (0, 0))
        with self.assertRefused(AccessError, "belong to a company you do not work in"):
            wizard.action_send()
        self.assertFalse(self.walkin_order.sudo().partner_id)
        self.assertEqual(self.env["res.partner"].sudo().search_count([]), partners_before)
        self.assertFalse(self.env["mkt.campaign"].sudo().search([("name", "=", "Steal")]))
