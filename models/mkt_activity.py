import logging
from collections.abc import Callable
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

_logger = logging.getLogger(__name__)

CONTENT_FIELDS = ("subject", "body_html", "body_plaintext")
# what a user writes on a step that is rendered on the target's records, and
# the engine that renders it (mail.render.mixin)
RENDERED_FIELDS = {
    "subject": "inline_template",
    "body_html": "qweb",
    "body_plaintext": "inline_template",
    "push_title": "inline_template",
    "push_body": "inline_template",
}
# trigger -> (event the parent's message must show, activity types the parent may have)
EVENT_TRIGGERS = {
    "email_open": ("open", ("email",)),
    "email_click": ("click", ("email",)),
    "email_reply": ("reply", ("email",)),
    "email_bounce": ("bounce", ("email",)),
    "sms_click": ("click", ("sms",)),
    "whatsapp_read": ("open", ("whatsapp",)),
    "whatsapp_reply": ("reply", ("whatsapp",)),
}
# trigger -> (event whose absence it waits for, activity types the parent may have)
NEGATIVE_TRIGGERS = {
    "email_not_open": ("open", ("email",)),
    "email_not_click": ("click", ("email",)),
    "email_not_reply": ("reply", ("email",)),
    "sms_not_click": ("click", ("sms",)),
    "whatsapp_not_read": ("open", ("whatsapp",)),
    "whatsapp_not_reply": ("reply", ("whatsapp",)),
}
# event -> the negative trigger it cancels
EVENT_CANCELS = {
    ("open", "email"): ["email_not_open"],
    ("click", "email"): ["email_not_click"],
    ("reply", "email"): ["email_not_reply"],
    ("click", "sms"): ["sms_not_click"],
    ("open", "whatsapp"): ["whatsapp_not_read"],
    ("reply", "whatsapp"): ["whatsapp_not_reply"],
}


class MktChannel(NamedTuple):
    """A channel of the registry (MktActivity._mkt_channel)."""

    # the adapter: execute(traces) -> {trace: (state, reason)}, see
    # mkt.trace._execute_channel for the contract
    execute: Callable
    # a message leaves the database (e-mail, SMS…): the queue sends these
    # steps by chunks marked 'started', and a step interrupted while sending
    # is never run again automatically. False: the step's effect is in the
    # database, in the chunk's transaction (a crash rolls it back).
    sends_messages: bool = True


class MktActivity(models.Model):
    _name = "mkt.activity"
    _description = "Marketing Campaign Activity"
    _order = "campaign_id, parent_path, sequence, id"
    _parent_store = True

    name = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    campaign_id = fields.Many2one("mkt.campaign", required=True, ondelete="cascade", index=True)
    model_name = fields.Char(related="campaign_id.model_name")
    company_id = fields.Many2one(related="campaign_id.company_id")
    parent_id = fields.Many2one(
        "mkt.activity",
        "Parent Activity",
        ondelete="cascade",
        index=True,
        domain="[('campaign_id', '=', campaign_id), ('id', '!=', id)]",
    )
    parent_path = fields.Char(index=True)
    child_ids = fields.One2many("mkt.activity", "parent_id", "Children")
    level = fields.Integer(compute="_compute_level")
    activity_type = fields.Selection(
        [
            ("email", "E-mail"),
            ("sms", "SMS"),
            ("whatsapp", "WhatsApp"),
            ("push", "Push Notification"),
            ("server_action", "Server Action"),
        ],
        "Type",
        required=True,
        default="email",
    )
    trigger_type = fields.Selection(
        [
            ("begin", "At campaign start"),
            ("after_parent", "After the parent step"),
            ("email_open", "Parent e-mail opened"),
            ("email_not_open", "Parent e-mail not opened"),
            ("email_click", "Parent e-mail clicked"),
            ("email_not_click", "Parent e-mail not clicked"),
            ("email_reply", "Parent e-mail replied"),
            ("email_not_reply", "Parent e-mail not replied"),
            ("email_bounce", "Parent e-mail bounced"),
            ("sms_click", "Parent SMS clicked"),
            ("sms_not_click", "Parent SMS not clicked"),
            ("whatsapp_read", "Parent WhatsApp read"),
            ("whatsapp_not_read", "Parent WhatsApp not read"),
            ("whatsapp_reply", "Parent WhatsApp replied"),
            ("whatsapp_not_reply", "Parent WhatsApp not replied"),
        ],
        "Trigger",
        required=True,
        default="begin",
    )
    interval_number = fields.Integer(
        "Delay",
        default=0,
        help="How long after the trigger the step runs. For a 'not' trigger this is "
        "the time the recipient has to act.",
    )
    interval_type = fields.Selection(
        [("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks"), ("months", "Months")],
        "Delay Unit",
        default="hours",
        required=True,
    )
    trigger_description = fields.Char(
        "When",
        compute="_compute_trigger_description",
        help="The step's trigger and delay in words, as the workflow tree shows them.",
    )
    domain = fields.Char(
        "Applied Filter",
        default="[]",
        required=True,
        help="The participant's record must still match this filter when the step "
        "comes due; otherwise the step is rejected.",
    )
    mailing_id = fields.Many2one(
        "mailing.mailing",
        "Content",
        ondelete="restrict",
        copy=False,
        help="The e-mail or SMS sent by this step, edited with Email/SMS Marketing.",
    )
    mailing_type = fields.Selection(related="mailing_id.mailing_type")
    subject = fields.Char(related="mailing_id.subject", readonly=False)
    body_html = fields.Html(
        related="mailing_id.body_html",
        readonly=False,
        sanitize=False,
    )
    body_plaintext = fields.Text(related="mailing_id.body_plaintext", readonly=False)
    whatsapp_template_id = fields.Many2one(
        "mkt.whatsapp.template",
        "WhatsApp Template",
        ondelete="restrict",
        domain="[('model', '=', model_name)]",
        help="An approved template of the campaign's target: WhatsApp only delivers "
        "approved templates to start a conversation.",
    )
    push_title = fields.Char(
        "Notification Title", help="Placeholders such as {{ object.name }} are rendered."
    )
    push_body = fields.Text("Notification Text")
    server_action_id = fields.Many2one(
        "ir.actions.server",
        ondelete="restrict",
        domain="[('model_id.model', '=', model_name)]",
    )
    trace_ids = fields.One2many("mkt.trace", "activity_id", "Queue")
    processed_count = fields.Integer("Processed", compute="_compute_statistics")
    rejected_count = fields.Integer("Rejected", compute="_compute_statistics")
    failed_count = fields.Integer("Failed", compute="_compute_statistics")
    scheduled_count = fields.Integer("Scheduled", compute="_compute_statistics")
    canceled_count = fields.Integer("Canceled", compute="_compute_statistics")
    success_rate = fields.Float(
        "Success (%)",
        compute="_compute_statistics",
        help="Processed / (processed + rejected + failed): the share of due steps that ran.",
    )

    @api.depends("parent_path")
    def _compute_level(self):
        for activity in self:
            activity.level = max((activity.parent_path or "").count("/") - 1, 0)

    @api.depends("trigger_type", "interval_number", "interval_type")
    def _compute_trigger_description(self):
        for activity in self:
            activity.trigger_description = activity._trigger_sentence()

    def _delay_words(self):
        """The step's delay in words: "1 day", "3 weeks"."""
        _ = self.env._
        number = self.interval_number or 0
        return {
            "hours": _("1 hour") if number == 1 else _("%(count)s hours", count=number),
            "days": _("1 day") if number == 1 else _("%(count)s days", count=number),
            "weeks": _("1 week") if number == 1 else _("%(count)s weeks", count=number),
            "months": _("1 month") if number == 1 else _("%(count)s months", count=number),
        }.get(self.interval_type, str(number))

    def _trigger_sentence(self):
        """The trigger and the delay as one translatable sentence, e.g. "2 days
        after the parent e-mail was not opened" (whole sentences per trigger,
        the delay as a placeholder)."""
        self.ensure_one()
        _ = self.env._
        if self.interval_number:
            delay = self._delay_words()
            sentences = {
                "begin": _("%(delay)s after the campaign starts", delay=delay),
                "after_parent": _("%(delay)s after the parent step", delay=delay),
                "email_open": _("%(delay)s after the parent e-mail was opened", delay=delay),
                "email_not_open": _(
                    "%(delay)s after the parent e-mail was not opened", delay=delay
                ),
                "email_click": _("%(delay)s after the parent e-mail was clicked", delay=delay),
                "email_not_click": _(
                    "%(delay)s after the parent e-mail was not clicked", delay=delay
                ),
                "email_reply": _("%(delay)s after the parent e-mail was replied to", delay=delay),
                "email_not_reply": _(
                    "%(delay)s after the parent e-mail was not replied to", delay=delay
                ),
                "email_bounce": _("%(delay)s after the parent e-mail bounced", delay=delay),
                "sms_click": _("%(delay)s after the parent SMS was clicked", delay=delay),
                "sms_not_click": _("%(delay)s after the parent SMS was not clicked", delay=delay),
                "whatsapp_read": _(
                    "%(delay)s after the parent WhatsApp message was read", delay=delay
                ),
                "whatsapp_not_read": _(
                    "%(delay)s after the parent WhatsApp message was not read", delay=delay
                ),
                "whatsapp_reply": _(
                    "%(delay)s after the parent WhatsApp message was replied to", delay=delay
                ),
                "whatsapp_not_reply": _(
                    "%(delay)s after the parent WhatsApp message was not replied to", delay=delay
                ),
            }
        else:
            sentences = {
                "begin": _("At campaign start"),
                "after_parent": _("Right after the parent step"),
                "email_open": _("As soon as the parent e-mail is opened"),
                "email_not_open": _("Right after the parent e-mail, if it is not opened"),
                "email_click": _("As soon as the parent e-mail is clicked"),
                "email_not_click": _("Right after the parent e-mail, if it is not clicked"),
                "email_reply": _("As soon as the parent e-mail is replied to"),
                "email_not_reply": _("Right after the parent e-mail, if it is not replied to"),
                "email_bounce": _("As soon as the parent e-mail bounces"),
                "sms_click": _("As soon as the parent SMS is clicked"),
                "sms_not_click": _("Right after the parent SMS, if it is not clicked"),
                "whatsapp_read": _("As soon as the parent WhatsApp message is read"),
                "whatsapp_not_read": _(
                    "Right after the parent WhatsApp message, if it is not read"
                ),
                "whatsapp_reply": _("As soon as the parent WhatsApp message is replied to"),
                "whatsapp_not_reply": _(
                    "Right after the parent WhatsApp message, if it is not replied to"
                ),
            }
        return sentences.get(self.trigger_type, "")

    def _compute_statistics(self):
        stats = {
            (activity.id, state): count
            for activity, state, count in self.env["mkt.trace"]._read_group(
                [("activity_id", "in", self.ids), ("is_test", "=", False)],
                ["activity_id", "state"],
                ["__count"],
            )
        }
        for activity in self:
            activity.processed_count = stats.get((activity.id, "processed"), 0)
            activity.rejected_count = stats.get((activity.id, "rejected"), 0)
            activity.failed_count = stats.get((activity.id, "failed"), 0)
            activity.canceled_count = stats.get((activity.id, "canceled"), 0)
            activity.scheduled_count = stats.get((activity.id, "scheduled"), 0) + stats.get(
                (activity.id, "processing"), 0
            )
            done = activity.processed_count + activity.rejected_count + activity.failed_count
            activity.success_rate = 100.0 * activity.processed_count / done if done else 0.0

    @api.constrains("interval_number")
    def _check_interval_number(self):
        for activity in self:
            if activity.interval_number < 0:
                raise ValidationError(
                    self.env._("The delay of step %(step)s cannot be negative.", step=activity.name)
                )

    @api.constrains("trigger_type", "parent_id", "activity_type")
    def _check_trigger(self):
        for activity in self:
            trigger = activity.trigger_type
            label = dict(self._fields["trigger_type"]._description_selection(self.env))[trigger]
            if trigger == "begin":
                if activity.parent_id:
                    raise ValidationError(
                        self.env._(
                            "Step %(step)s starts at campaign start, so it cannot have a parent.",
                            step=activity.name,
                        )
                    )
                continue
            if not activity.parent_id:
                raise ValidationError(
                    self.env._(
                        "Step %(step)s is triggered by '%(trigger)s': choose its parent step.",
                        step=activity.name,
                        trigger=label,
                    )
                )
            if activity.parent_id.campaign_id != activity.campaign_id:
                raise ValidationError(
                    self.env._(
                        "The parent of step %(step)s belongs to another campaign.",
                        step=activity.name,
                    )
                )
            allowed = (
                EVENT_TRIGGERS.get(trigger) or NEGATIVE_TRIGGERS.get(trigger) or (None, None)
            )[1]
            if allowed and activity.parent_id.activity_type not in allowed:
                raise ValidationError(
                    self.env._(
                        "Step %(step)s is triggered by '%(trigger)s', but its parent "
                        "%(parent)s is not a %(kind)s step.",
                        step=activity.name,
                        trigger=label,
                        parent=activity.parent_id.name,
                        kind={("sms",): "SMS", ("whatsapp",): "WhatsApp"}.get(
                            allowed, self.env._("e-mail")
                        ),
                    )
                )
        if self._has_cycle():
            raise ValidationError(self.env._("The workflow's steps cannot form a loop."))

    @api.constrains("domain")
    def _check_domain(self):
        for activity in self:
            activity._get_domain()

    @api.model_create_multi
    def create(self, vals_list):
        # the author's rights decide what the content may contain (checked
        # here, in the author's environment: the engine renders it later)
        for vals in vals_list:
            campaign = self.env["mkt.campaign"].browse(vals.get("campaign_id"))
            self._check_content_rights(vals, campaign.model_name)
        # the content lives on the step's mailing, which exists only after create
        contents = [
            {fname: vals.pop(fname) for fname in CONTENT_FIELDS if fname in vals}
            for vals in vals_list
        ]
        activities = super().create(vals_list)
        contents = [
            activity._content_for_type(content)
            for activity, content in zip(activities, contents, strict=False)
        ]
        # the author may run the server action (constraints run as superuser)
        if not self.env.su:
            for activity in activities.filtered("server_action_id"):
                activity._check_server_action_user(self.env.user)
        activities._sync_mailing()
        for activity, content in zip(activities, contents, strict=False):
            if content and activity.mailing_id:
                # written in the author's environment: mailing.mailing checks
                # the template-editor restriction on write
                activity.mailing_id.write(content)
        activities._sync_mailing_name()
        return activities

    def write(self, vals):
        model_names = set(self.mapped("campaign_id.model_name"))
        if vals.get("campaign_id"):
            # read with the user's rights: a step is never moved to a campaign
            # they may not read (another company's; the rules check no write's result)
            campaign = self.env["mkt.campaign"].browse(vals["campaign_id"])
            model_names.add(campaign.model_name)
        for model_name in model_names or {False}:
            self._check_content_rights(vals, model_name)
        content = {fname: vals.pop(fname) for fname in CONTENT_FIELDS if fname in vals}
        res = super().write(vals)
        if content and len(set(self.mapped("activity_type"))) == 1:
            content = self[:1]._content_for_type(content)
        if vals.get("server_action_id") and not self.env.su:
            for activity in self:
                activity._check_server_action_user(self.env.user)
        if {"activity_type", "name", "campaign_id"} & set(vals) or content:
            self._sync_mailing()
        if content:
            self.mailing_id.write(content)
        if content or {"name", "campaign_id"} & set(vals):
            self._sync_mailing_name()
        return res

    def unlink(self):
        # the steps under these go with them (parent_id ondelete cascade)
        subtree = self.with_context(active_test=False).search([("id", "child_of", self.ids)])
        ids = subtree.ids
        res = super().unlink()
        # queue rows have no foreign key (engine_fields.py)
        self.env["mkt.trace"]._unlink_queue("activity_id", ids)
        return res

    def copy_data(self, default=None):
        vals_list = super().copy_data(default=default)
        for activity, vals in zip(self, vals_list, strict=False):
            if activity.mailing_id and "mailing_id" not in (default or {}):
                vals["mailing_id"] = activity.mailing_id.copy().id
        return vals_list

    # ------------------------------------------------------------------
    # Content
    # ------------------------------------------------------------------

    def _content_for_type(self, content):
        """The part of the form's content that belongs to the step's channel:
        an SMS step's form also carries the (empty, hidden) e-mail subject and
        body, which must not reach its mailing (its subject is required)."""
        keep = {
            "email": ("subject", "body_html"),
            "sms": ("body_plaintext",),
        }.get(self.activity_type, ())
        return {fname: value for fname, value in content.items() if fname in keep or value}

    @api.model
    def _check_content_rights(self, values, model_name):
        """Refuse content that only a Mail Template Editor may write, as
        ``mail.render.mixin._check_access_right_dynamic_template`` does for
        mailings and templates: a user who is no template editor (with the
        setting ``mail.restrict.template.rendering``) may only use simple
        placeholders such as ``{{ object.name }}``. ``values``: field -> text
        (a step name is also the default subject of its mailing)."""
        if self.env.su or self.env.user.has_group("mail.group_mail_template_editor"):
            return
        Render = self.env["mail.render.mixin"]
        for fname, engine in (*RENDERED_FIELDS.items(), ("name", "inline_template")):
            source = values.get(fname)
            if not source or not isinstance(source, str):
                continue
            if engine == "qweb":
                unsafe = Render._has_unsafe_expression_template_qweb(source, model_name)
            else:
                unsafe = Render._has_unsafe_expression_template_inline_template(source, model_name)
            if unsafe:
                raise AccessError(
                    self.env._(
                        "Only members of %(group_name)s group are allowed to edit templates "
                        "containing sensible placeholders: simple placeholders such as "
                        "{{ object.name }} are allowed, not %(content)s.",
                        group_name=self.env.ref("mail.group_mail_template_editor").name,
                        content=source,
                    )
                )

    def _check_server_action_user(self, user, campaign=None):
        """The step's server action may be run by ``user`` (the step's author,
        or the responsible of ``campaign`` when it runs): the action's own
        group restriction (``group_ids``), as ``ir.actions.server`` checks it."""
        self.ensure_one()
        self.server_action_id._mkt_check_user(self, user, campaign)

    def _sync_mailing(self):
        """E-mail and SMS steps keep their content in a ``mailing.mailing`` that
        targets the campaign's model and is attributed to its UTM campaign."""
        # the mailing's technical values are the engine's (as superuser); the
        # only user text written here is the step's name as default subject,
        # checked with the user's rights in create() / write() first
        Mailing = self.env["mailing.mailing"].sudo()
        for activity in self:
            if activity.activity_type not in ("email", "sms"):
                continue
            campaign = activity.campaign_id
            mailing_type = "mail" if activity.activity_type == "email" else "sms"
            values = {
                "mailing_type": mailing_type,
                "mailing_model_id": campaign.model_id.id,
                "mailing_domain": "[]",
                "mkt_activity_id": activity.id,
                "campaign_id": campaign.utm_campaign_id.id,
            }
            # the engine's technical values only (see above): a write as the user would
            # re-check the whole body against their template-editor right
            mailing = activity.mailing_id.sudo()
            if not mailing:
                values.update(
                    {
                        "subject": activity.name,
                        "body_arch": False,
                        "body_html": False,
                    }
                )
                if mailing_type == "mail":
                    values["email_from"] = (
                        self.env.user.email_formatted
                        or self.env.company.email_formatted
                        or self.env["ir.mail_server"]._get_default_from_address()
                    )
                activity.mailing_id = Mailing.create(values)
            else:
                values = {
                    fname: value
                    for fname, value in values.items()
                    if mailing._fields[fname].convert_to_write(mailing[fname], mailing) != value
                    and not (fname == "campaign_id" and not value)
                }
                if values:
                    mailing.write(values)

    def _sync_mailing_name(self):
        """The UTM source of a step's mailing, which its tracked links carry as
        utm_source, is named after the campaign and the step: Email Marketing
        would name it after the raw subject, placeholders included."""
        for activity in self.filtered("mailing_id"):
            name = f"{activity.campaign_id.name} - {activity.name}"
            # the engine's value, the name only: a write as the user would re-check
            # the whole body against their template-editor right
            mailing = activity.mailing_id.sudo()
            if not (mailing.name or "").startswith(name):
                mailing.name = name

    def action_edit_content(self):
        self.ensure_one()
        self._sync_mailing()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mailing.mailing",
            "res_id": self.mailing_id.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }

    def action_view_traces(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mkt_campaign.mkt_trace_action")
        action["domain"] = [("activity_id", "=", self.id)]
        return action

    # ------------------------------------------------------------------
    # Checks and helpers
    # ------------------------------------------------------------------

    def _get_domain(self):
        self.ensure_one()
        return self.campaign_id._parse_domain(
            self.domain,
            self.campaign_id.model_name,
            self.env._("step %(name)s", name=self.name),
        )

    def _check_launchable(self):
        for activity in self:
            activity._get_domain()
            if activity.activity_type in ("email", "sms"):
                activity.mailing_id._mkt_check_content(activity)
            elif activity.activity_type == "push":
                activity._check_push_content()
            elif activity.activity_type == "whatsapp":
                template = activity.whatsapp_template_id
                if not template:
                    raise ValidationError(
                        self.env._(
                            "Step %(step)s sends a WhatsApp message: choose its template.",
                            step=activity.name,
                        )
                    )
                if template.status != "approved":
                    raise ValidationError(
                        self.env._(
                            "The WhatsApp template %(template)s of step %(step)s is not approved "
                            "by WhatsApp (status: %(status)s): submit it and wait for approval.",
                            template=template.name,
                            step=activity.name,
                            status=dict(
                                template._fields["status"]._description_selection(self.env)
                            )[template.status],
                        )
                    )
                if template.model != activity.campaign_id.model_name:
                    raise ValidationError(
                        self.env._(
                            "The WhatsApp template %(template)s of step %(step)s applies to "
                            "%(model)s, not to the campaign's target.",
                            template=template.name,
                            step=activity.name,
                            model=template.model_id.name,
                        )
                    )
            elif activity.activity_type == "server_action":
                # sudo: server actions are readable by administrators only,
                # the step's is read to be checked (who may run it: at save
                # and when it runs)
                action = activity.server_action_id.sudo()
                if not action:
                    raise ValidationError(
                        self.env._(
                            "Step %(step)s runs a server action: choose which one.",
                            step=activity.name,
                        )
                    )
                if action.model_id.model != activity.campaign_id.model_name:
                    raise ValidationError(
                        self.env._(
                            "The server action %(action)s of step %(step)s applies to "
                            "%(model)s, not to the campaign's target.",
                            action=action.name,
                            step=activity.name,
                            model=action.model_id.name,
                        )
                    )

    def _check_push_content(self):
        """A push step needs a title and a text whose placeholders render (on a
        record of the target, when there is one)."""
        self.ensure_one()
        if not (self.push_title or "").strip() or not (self.push_body or "").strip():
            raise ValidationError(
                self.env._(
                    "Step %(step)s sends a push notification: write its title and text.",
                    step=self.name,
                )
            )
        # a record the user may read: the texts are rendered with their rights
        sample = self.env[self.campaign_id.model_name].search([], limit=1)
        for label, source in (
            (self.env._("title"), self.push_title),
            (self.env._("text"), self.push_body),
        ):
            try:
                self._render_push(source, sample.ids)
            except Exception as error:  # noqa: BLE001 - any rendering error is the user's input
                raise ValidationError(
                    self.env._(
                        "The %(what)s of step %(step)s does not render: %(error)s",
                        what=label,
                        step=self.name,
                        error=error,
                    )
                ) from error

    def _render_push(self, source, res_ids):
        """{res_id: rendered text} of a push title or text, rendered with the
        rights of the current user (the author when checked at launch; the
        engine later renders what the author's rights allowed at write time)."""
        self.ensure_one()
        Render = self.env["mail.render.mixin"]
        if not (self.env.su or self.env.user.has_group("mail.group_mail_template_editor")) and (
            Render._has_unsafe_expression_template_inline_template(
                source or "", self.campaign_id.model_name
            )
        ):
            # beyond simple placeholders: only a template editor can have
            # written it (every write by a user is checked, _check_content_rights),
            # so a campaign user launching the editor's step renders it as a
            # mailing's content renders (_unrestricted_rendering), with their rights
            Render = self.env["mailing.mailing"]
        return Render._render_template(
            source,
            self.campaign_id.model_name,
            res_ids,
            engine="inline_template",
        )

    # ------------------------------------------------------------------
    # Channels
    # ------------------------------------------------------------------

    def _mkt_channel(self):
        """The channel registry: the channel (``MktChannel``) executing the
        steps of this activity's type, or None for a type no channel serves.
        The queue dispatches through it only (mkt.trace._execute_channel
        documents the adapter contract).

        A module adds a channel as ``mass_mailing_sms`` adds SMS: a
        ``selection_add`` on ``activity_type`` and an override of this
        method returning its adapter, e.g.::

            def _mkt_channel(self):
                if self.activity_type == "fax":
                    return MktChannel(self.fax_template_id._mkt_execute)
                return super()._mkt_channel()
        """
        self.ensure_one()
        match self.activity_type:
            case "email" | "sms":
                return MktChannel(self.mailing_id._mkt_execute)
            case "whatsapp":
                return MktChannel(self.whatsapp_template_id._mkt_execute)
            case "push":
                return MktChannel(self.env["mkt.push.token"]._mkt_execute)
            case "server_action":
                return MktChannel(self._execute_server_action, sends_messages=False)
        return None

    def _mkt_sends_messages(self):
        """Whether this step's channel sends messages out of the database (an
        unknown channel counts as one: never run twice)."""
        channel = self._mkt_channel()
        return channel.sends_messages if channel else True

    def _execute_server_action(self, traces):
        """Channel adapter of server-action steps: run the step's server
        action on the records of ``traces``. Moved from
        ``mkt.trace._execute_server_action`` (whose ``self`` was the traces
        and ``activity`` the step)."""
        activity = self
        action = activity.server_action_id
        campaign = activity.campaign_id
        model = campaign.model_name
        res_ids = traces.mapped("res_id")
        try:
            # the campaign's responsible must be allowed to run the action (its
            # own group restriction), as when the step was saved: a change of
            # responsible or of the action's groups since then stops it here
            activity._check_server_action_user(campaign.user_id, campaign)
        except UserError as e:  # AccessError included
            return {trace: ("failed", str(e)) for trace in traces}
        try:
            with self.env.cr.savepoint():
                action.with_context(
                    active_model=model,
                    active_ids=res_ids,
                    active_id=res_ids[0],
                ).run()
                self.env.flush_all()
        except Exception as e:  # noqa: BLE001 - the reason is kept on every step
            _logger.info("mkt_campaign: server action of step %s failed: %s", activity.id, e)
            return {trace: ("failed", str(e)) for trace in traces}
        return {}

    def _get_delay(self):
        self.ensure_one()
        return relativedelta(**{self.interval_type: self.interval_number})

    def _get_schedule_date(self, reference, ignore_delay=False):
        self.ensure_one()
        if ignore_delay:
            return reference
        return reference + self._get_delay()
