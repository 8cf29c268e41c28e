from odoo import Command
from odoo.exceptions import RedirectWarning, UserError
from odoo.tests import Form, tagged

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.point_of_sale.tests.common import TestPoSCommon

from .common import MktCampaignCommon
from .test_whatsapp import WhatsAppMixin


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPosSend(WhatsAppMixin, MktCampaignCommon, TestPoSCommon):
    """POS staff select orders in Point of Sale > Orders and send their
    customers a marketing e-mail or SMS: once per customer, customers created
    from the contact collected with the receipt, sent by the campaign queue."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pos_clerk = mail_new_test_user(
            cls.env,
            login="pos_clerk",
            name="Paula POS",
            email="paula.pos@example.com",
            groups="base.group_user,point_of_sale.group_pos_user",
        )
        cls.env.user.group_ids |= cls.env.ref("mkt_campaign.group_mkt_campaign_manager")
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

        Partner = cls.env["res.partner"]
        cls.rita = Partner.create(
            {"name": "Rita Regular", "email": "rita@example.com", "phone": "+32470111111"}
        )
        cls.known = Partner.create({"name": "Kim Known", "email": "kim@example.com"})
        # Rita twice; a walk-in who left an e-mail for the receipt; a walk-in with
        # Kim's e-mail (Kim is found, not duplicated); a walk-in who left nothing;
        # a walk-in who left a mobile number
        cls.orders = (
            cls._order(cls.rita)
            | cls._order(cls.rita)
            | cls._order(email="walkin@example.com")
            | cls._order(email="KIM@example.com")
            | cls._order()
            | cls._order(mobile="+32 470 22 22 22")
        )
        cls.rita_1, cls.rita_2, cls.walkin, cls.kim_order, cls.anonymous, cls.mobile_only = (
            cls.orders
        )

    @classmethod
    def _order(cls, partner=None, email=None, mobile=None):
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
        if email or mobile:
            order.write({"email": email or False, "mobile": mobile or False})
        return order

    def _wizard(self, orders, user=None, **values):
        env = self.env(user=user) if user else self.env
        form = Form(
            env["mkt.pos.send"].with_context(active_model="pos.order", active_ids=orders.ids)
        )
        for fname, value in values.items():
            setattr(form, fname, value)
        return form

    def test_email_to_customers_of_selected_orders(self):
        form = self._wizard(
            self.orders,
            name="Spring in store",
            subject="Hello {{ object.name }}",
            body_html='<p>Hi <t t-out="object.name"/>, spring is in store.</p>',
        )
        # Rita, Kim, the walk-in to create; the anonymous and the mobile-only
        # orders have no e-mail
        self.assertEqual((form.order_count, form.recipient_count, form.missing_count), (6, 3, 2))
        wizard = form.save()
        action = wizard.action_send()
        self.assertIn("3 customers enrolled", action["params"]["message"])
        self.assertIn("2 orders have no contact", action["params"]["message"])

        walkin = self.env["res.partner"].search([("email_normalized", "=", "walkin@example.com")])
        self.assertEqual(len(walkin), 1, "a customer is created for the walk-in's e-mail")
        self.assertEqual(self.walkin.partner_id, walkin, "the order gets its customer")
        self.assertEqual(self.kim_order.partner_id, self.known, "Kim is found, not duplicated")
        self.assertEqual(
            self.env["res.partner"].search_count([("email_normalized", "=", "kim@example.com")]), 1
        )

        campaign = self.env["mkt.campaign"].search([("name", "=", "Spring in store")])
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.user_id, self.env.user)
        self.assertEqual(
            sorted(campaign.participant_ids.mapped("res_id")),
            sorted((self.rita | self.known | walkin).ids),
        )
        self._run_queue()
        sent = sorted(to for mail in self._mails for to in mail["email_to"])
        self.assertEqual(len(sent), 3, "Rita is messaged once for her two orders")
        self.assertTrue(any("walkin@example.com" in to for to in sent))
        rita_mail = [m for m in self._mails if any("rita@" in to for to in m["email_to"])][0]
        self.assertEqual(rita_mail["subject"], "Hello Rita Regular")
        self.assertEqual(campaign.sent_count, 3)

    def test_sms_to_customers_of_selected_orders(self):
        wizard = self._wizard(
            self.rita_1 | self.mobile_only | self.walkin,
            channel="sms",
            name="SMS promo",
            body_plaintext="{{ object.name }}: -20% this weekend",
        ).save()
        self.assertEqual((wizard.recipient_count, wizard.missing_count), (2, 1))
        wizard.action_send()
        mobile = self.mobile_only.partner_id
        self.assertTrue(mobile, "a customer is created for the mobile number")
        self.assertEqual(mobile.phone_sanitized, "+32470222222")
        self._run_queue()
        campaign = self.env["mkt.campaign"].search([("name", "=", "SMS promo")])
        self.assertEqual(campaign.sent_sms_count, 2)
        sms = (
            self.env["sms.sms"].sudo().search([("number", "in", ["+32470111111", "+32470222222"])])
        )
        self.assertEqual(len(sms), 2)

    def test_whatsapp_to_customers_of_selected_orders(self):
        """With an approved template for contacts, the customers' numbers (and
        the one collected on a walk-in's order) get the WhatsApp message."""
        self._start_whatsapp()
        template = self._approved_template()
        wizard = self._wizard(
            self.rita_1 | self.rita_2 | self.mobile_only | self.walkin,
            channel="whatsapp",
            name="WhatsApp promo",
            whatsapp_template_id=template,
        ).save()
        self.assertEqual((wizard.recipient_count, wizard.missing_count), (2, 1))
        wizard.action_send()
        self._run_queue()
        self.assertEqual(
            sorted(m["to"] for m in self.wa.messages), ["+32470111111", "+32470222222"]
        )
        rita = [m for m in self.wa.messages if m["to"] == "+32470111111"][0]
        self.assertEqual(rita["template"]["components"][0]["parameters"][0]["text"], "Rita Regular")

    def test_whatsapp_allow_multi_on_pos_orders(self):
        """A WhatsApp template for POS orders, approved, 'Allow Multi': its entry
        in the order list's Actions menu sends it to the selected orders'
        customers, once per customer."""
        self._start_whatsapp()
        template = self._approved_template(
            name="Order follow-up",
            template_name="order_follow_up",
            model_id=self.env["ir.model"]._get_id("pos.order"),
            phone_field="partner_id.phone",
            variable_ids=[(0, 0, {"index": 1, "field_path": "partner_id.name"})],
        )
        self.assertEqual(
            template.action_allow_multi(),
            {"type": "ir.actions.client", "tag": "reload"},
            "the client reloads: the entry is in the Actions menu at once",
        )
        action = template.multi_action_id
        self.assertEqual(
            (action.binding_model_id.model, action.name), ("pos.order", "WhatsApp: Order follow-up")
        )
        result = (
            action.with_user(self.pos_clerk)
            .with_context(
                active_model="pos.order",
                active_ids=(self.rita_1 | self.rita_2 | self.walkin).ids,
            )
            .run()
        )
        self.assertEqual(result["params"]["type"], "success")
        self._run_queue()
        self.assertEqual(
            [m["to"] for m in self.wa.messages],
            ["+32470111111"],
            "Rita once for her two orders; the walk-in has no phone",
        )
        self.assertEqual(
            self.wa.messages[0]["template"]["components"][0]["parameters"][0]["text"],
            "Rita Regular",
        )

        template.body = "Changed {{1}}"  # back to draft: the action refuses to send
        with self.assertRaises(RedirectWarning) as error:
            action.with_context(active_model="pos.order", active_ids=self.rita_1.ids).run()
        self.assertIn("not approved (anymore)", str(error.exception.args[0]))
        self.assertEqual(
            error.exception.args[1:3],
            (
                self.env.ref("mkt_campaign.mkt_whatsapp_template_action").id,
                "Configure Templates",
            ),
            "its button opens the WhatsApp templates",
        )
        template.action_disallow_multi()
        self.assertFalse(action.exists())

    def test_pos_clerk_sends(self):
        """A POS user who is no marketing user sends from the order list."""
        wizard = self._wizard(
            self.rita_1,
            user=self.pos_clerk,
            name="From the shop",
            subject="Thanks {{ object.name }}",
            body_html="<p>See you soon.</p>",
        ).save()
        wizard.action_send()
        campaign = self.env["mkt.campaign"].search([("name", "=", "From the shop")])
        self.assertEqual(campaign.user_id, self.pos_clerk)
        self.assertEqual(len(campaign.participant_ids), 1)

    def test_bad_input_refused_before_sending(self):
        wizard = self._wizard(
            self.rita_1,
            name="Broken",
            subject="Hello {{ object.nickname }}",
            body_html="<p>Hi</p>",
        ).save()
        with self.assertRaises(UserError) as error:  # ValidationError included
            wizard.action_send()
        self.assertIn("nickname", str(error.exception))
        self.assertFalse(self.env["mkt.campaign"].search([("name", "=", "Broken")]))

        nobody = self._wizard(
            self.anonymous, name="Nobody", subject="Hi", body_html="<p>Hi</p>"
        ).save()
        with self.assertRaises(UserError) as error:
            nobody.action_send()
        self.assertIn("None of the 1 selected orders has a customer", str(error.exception))

    def test_order_form_icons(self):
        """Point of Sale > an order > Extra Info: the marketing e-mail and
        WhatsApp icons beside the receipt's contact open the composer for
        that order's customer alone, on that channel."""
        arch = (
            self.env["pos.order"]
            .with_user(self.pos_clerk)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertIn('name="action_mkt_send_email"', arch)
        self.assertIn('name="action_mkt_send_whatsapp"', arch)

        action = self.rita_1.with_user(self.pos_clerk).action_mkt_send_email()
        self.assertEqual(action["res_model"], "mkt.pos.send")
        form = Form(
            self.env["mkt.pos.send"].with_user(self.pos_clerk).with_context(**action["context"])
        )
        self.assertEqual((form.channel, form.order_count, form.recipient_count), ("email", 1, 1))
        self.assertIn("Rita Regular", form.name)
        form.subject = "A gift for you, {{ object.name }}"
        form.body_html = "<p>Come and see our new flower pots.</p>"
        form.save().action_send()
        campaign = self.env["mkt.campaign"].search([("name", "=", form.name)])
        self.assertEqual(campaign.participant_ids.mapped("res_id"), self.rita.ids)
        self._run_queue()
        self.assertEqual(len(self._mails), 1)
        self.assertEqual(self._mails[0]["subject"], "A gift for you, Rita Regular")

        action = self.mobile_only.with_user(self.pos_clerk).action_mkt_send_whatsapp()
        form = Form(
            self.env["mkt.pos.send"].with_user(self.pos_clerk).with_context(**action["context"])
        )
        self.assertEqual((form.channel, form.order_count), ("whatsapp", 1))

    def test_customer_from_receipt_named_and_complete(self):
        """A customer created from a receipt's e-mail is named after it
        ("walkin.buyer@…" → "Walkin Buyer") and keeps the order's mobile too."""
        # the shop's country reads the local number the customer gave
        self.env.company.country_id = self.env.ref("base.be")
        order = self._order(email="walkin.buyer@example.com", mobile="0470 33 33 33")
        form = self._wizard(
            order,
            name="Receipt contacts",
            subject="Hi {{ object.name }}",
            body_html="<p>Thanks for your visit.</p>",
        )
        form.save().action_send()
        customer = order.partner_id
        self.assertEqual(customer.name, "Walkin Buyer")
        self.assertEqual(customer.email, "walkin.buyer@example.com")
        self.assertEqual(customer.phone, "+32470333333")

    # ------------------------------------------------------------------
    # The composer: order templates, preview, Save as Template (issue 11)
    # ------------------------------------------------------------------

    def test_composer_offers_order_templates_with_preview(self):
        """E-mail templates of POS orders are offered beside the contacts'
        ones; the preview shows the message rendered for the first customer's
        order, and the e-mail sent renders on each customer's order."""
        order_model = self.env["ir.model"]._get_id("pos.order")
        order_template = self.env["mail.template"].create(
            {
                "name": "Thanks for your order",
                "model_id": order_model,
                "subject": "Your order {{ object.name }}",
                "body_html": '<p>Dear <t t-out="object.partner_id.name"/>, thanks.</p>',
            }
        )
        contact_template = self.env["mail.template"].create(
            {
                "name": "Newsletter",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "subject": "News",
                "body_html": "<p>News</p>",
            }
        )
        offered = self.env["mail.template"].search(
            self.env["mkt.pos.send"]._fields["template_id"].domain
        )
        self.assertIn(order_template, offered)
        self.assertIn(contact_template, offered)

        form = self._wizard(self.rita_1 | self.rita_2, name="Order thanks")
        form.template_id = order_template
        self.assertEqual(form.subject, "Your order {{ object.name }}")
        self.assertEqual(form.target_model, "pos.order")
        self.assertIn("Preview for", form.preview)
        self.assertIn(
            f"Your order {self.rita_2.name}",
            form.preview,
            "rendered for the customer's latest order",
        )
        self.assertIn("Dear Rita Regular, thanks.", form.preview)
        form.save().action_send()
        campaign = self.env["mkt.campaign"].search([("name", "=", "Order thanks")])
        self.assertEqual(campaign.model_name, "pos.order")
        self.assertEqual(
            campaign.participant_ids.mapped("res_id"),
            self.rita_2.ids,
            "Rita once, on her latest order",
        )
        self._run_queue()
        self.assertEqual(len(self._mails), 1)
        self.assertIn("Dear Rita Regular, thanks.", self._mails[0]["body"])

    def test_save_as_template(self):
        form = self._wizard(
            self.rita_1,
            name="Save it",
            subject="Spring {{ object.name }}",
            body_html="<p>Spring is in store.</p>",
        )
        self.assertIn("Spring Rita Regular", form.preview)
        wizard = form.save()
        action = wizard.action_save_as_template()
        self.assertEqual((action["res_model"], action["res_id"]), ("mkt.pos.send", wizard.id))
        template = wizard.template_id
        self.assertEqual(
            (template.name, template.model, template.subject),
            ("Spring {{ object.name }}", "res.partner", "Spring {{ object.name }}"),
        )
        self.assertIn("Spring is in store.", template.body_html)
        # offered (and inserted) next time
        form = self._wizard(self.rita_2, name="Again")
        form.template_id = template
        self.assertEqual(form.subject, "Spring {{ object.name }}")
        self.assertIn("Spring is in store.", form.body_html)

    def test_whatsapp_icon_previews_for_the_order(self):
        """The WhatsApp icon of the order form: approved templates of POS
        orders and of contacts are offered, the preview renders for that order."""
        self._start_whatsapp()
        order_template = self._approved_template(
            name="Order ready",
            template_name="order_ready",
            model_id=self.env["ir.model"]._get_id("pos.order"),
            phone_field="partner_id.phone",
            body="Hi {{1}}, order {{2}} is ready.",
            variable_ids=[
                (0, 0, {"index": 1, "field_path": "partner_id.name"}),
                (0, 0, {"index": 2, "field_path": "name"}),
            ],
        )
        contact_template = self._approved_template(name="Hello", template_name="hello")
        offered = self.env["mkt.whatsapp.template"].search(
            self.env["mkt.pos.send"]._fields["whatsapp_template_id"].domain
        )
        self.assertEqual(
            offered & (order_template | contact_template), order_template | contact_template
        )
        action = self.rita_1.with_user(self.pos_clerk).action_mkt_send_whatsapp()
        form = Form(
            self.env["mkt.pos.send"].with_user(self.pos_clerk).with_context(**action["context"])
        )
        form.whatsapp_template_id = order_template
        self.assertIn(f"Hi Rita Regular, order {self.rita_1.name} is ready.", form.preview)
        form.save().action_send()
        self._run_queue()
        self.assertEqual([m["to"] for m in self.wa.messages], ["+32470111111"])

    def test_whatsapp_payload_variable_in_composer(self):
        """A template with a payload variable composed one-off: the preview
        shows the key as written, the message "-" (the customer's new
        participant has no payload)."""
        self._start_whatsapp()
        template = self._approved_template(
            name="Order code",
            template_name="order_code",
            model_id=self.env["ir.model"]._get_id("pos.order"),
            phone_field="partner_id.phone",
            body="Hi {{1}}, your code is {{2}}.",
            variable_ids=[
                (0, 0, {"index": 1, "field_path": "partner_id.name"}),
                (0, 0, {"index": 2, "payload_key": "coupon"}),
            ],
        )
        action = self.rita_1.with_user(self.pos_clerk).action_mkt_send_whatsapp()
        form = Form(
            self.env["mkt.pos.send"].with_user(self.pos_clerk).with_context(**action["context"])
        )
        form.whatsapp_template_id = template
        self.assertIn("Hi Rita Regular, your code is payload.coupon.", form.preview)
        form.save().action_send()
        self._run_queue()
        self.assertEqual(
            self.wa.messages[0]["template"]["components"][0]["parameters"],
            [{"type": "text", "text": "Rita Regular"}, {"type": "text", "text": "-"}],
        )

    def test_whatsapp_without_approved_template(self):
        """No approved template: the error's Configure Templates button opens them."""
        self.assertFalse(self.env["mkt.whatsapp.template"].search([("status", "=", "approved")]))
        wizard = (
            self.env["mkt.pos.send"]
            .with_context(
                active_model="pos.order",
                active_ids=self.rita_1.ids,
            )
            .create({"name": "No template", "channel": "whatsapp"})
        )
        with self.assertRaises(RedirectWarning) as error:
            wizard.action_send()
        self.assertEqual(
            error.exception.args[1:3],
            (
                self.env.ref("mkt_campaign.mkt_whatsapp_template_action").id,
                "Configure Templates",
            ),
        )

    # ------------------------------------------------------------------
    # Receipts feed the contacts
    # ------------------------------------------------------------------

    def test_receipts_feed_the_contacts(self):
        """With the shop's setting on, the e-mail or number a receipt is sent to
        is kept on the order and, where empty, on its customer; numbers in E.164
        with the shop's country; an invalid one is refused, nothing stored."""
        self.env.company.country_id = self.env.ref("base.be")
        settings = self.env["res.config.settings"].create(
            {"pos_config_id": self.basic_config.id, "pos_mkt_receipt_contacts": True}
        )
        settings.execute()
        self.assertTrue(self.basic_config.mkt_receipt_contacts)
        customer = self.env["res.partner"].create({"name": "Sam Silent"})
        order = self._order(customer)
        self.basic_config.sudo().write(
            {
                "module_pos_sms": True,
                "sms_receipt_template_id": self.env.ref(
                    "pos_sms.sms_template_data_point_of_sale"
                ).id,
            }
        )
        order.with_user(self.pos_clerk).action_sent_message_on_sms("0470 44 44 44", False)
        self.assertEqual(order.mobile, "+32470444444")
        self.assertEqual(customer.phone, "+32470444444")
        with self.mock_mail_gateway():
            order.with_user(self.pos_clerk).action_send_receipt(
                "Sam.Silent@Example.com", False, False
            )
        self.assertEqual(order.email, "sam.silent@example.com")
        self.assertEqual(customer.email, "sam.silent@example.com")

        # a customer's own details are kept; an invalid number stores nothing
        other = self._order(self.rita)
        other.with_user(self.pos_clerk).action_sent_message_on_sms("0470 55 55 55", False)
        self.assertEqual(other.mobile, "+32470555555")
        self.assertEqual(self.rita.phone, "+32470111111")
        with self.assertRaises(UserError) as error:
            other.with_user(self.pos_clerk).action_sent_message_on_sms("12", False)
        self.assertIn("not a valid phone number", str(error.exception))
        self.assertEqual(other.mobile, "+32470555555")

        # setting off: Odoo's behaviour, nothing completed
        self.basic_config.mkt_receipt_contacts = False
        quiet = self.env["res.partner"].create({"name": "Quinn Quiet"})
        order = self._order(quiet)
        order.action_sent_message_on_sms("0470 66 66 66", False)
        self.assertFalse(quiet.phone)
