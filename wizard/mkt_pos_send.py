import re

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import email_normalize

# the models whose templates the composer offers: the customers' and the orders'
TEMPLATE_MODELS = ["res.partner", "pos.order"]
APPROVED_WHATSAPP = [("status", "=", "approved"), ("model", "in", TEMPLATE_MODELS)]


class MktPosSend(models.TransientModel):
    """Point of Sale > Orders: select orders, Actions > Send Marketing Message.

    The customers of the selected orders receive one e-mail or SMS each (an
    order without customer but with the e-mail or phone collected with its
    receipt gets one, found by e-mail or created). The message is a one-step
    campaign launched at once: it is sent by the campaign queue right away (not
    by the hourly mail queue), blacklist, opt-outs, frequency caps and the
    sending window apply, every recipient's status is in the Send Queue and the
    results are in Marketing > Campaigns and Email / SMS Marketing."""

    _name = "mkt.pos.send"
    _description = "Send a marketing message to POS customers"

    order_ids = fields.Many2many(
        "pos.order",
        string="Orders",
        default=lambda self: (
            self.env.context.get("active_model") == "pos.order"
            and self.env.context.get("active_ids")
        ),
    )
    channel = fields.Selection(
        [("email", "E-mail"), ("sms", "SMS"), ("whatsapp", "WhatsApp")],
        default="email",
        required=True,
    )
    name = fields.Char(
        "Campaign Name",
        required=True,
        default=lambda self: self.env._(
            "POS message of %(date)s", date=fields.Date.context_today(self)
        ),
        help="The campaign created to send and track the message.",
    )
    template_id = fields.Many2one(
        "mail.template",
        "Start From Template",
        domain=[("model", "in", TEMPLATE_MODELS)],
        help="Inserts the template's subject and body, to adapt before sending. A "
        "template of POS orders renders on each customer's order.",
    )
    whatsapp_template_id = fields.Many2one(
        "mkt.whatsapp.template",
        "WhatsApp Template",
        domain=APPROVED_WHATSAPP,
        help="An approved WhatsApp template for contacts or POS orders (Marketing > "
        "Configuration > WhatsApp Templates).",
    )
    target_model = fields.Char(
        compute="_compute_target_model",
        help="What the message renders on: the customer, or their order for a template "
        "of POS orders.",
    )
    preview = fields.Html(
        compute="_compute_preview",
        sanitize=True,
        help="The message as the first recipient receives it.",
    )
    subject = fields.Char()
    # as mail.template: placeholders (<t t-out="object.name"/>) are kept
    body_html = fields.Html("Body", sanitize="email_outgoing")
    body_plaintext = fields.Text("SMS Text")
    create_customers = fields.Boolean(
        "Create Missing Customers",
        default=True,
        help="An order without customer but with the e-mail or phone collected with its "
        "receipt gets a customer: the contact with that e-mail, or a new one.",
    )
    order_count = fields.Integer("Selected Orders", compute="_compute_recipients")
    recipient_count = fields.Integer("Recipients", compute="_compute_recipients")
    missing_count = fields.Integer(
        "Orders Without Contact",
        compute="_compute_recipients",
        help="Orders whose customer cannot be reached on this channel.",
    )

    @api.onchange("template_id")
    def _onchange_template_id(self):
        if self.template_id:
            self.subject = self.template_id.subject
            self.body_html = self.template_id.body_html

    @api.depends("channel", "template_id", "whatsapp_template_id")
    def _compute_target_model(self):
        for wizard in self:
            template = (
                wizard.template_id
                if wizard.channel == "email"
                else (wizard.whatsapp_template_id if wizard.channel == "whatsapp" else False)
            )
            wizard.target_model = template and template.model or "res.partner"

    @api.depends(
        "order_ids",
        "channel",
        "create_customers",
        "target_model",
        "subject",
        "body_html",
        "body_plaintext",
        "whatsapp_template_id",
    )
    def _compute_preview(self):
        for wizard in self:
            wizard.preview = wizard._render_preview()

    def _preview_record(self):
        """The first recipient's record (customer or order), False if none."""
        customers, _to_create, _missing = self._get_customers(dry_run=True)
        if self.target_model == "pos.order":
            # the latest selected order of a customer, as sent (action_send)
            record = (
                self._get_orders()
                .sorted(lambda o: o._origin.id, reverse=True)
                .filtered(lambda o: o.partner_id and o.partner_id in customers)[:1]
            )
        else:
            record = customers[:1]
        return record._origin  # the dialog's records are new ones (onchange)

    def _render_preview(self):
        """The message rendered for the first recipient, with the user's
        rights (the template-editor restriction of mail.render.mixin applies)."""
        self.ensure_one()
        if self.channel == "email" and not (self.subject or self.body_html):
            return False
        if self.channel == "sms" and not self.body_plaintext:
            return False
        if self.channel == "whatsapp" and not self.whatsapp_template_id:
            return False
        record = self._preview_record()
        if not record:
            return Markup("<p class='text-muted'>%s</p>") % self.env._(
                "No customer of the selected orders can be reached on this channel yet: "
                "nothing to preview."
            )
        Render = self.env["mail.render.mixin"]
        try:
            if self.channel == "email":
                subject = Render._render_template(
                    self.subject or "", record._name, record.ids, engine="inline_template"
                )[record.id]
                body = Render._render_template(
                    self.body_html or "",
                    record._name,
                    record.ids,
                    engine="qweb",
                    options={"post_process": True},
                )[record.id]
                content = Markup("<p><strong>%s</strong></p>%s") % (subject, Markup(body))
            elif self.channel == "sms":
                text = Render._render_template(
                    self.body_plaintext, record._name, record.ids, engine="inline_template"
                )[record.id]
                content = Markup("<p style='white-space: pre-wrap'>%s</p>") % text
            else:
                template = self.whatsapp_template_id
                text = template.body or ""
                for variable in template.variable_ids:
                    # a payload key has no value before the recipient is a
                    # participant: shown as written (payload.<key>)
                    text = text.replace(
                        f"{{{{{variable.index}}}}}",
                        variable._label()
                        if variable.payload_key
                        else template._read_path(record, variable.field_path),
                    )
                content = Markup("<p style='white-space: pre-wrap'>%s</p>") % text
        except Exception as e:  # noqa: BLE001 - shown to the user instead of the preview
            return Markup("<p class='text-danger'>%s</p>") % self.env._(
                "The message does not render: %(error)s", error=e
            )
        return Markup("<p class='text-muted'>%s</p>%s") % (
            self.env._("Preview for %(recipient)s", recipient=record.display_name),
            content,
        )

    @api.depends("order_ids", "channel", "create_customers")
    def _compute_recipients(self):
        for wizard in self:
            customers, to_create, missing = wizard._get_customers(dry_run=True)
            wizard.order_count = len(wizard._get_orders())
            wizard.recipient_count = len(customers) + len(to_create)
            wizard.missing_count = len(missing)

    # ------------------------------------------------------------------
    # Recipients
    # ------------------------------------------------------------------

    def _order_contact(self, order):
        """The order's own e-mail (normalized) or phone (E.164), collected with
        its receipt."""
        if self.channel == "email":
            return email_normalize(order.email or "") or False
        if not order.mobile:
            return False
        return (
            order._phone_format(
                number=order.mobile, country=order.company_id.country_id, force_format="E164"
            )
            or False
        )

    def _get_orders(self):
        """The selected orders the user may read (record rules and companies):
        a POS user never selects another company's orders."""
        return self.order_ids._filtered_access("read")

    def _may_change_partner(self, partner):
        """A contact of a company the user does not work in is left alone."""
        return not partner.company_id or partner.company_id in self.env.companies

    def _get_customers(self, dry_run=False):
        """(customers, contacts to create, orders without contact) of the orders.
        A customer reachable on the channel is kept; otherwise the e-mail or
        phone collected on the order finds a contact, completes the order's
        customer, or (unless ``dry_run``) creates a contact, set on the order.

        Contacts are searched with the user's rights (record rules and
        companies apply), orders are written with them; a POS user may have no
        right to create or edit contacts, so completing or creating the
        contact of one of their orders is done as superuser, only for a
        contact of the user's companies (or shared)."""
        Partner = self.env["res.partner"]
        customers = Partner
        orders_by_contact = {}  # contact -> orders without a customer
        missing = self.env["pos.order"]
        for order in self._get_orders():
            partner = order.partner_id
            if partner and not partner.has_access("read"):
                missing |= order
                continue
            if partner and (
                partner.email_normalized if self.channel == "email" else partner.phone_sanitized
            ):
                customers |= partner
                continue
            contact = self._order_contact(order)
            if not contact or not self.create_customers:
                missing |= order
            elif partner:
                if not self._may_change_partner(partner):
                    missing |= order
                    continue
                # the customer lacks what the receipt collected: complete it
                # (sudo: POS users may not edit contacts; the partner is the
                # readable customer of the user's own order, in their companies)
                if not dry_run:
                    partner.sudo().write({"email" if self.channel == "email" else "phone": contact})
                customers |= partner
            else:
                orders_by_contact.setdefault(contact, self.env["pos.order"])
                orders_by_contact[contact] |= order
        if not orders_by_contact:
            return customers, [], missing
        contacts = list(orders_by_contact)
        if self.channel == "email":
            found = Partner._find_or_create_from_emails(contacts, no_create=True)
        else:
            by_phone = {
                p.phone_sanitized: p
                for p in Partner.search([("phone_sanitized", "in", contacts)], order="id desc")
            }
            found = [by_phone.get(contact, Partner) for contact in contacts]
        to_create = [
            contact for contact, partner in zip(contacts, found, strict=True) if not partner
        ]
        if not dry_run and to_create:
            # sudo: POS users may not create contacts; each is created in the
            # company of the (readable) order it comes from, then used as the user
            created = (
                Partner.sudo()
                .create(
                    [
                        self._new_customer_values(contact, orders_by_contact[contact][:1])
                        for contact in to_create
                    ]
                )
                .with_env(self.env)
            )
            created_by_contact = dict(zip(to_create, created, strict=True))
            found = [
                partner or created_by_contact[contact]
                for contact, partner in zip(contacts, found, strict=True)
            ]
            to_create = []
        for contact, partner in zip(contacts, found, strict=True):
            if partner:
                customers |= partner
                if not dry_run:
                    # the orders get their customer, as a receipt sent to them would
                    orders_by_contact[contact].partner_id = partner
        return customers, to_create, missing

    def _new_customer_values(self, contact, order):
        """A customer made from what the receipt collected: named after the
        e-mail's local part ("walkin.buyer@…" → "Walkin Buyer"), with the
        order's e-mail and mobile both (the mobile in E.164)."""
        email = email_normalize(order.email or "") or False
        phone = (
            order.mobile
            and order._phone_format(
                number=order.mobile, country=order.company_id.country_id, force_format="E164"
            )
            or False
        )
        if self.channel == "email":
            email = contact
        else:
            phone = contact
        if email:
            local = re.split(r"[+@]", email)[0]
            name = " ".join(part.capitalize() for part in re.split(r"[._\-]+", local) if part)
        else:
            name = phone
        return {
            "name": name or contact,
            "email": email,
            "phone": phone,
            "company_id": order.company_id.id,
        }

    # ------------------------------------------------------------------
    # Send
    # ------------------------------------------------------------------

    def action_save_as_template(self):
        """Keep the e-mail written here as an e-mail template (of the
        customers, or of the orders when it started from an order template),
        offered next time in Start From Template."""
        self.ensure_one()
        if not (self.subject and self.body_html):
            raise UserError(self.env._("Write the e-mail's subject and body before saving it."))
        # created with the user's rights: the template-editor restriction applies
        template = self.env["mail.template"].create(
            {
                "name": self.subject,
                "model_id": self.env["ir.model"]._get_id(self.target_model),
                "subject": self.subject,
                "body_html": self.body_html,
            }
        )
        self.template_id = template
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "name": self.env._("Send Marketing Message"),
            "context": self.env.context,
        }

    def action_send(self):
        self.ensure_one()
        if self.channel == "email" and not (self.subject and self.body_html):
            raise UserError(self.env._("Write the e-mail's subject and body before sending."))
        if self.channel == "sms" and not (self.body_plaintext or "").strip():
            raise UserError(self.env._("Write the SMS text before sending."))
        if self.channel == "whatsapp" and not self.whatsapp_template_id:
            if not self.env["mkt.whatsapp.template"].search_count(APPROVED_WHATSAPP, limit=1):
                self.env["mkt.whatsapp.template"]._raise_configure_templates(
                    self.env._(
                        "There is no approved WhatsApp template for contacts or POS orders yet: "
                        "create one and submit it to WhatsApp."
                    )
                )
            raise UserError(self.env._("Choose the approved WhatsApp template to send."))
        # the selection as stored (sudo: an order the user may not read is not
        # even listed to them) against what the user may read
        if unreadable := self.sudo().order_ids - self._get_orders().sudo():
            raise AccessError(
                self.env._(
                    "You may not send a message to the customers of %(count)s of the selected "
                    "orders: they belong to a company you do not work in, or you may not read "
                    "them.",
                    count=len(unreadable),
                )
            )
        customers, _to_create, missing = self._get_customers()
        if not customers:
            raise UserError(
                self.env._(
                    "None of the %(count)s selected orders has a customer with an %(what)s.",
                    count=len(self.order_ids),
                    what=self.env._("e-mail address")
                    if self.channel == "email"
                    else self.env._("phone number"),
                )
            )
        step = {"name": self.name, "activity_type": self.channel}
        if self.channel == "email":
            step.update(subject=self.subject, body_html=self.body_html)
        elif self.channel == "sms":
            step.update(body_plaintext=self.body_plaintext)
        else:
            step.update(whatsapp_template_id=self.whatsapp_template_id.id)
        # a subject left as the chosen e-mail template wrote it is the
        # template's (mail.template checks its author is a template editor)
        template_fields = (
            ("subject",)
            if (
                self.channel == "email"
                and self.template_id
                and self.subject == self.template_id.subject
            )
            else ()
        )
        Campaign = self.env["mkt.campaign"]
        if self.target_model == "pos.order":
            # a template of POS orders renders on each customer's latest
            # selected order, one message per customer
            records = self.env["pos.order"]
            for order in self._get_orders().sorted("id", reverse=True):
                if order.partner_id in customers and order.partner_id not in records.partner_id:
                    records |= order
            unique_field = "partner_id"
        else:
            records = customers
            unique_field = "email_normalized" if self.channel == "email" else "phone_sanitized"
        campaign = Campaign._send_now(
            self.name,
            records,
            step,
            unique_field=unique_field,
            template_fields=template_fields,
        )
        return Campaign._sent_notification(
            self.env._("Message on its way"),
            self.env._(
                "%(count)s customers enrolled in campaign %(campaign)s: the queue sends "
                "now.%(missing)s",
                count=len(customers),
                campaign=campaign.name,
                missing=self.env._(
                    " %(count)s orders have no contact and were skipped.", count=len(missing)
                )
                if missing
                else "",
            ),
        )
