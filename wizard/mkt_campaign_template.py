from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError

TEMPLATES = [
    ("tag_hot_contacts", "Tag Hot Contacts"),
    ("welcome_flow", "Welcome Flow"),
    ("double_optin", "Double Opt-in"),
    ("commercial_prospection", "Commercial Prospection"),
    ("schedule_calls", "Schedule Calls"),
    ("prioritize_hot_leads", "Prioritize Hot Leads"),
]


def _html(*paragraphs):
    return Markup("").join(Markup("<p>%s</p>") % p for p in paragraphs)


class MktCampaignTemplate(models.TransientModel):
    """Marketing > New from Template: six ready-made campaigns to start from,
    created as drafts to review (audience, contents) before launching."""

    _name = "mkt.campaign.template"
    _description = "Marketing Campaign Template"

    template = fields.Selection(TEMPLATES, required=True, default="tag_hot_contacts")
    description = fields.Html(compute="_compute_description", sanitize=False)

    @api.depends("template")
    def _compute_description(self):
        descriptions = self._template_descriptions()
        for wizard in self:
            wizard.description = _html(descriptions.get(wizard.template, ""))

    @api.model
    def _template_descriptions(self):
        return {
            "tag_hot_contacts": self.env._(
                "Send a welcome e-mail to your contacts and tag those who click it as hot."
            ),
            "welcome_flow": self.env._(
                "Send a welcome e-mail to new mailing list subscribers and "
                "blacklist the addresses that bounce."
            ),
            "double_optin": self.env._(
                "Ask new contacts to confirm their subscription with a signed link (double opt-in)."
            ),
            "commercial_prospection": self.env._(
                "Send a free catalog to your leads, then follow up depending "
                "on whether they opened it."
            ),
            "schedule_calls": self.env._(
                "When a lead is created for an existing contact, schedule a "
                "call for its salesperson."
            ),
            "prioritize_hot_leads": self.env._(
                "Send an e-mail to new leads and give those who open it a high priority."
            ),
        }

    @api.model
    def get_template_cards(self):
        """The templates as the empty campaign dashboard shows them (none to a
        user who may not create campaigns from them)."""
        if not self.has_access("create"):
            return []
        descriptions = self._template_descriptions()
        labels = dict(self._fields["template"]._description_selection(self.env))
        icons = {
            "tag_hot_contacts": "fa-tags",
            "welcome_flow": "fa-handshake-o",
            "double_optin": "fa-check-square-o",
            "commercial_prospection": "fa-book",
            "schedule_calls": "fa-phone",
            "prioritize_hot_leads": "fa-fire",
        }
        return [
            {
                "key": key,
                "name": labels[key],
                "description": descriptions.get(key, ""),
                "icon": icons.get(key, "fa-bullhorn"),
            }
            for key, _label in TEMPLATES
        ]

    @api.model
    def action_create_from_template(self, template):
        """One click on a template card: the draft campaign, opened."""
        if template not in dict(TEMPLATES):
            raise UserError(
                self.env._("Unknown campaign template: %(template)s", template=template)
            )
        return self.create({"template": template}).action_create()

    def action_create(self):
        self.ensure_one()
        campaign = getattr(self, f"_create_{self.template}")()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mkt.campaign",
            "res_id": campaign.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }

    # ------------------------------------------------------------------
    # Builders
    # ------------------------------------------------------------------

    def _campaign(self, name, model, domain, steps, unique_field=None, **values):
        """A draft campaign with ``steps``: (key, values) where values may name
        their parent's key as 'parent'."""
        Model = self.env["ir.model"]
        campaign = self.env["mkt.campaign"].create(
            {
                "name": name,
                "model_id": Model._get_id(model),
                "domain": repr(domain),
                "unique_field_id": unique_field
                and self.env["ir.model.fields"]._get(model, unique_field).id,
                **values,
            }
        )
        created = {}
        for key, step in steps:
            step = dict(step)
            parent = step.pop("parent", None)
            # sudo: the steps' texts are this module's own (placeholders such as
            # `object.name or ''` that only template editors may write), not
            # the user's; the user's right to create the campaign was checked
            created[key] = (
                self.env["mkt.activity"]
                .sudo()
                .create(
                    {
                        "campaign_id": campaign.id,
                        "parent_id": created[parent].id if parent else False,
                        "trigger_type": "after_parent" if parent else "begin",
                        "interval_type": "days",
                        **step,
                    }
                )
            )
        return campaign

    def _code_action(self, name, model, code):
        # a fixed code of ours: created as superuser (ir.actions.server is
        # admin-only), for a marketing manager
        action = (
            self.env["ir.actions.server"]
            .sudo()
            .create(
                {
                    "name": name,
                    "model_id": self.env["ir.model"]._get_id(model),
                    "state": "code",
                    "code": code,
                }
            )
        )
        # registered under the module's name, so that uninstalling the module
        # removes it (noupdate: upgrades keep it); ir.model.data is admin-only
        self.env["ir.model.data"].sudo().create(
            {
                "module": "mkt_campaign",
                "name": f"campaign_template_action_{action.id}",
                "model": "ir.actions.server",
                "res_id": action.id,
                "noupdate": True,
            }
        )
        return action

    def _create_tag_hot_contacts(self):
        # contact tags are the contact managers': one fixed tag, found or created by name
        Tag = self.env["res.partner.category"].sudo()
        tag = Tag.search([("name", "=", "Hot")], limit=1) or Tag.create({"name": "Hot"})
        action = self._code_action(
            self.env._("Tag as hot"),
            "res.partner",
            f"records.write({{'category_id': [(4, {tag.id})]}})",
        )
        return self._campaign(
            self.env._("Tag Hot Contacts"),
            "res.partner",
            [("email", "!=", False)],
            [
                (
                    "welcome",
                    {
                        "name": self.env._("Welcome"),
                        "activity_type": "email",
                        "subject": self.env._("Welcome, {{ object.name }}!"),
                        "body_html": _html(
                            Markup('Hello <t t-out="object.name"/>,'),
                            self.env._("Discover what is new this season."),
                            Markup('<a href="https://www.example.com">%s</a>')
                            % self.env._("See the news"),
                        ),
                    },
                ),
                (
                    "tag",
                    {
                        "name": self.env._("Tag as hot"),
                        "parent": "welcome",
                        "activity_type": "server_action",
                        "trigger_type": "email_click",
                        "server_action_id": action.id,
                    },
                ),
            ],
            unique_field="email",
        )

    def _create_welcome_flow(self):
        action = self._code_action(
            self.env._("Blacklist the address"),
            "mailing.contact",
            "for record in records:\n"
            "    env['mail.blacklist']._add(record.email, "
            "message='Bounced on the welcome e-mail')",
        )
        return self._campaign(
            self.env._("Welcome Flow"),
            "mailing.contact",
            [("list_ids", "!=", False)],
            [
                (
                    "welcome",
                    {
                        "name": self.env._("Welcome"),
                        "activity_type": "email",
                        "subject": self.env._("Welcome to our newsletter"),
                        "body_html": _html(
                            Markup("Hello <t t-out=\"object.name or ''\"/>,"),
                            self.env._(
                                "Thank you for subscribing: our next newsletter is on its way."
                            ),
                        ),
                    },
                ),
                (
                    "bounced",
                    {
                        "name": self.env._("Blacklist bounced address"),
                        "parent": "welcome",
                        "activity_type": "server_action",
                        "trigger_type": "email_bounce",
                        "server_action_id": action.id,
                    },
                ),
            ],
            unique_field="email",
        )

    def _create_double_optin(self):
        return self._campaign(
            self.env._("Double Opt-in"),
            "mailing.contact",
            [("list_ids", "!=", False), ("mkt_optin_date", "=", False)],
            [
                (
                    "confirm",
                    {
                        "name": self.env._("Confirm your subscription"),
                        "activity_type": "email",
                        "subject": self.env._("Please confirm your subscription"),
                        "body_html": _html(
                            Markup("Hello <t t-out=\"object.name or ''\"/>,"),
                            self.env._("One click confirms you want to hear from us:"),
                            Markup('<a t-att-href="object.mkt_optin_url">%s</a>')
                            % self.env._("Confirm my subscription"),
                        ),
                    },
                ),
            ],
            unique_field="email",
        )

    def _create_commercial_prospection(self):
        return self._campaign(
            self.env._("Commercial Prospection"),
            "crm.lead",
            [("email_from", "!=", False)],
            [
                (
                    "catalog",
                    {
                        "name": self.env._("Free catalog"),
                        "activity_type": "email",
                        "subject": self.env._(
                            "Your free catalog, "
                            "{{ object.contact_name or object.partner_name or '' }}"
                        ),
                        "body_html": _html(
                            Markup(
                                'Hello <t t-out="object.contact_name'
                                " or object.partner_name or ''\"/>,"
                            ),
                            self.env._("Here is our catalog, free of charge."),
                            Markup('<a href="https://www.example.com/catalog">%s</a>')
                            % self.env._("Open the catalog"),
                        ),
                    },
                ),
                (
                    "offer",
                    {
                        "name": self.env._("Offer for readers"),
                        "parent": "catalog",
                        "activity_type": "email",
                        "trigger_type": "email_open",
                        "interval_number": 1,
                        "subject": self.env._("An offer to go with your catalog"),
                        "body_html": _html(
                            self.env._(
                                "Thank you for reading our catalog: 10% off "
                                "your first order this week."
                            )
                        ),
                    },
                ),
                (
                    "reminder",
                    {
                        "name": self.env._("Catalog reminder"),
                        "parent": "catalog",
                        "activity_type": "email",
                        "trigger_type": "email_not_open",
                        "interval_number": 3,
                        "subject": self.env._("Did you see our catalog?"),
                        "body_html": _html(self.env._("Our catalog is still waiting for you.")),
                    },
                ),
            ],
            unique_field="email_from",
        )

    def _create_schedule_calls(self):
        action = self._code_action(
            self.env._("Schedule a call"),
            "crm.lead",
            "for lead in records:\n"
            "    lead.activity_schedule('mail.mail_activity_data_call', "
            "user_id=lead.user_id.id or env.user.id, "
            "summary='Call about the new opportunity')",
        )
        return self._campaign(
            self.env._("Schedule Calls"),
            "crm.lead",
            [("partner_id", "!=", False)],
            [
                (
                    "call",
                    {
                        "name": self.env._("Schedule a call"),
                        "activity_type": "server_action",
                        "server_action_id": action.id,
                    },
                ),
            ],
        )

    def _create_prioritize_hot_leads(self):
        action = self._code_action(
            self.env._("High priority"),
            "crm.lead",
            "records.write({'priority': '3'})",
        )
        return self._campaign(
            self.env._("Prioritize Hot Leads"),
            "crm.lead",
            [("email_from", "!=", False)],
            [
                (
                    "hello",
                    {
                        "name": self.env._("Nice to meet you"),
                        "activity_type": "email",
                        "subject": self.env._("Nice to meet you"),
                        "body_html": _html(
                            Markup(
                                'Hello <t t-out="object.contact_name'
                                " or object.partner_name or ''\"/>,"
                            ),
                            self.env._(
                                "Thank you for your interest: here is what we can do for you."
                            ),
                        ),
                    },
                ),
                (
                    "priority",
                    {
                        "name": self.env._("High priority"),
                        "parent": "hello",
                        "activity_type": "server_action",
                        "trigger_type": "email_open",
                        "server_action_id": action.id,
                    },
                ),
            ],
            unique_field="email_from",
        )
