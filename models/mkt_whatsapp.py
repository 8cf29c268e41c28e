import json
import logging
import re

from odoo import api, fields, models
from odoo.exceptions import AccessError, RedirectWarning, UserError, ValidationError
from odoo.orm.models import NO_ACCESS
from odoo.tools import SQL

from ..tools.whatsapp_api import WhatsAppApi, WhatsAppError

_logger = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
TEMPLATE_STATUSES = [
    ("draft", "Draft"),
    ("pending", "Pending Approval"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("paused", "Paused"),
    ("disabled", "Disabled"),
]
# what changes a template's content: it must be approved again
CONTENT_FIELDS = {"template_name", "language", "category", "body", "variable_ids"}
# written by the engine only (WhatsApp's answers, Allow Multi), as superuser
ENGINE_FIELDS = ("status", "wa_template_id", "rejection_reason", "multi_action_id")
# fields never sent to WhatsApp, whoever wrote the template
SECRET_FIELDS = {
    "password",
    "new_password",
    "api_key_ids",
    "totp_secret",
    "signature",
    "totp_trusted_device_ids",
    "oauth_access_token",
    "signup_token",
}


class MktWhatsAppTemplate(models.Model):
    """A WhatsApp message template: only templates approved by WhatsApp may
    start a conversation. Its body holds numbered placeholders ({{1}}, {{2}}…)
    filled from fields of the record messaged, or from keys of the campaign
    participant's payload."""

    _name = "mkt.whatsapp.template"
    _description = "WhatsApp Template"
    _order = "name, id"

    name = fields.Char(required=True)
    template_name = fields.Char(
        required=True,
        help="Name registered with WhatsApp: lowercase letters, digits and underscores.",
    )
    language = fields.Char(required=True, default="en_US", help="e.g. en_US, pt_BR, fr.")
    category = fields.Selection(
        [("marketing", "Marketing"), ("utility", "Utility")], default="marketing", required=True
    )
    model_id = fields.Many2one(
        "ir.model",
        "Applies To",
        required=True,
        ondelete="cascade",
        default=lambda self: self.env["ir.model"]._get_id("res.partner"),
        help="The kind of records messaged with it: contacts, POS orders, leads…",
    )
    model = fields.Char(related="model_id.model")
    phone_field = fields.Char(
        required=True,
        default="phone",
        help="Field (path) of the record holding the number, e.g. phone, mobile, partner_id.phone.",
    )
    body = fields.Text(required=True, help="Placeholders {{1}}, {{2}}… are the variables below.")
    variable_ids = fields.One2many(
        "mkt.whatsapp.template.variable", "template_id", "Variables", copy=True
    )
    status = fields.Selection(
        TEMPLATE_STATUSES, default="draft", required=True, readonly=True, copy=False
    )
    wa_template_id = fields.Char("WhatsApp ID", readonly=True, copy=False)
    rejection_reason = fields.Char(readonly=True, copy=False)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)
    multi_action_id = fields.Many2one(
        "ir.actions.server",
        "Send Action",
        readonly=True,
        copy=False,
        ondelete="set null",
        help="The 'WhatsApp: …' entry in the Actions menu of the records' list.",
    )

    @api.constrains("template_name")
    def _check_template_name(self):
        for template in self:
            if not TEMPLATE_NAME.match(template.template_name or ""):
                raise ValidationError(
                    self.env._(
                        "WhatsApp template name %(name)s: use lowercase letters, digits and "
                        "underscores only (e.g. spring_sale).",
                        name=template.template_name,
                    )
                )

    @api.constrains("body", "variable_ids", "model_id", "phone_field")
    def _check_placeholders(self):
        for template in self:
            numbers = sorted({int(n) for n in PLACEHOLDER.findall(template.body or "")})
            if numbers != list(range(1, len(numbers) + 1)):
                raise ValidationError(
                    self.env._(
                        "Template %(name)s: number its placeholders {{1}}, {{2}}… without gaps.",
                        name=template.name,
                    )
                )
            defined = set(template.variable_ids.mapped("index"))
            if missing := [n for n in numbers if n not in defined]:
                raise ValidationError(
                    self.env._(
                        "Template %(name)s: placeholder {{%(number)s}} has no variable: say which "
                        "field fills it.",
                        name=template.name,
                        number=missing[0],
                    )
                )
            template._check_path(template.phone_field)
            for variable in template.variable_ids.filtered("field_path"):
                template._check_path(variable.field_path)

    def _check_path(self, path):
        """Every field of ``path`` exists and may be read by the author (the
        current user): the model's access rights and the field's ``groups``;
        secrets of users (password, API keys…) are never reachable. The
        engine reads the values later as superuser: this check at save is
        what keeps a variable within what its author may read."""
        Model = self.env[self.model]
        for part in (path or "").split("."):
            field = Model._fields.get(part)
            if not field:
                raise ValidationError(
                    self.env._(
                        "Template %(name)s: %(model)s has no field %(path)s.",
                        name=self.name,
                        model=self.model_id.name,
                        path=path,
                    )
                )
            readable = part not in SECRET_FIELDS and field.groups != NO_ACCESS
            if readable and not self.env.su:
                readable = (
                    Model.has_access("read")
                    and Model._has_field_access(field, "read")
                    and (not field.relational or self.env[field.comodel_name].has_access("read"))
                )
            if not readable:
                raise ValidationError(
                    self.env._(
                        "Template %(name)s: the field %(field)s of %(path)s is not readable by "
                        "you, so WhatsApp messages cannot show it.",
                        name=self.name,
                        field=part,
                        path=path,
                    )
                )
            if field.relational:
                Model = self.env[field.comodel_name]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_engine_fields(
                {
                    fname: value
                    for fname, value in vals.items()
                    if not (fname == "status" and value == "draft")
                }
            )
        templates = super().create(vals_list)
        templates._check_author_paths()
        return templates

    def write(self, vals):
        self._check_engine_fields(vals)
        if CONTENT_FIELDS & set(vals) and "status" not in vals:
            # WhatsApp approved the content as it was: it must review it again
            # (the engine's field, written as superuser)
            super().write(vals)
            # engine-only field (status), after the user's own write of the content
            super(MktWhatsAppTemplate, self.sudo()).write({"status": "draft"})
        else:
            super().write(vals)
        if {"phone_field", "variable_ids", "model_id"} & set(vals):
            self._check_author_paths()
        return True

    def _check_author_paths(self):
        """The phone field and the variables' fields, checked with the rights
        of the user writing them (constraints run as superuser)."""
        if self.env.su:
            return
        for template in self:
            template._check_path(template.phone_field)
            for variable in template.variable_ids.filtered("field_path"):
                template._check_path(variable.field_path)

    @api.model
    def _check_engine_fields(self, vals):
        """``readonly`` does not stop an RPC write: the approval status comes
        from WhatsApp and the Actions entry from 'Allow Multi' only."""
        forged = [fname for fname in ENGINE_FIELDS if fname in vals and vals[fname]]
        if forged and not self.env.su:
            raise AccessError(
                self.env._(
                    "%(fields)s of a WhatsApp template cannot be written: submit the template "
                    "to WhatsApp, refresh its status or use Allow Multi.",
                    fields=", ".join(self._fields[fname].string for fname in forged),
                )
            )

    # ------------------------------------------------------------------
    # Approval
    # ------------------------------------------------------------------

    def action_submit(self):
        """Submit the template to WhatsApp for approval."""
        # the answer is written as superuser below: only who may edit templates
        self.check_access("write")
        client = WhatsAppApi(self.env)
        for template in self:
            component = {"type": "BODY", "text": template.body}
            variables = template.variable_ids.sorted("index")
            if variables:
                component["example"] = {"body_text": [[v.sample or v._label() for v in variables]]}
            try:
                data = client.submit_template(
                    {
                        "name": template.template_name,
                        "language": template.language,
                        "category": template.category.upper(),
                        "components": [component],
                    }
                )
            except WhatsAppError as error:
                raise UserError(str(error)) from error
            # WhatsApp's answer: engine fields, written as superuser
            template.sudo().write(
                {
                    "wa_template_id": data.get("id"),
                    "status": (data.get("status") or "PENDING").lower(),
                    "rejection_reason": False,
                }
            )
        client.close()
        return True

    def action_refresh_status(self):
        """Read the approval status from WhatsApp."""
        self.check_access("write")
        client = WhatsAppApi(self.env)
        for template in self:
            try:
                remotes = client.get_templates(template.template_name)
            except WhatsAppError as error:
                raise UserError(str(error)) from error
            for remote in remotes:
                if (
                    remote.get("name") == template.template_name
                    and remote.get("language") == template.language
                ):
                    status = (remote.get("status") or "").lower()
                    reason = remote.get("rejected_reason")
                    # WhatsApp's answer: engine fields, written as superuser
                    template.sudo().write(
                        {
                            "status": status
                            if status in dict(TEMPLATE_STATUSES)
                            else template.status,
                            "wa_template_id": remote.get("id") or template.wa_template_id,
                            "rejection_reason": reason if reason and reason != "NONE" else False,
                        }
                    )
        client.close()
        return True

    @api.model
    def _cron_refresh_pending(self):
        pending = self.search([("status", "=", "pending")])
        if not pending:
            return
        try:
            pending.action_refresh_status()
        except UserError as error:
            _logger.warning("WhatsApp template approvals not refreshed: %s", error)

    def unlink(self):
        # ir.actions.server is admin-only: the template's own Actions menu entry
        self.multi_action_id.sudo().unlink()
        return super().unlink()

    # ------------------------------------------------------------------
    # Sending from a list (Allow Multi)
    # ------------------------------------------------------------------

    def action_allow_multi(self):
        """Add 'WhatsApp: <template>' to the Actions menu of the target's list
        (e.g. Point of Sale > Orders): it sends the template to the selected
        records."""
        self.check_access("write")
        for template in self:
            if template.status != "approved":
                raise UserError(
                    self.env._(
                        "Only a template approved by WhatsApp can be sent from a list: submit "
                        "%(name)s and wait for its approval.",
                        name=template.name,
                    )
                )
            if template.multi_action_id:
                continue
            # the action and its link are the engine's, created as superuser
            template.sudo().multi_action_id = (
                self.env["ir.actions.server"]
                .sudo()
                .create(
                    {
                        "name": self.env._("WhatsApp: %(name)s", name=template.name),
                        "model_id": template.model_id.id,
                        "binding_model_id": template.model_id.id,
                        "binding_view_types": "list,kanban",
                        "state": "code",
                        "code": f"action = env['mkt.whatsapp.template'].browse({template.id})"
                        "._send_to_records(records)",
                    }
                )
            )
        # the web client caches the Actions menus: reload it so that the new
        # entry is there at once
        return {"type": "ir.actions.client", "tag": "reload"}

    def action_disallow_multi(self):
        self.check_access("write")
        # ir.actions.server is admin-only: the template's own Actions menu entry
        self.multi_action_id.sudo().unlink()
        return {"type": "ir.actions.client", "tag": "reload"}

    @api.model
    def _raise_configure_templates(self, message):
        """``message`` with a Configure Templates button opening the templates."""
        raise RedirectWarning(
            message,
            self.env.ref("mkt_campaign.mkt_whatsapp_template_action").id,
            self.env._("Configure Templates"),
        )

    def _send_to_records(self, records):
        """Send this template to ``records`` now: a one-step campaign launched
        at once (queue, blacklist, caps and results as any campaign). Records
        sharing the customer of the phone field (partner_id.phone) get it once."""
        self.ensure_one()
        template = self
        if not template.exists() or template.status != "approved":
            self._raise_configure_templates(
                self.env._(
                    "This WhatsApp template is not approved (anymore): configure it in "
                    "Marketing > Configuration > WhatsApp Templates."
                )
            )
        if not records:
            raise UserError(self.env._("Select the records to send the message to."))
        records.check_access("read")
        first = template.phone_field.split(".")[0]
        field = self.env[template.model]._fields.get(first)
        unique = first if field and field.store and field.type in ("char", "many2one") else None
        Campaign = self.env["mkt.campaign"]
        campaign = Campaign._send_now(
            self.env._(
                "%(template)s – %(date)s",
                template=template.name,
                date=fields.Date.context_today(self),
            ),
            records,
            {
                "name": template.name,
                "activity_type": "whatsapp",
                "whatsapp_template_id": template.id,
            },
            unique_field=unique,
        )
        return Campaign._sent_notification(
            self.env._("WhatsApp message on its way"),
            self.env._(
                "%(count)s recipients enrolled in campaign %(campaign)s: the queue sends now.",
                count=campaign.participant_count,
                campaign=campaign.name,
            ),
        )

    # ------------------------------------------------------------------
    # Messages
    # ------------------------------------------------------------------

    @staticmethod
    def _read_path(record, path):
        value = record
        for part in path.split("."):
            if not isinstance(value, models.BaseModel):
                value = False
                break
            # a single record is read as is: a slice would lose the prefetch
            # of the batch (one query per record)
            value = (value if len(value) <= 1 else value[:1])[part]
        if isinstance(value, models.BaseModel):
            return value[:1].display_name or ""
        return "" if value is False or value is None else str(value)

    def _get_number(self, record):
        """The record's number in E.164 (+32470123456), or False."""
        raw = self._read_path(record, self.phone_field)
        if not raw:
            return False
        country = (
            record._fields.get("country_id") and record.country_id
        ) or self.env.company.country_id
        return record._phone_format(number=raw, country=country, force_format="E164") or False

    def _message_payload(self, number, record, payload=None):
        """The API request sending this template to ``number`` for ``record``.
        ``payload``: the campaign participant's payload (a dict) that payload
        variables read; None when there is no participant. An empty value
        (a field or a payload key that is missing) is sent as "-": WhatsApp
        refuses empty parameters."""
        self.ensure_one()
        template = {"name": self.template_name, "language": {"code": self.language}}
        variables = self.variable_ids.sorted("index")
        if variables:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": v._value(record, payload) or "-"}
                        for v in variables
                    ],
                }
            ]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": number,
            "type": "template",
            "template": template,
        }

    # ------------------------------------------------------------------
    # Channel adapter (WhatsApp steps of campaigns) and webhook
    # ------------------------------------------------------------------

    def _mkt_execute(self, traces):
        """Channel adapter of WhatsApp steps (contract: mkt.trace._execute_activity).

        Send this approved template (the step's) through the WhatsApp Cloud API:
        concurrent requests over one keep-alive HTTP session, paced to the
        number's rate (``mkt_campaign.whatsapp_rate``, tools/whatsapp_api.py).
        Numbers are normalized to E.164; missing, invalid and blacklisted
        numbers are rejected; throttling and outages are retried, other API
        errors end failed with the reason. Each message is sent once."""
        template = self
        activity = traces.activity_id
        try:
            client = WhatsAppApi(self.env)
        except UserError as error:
            return dict.fromkeys(traces, ("failed", str(error)))
        # the number's rate is shared by the queue's parallel jobs (Settings >
        # Parallel Queue Workers; each job runs in one process at a time):
        # each process paces to its share
        jobs = len(self.env["mkt.trace"]._queue_crons().filtered("active")) or 1
        client.config["rate"] = max(1, client.config["rate"] / jobs)
        Model = self.env[activity.campaign_id.model_name].with_context(active_test=False)
        records = {r.id: r for r in Model.browse(traces.mapped("res_id"))}
        payloads = {}
        if template.variable_ids.filtered("payload_key"):
            # the participants' payloads, one query for the chunk; as the
            # records above, read by the engine (sudo) for the message only
            participants = traces.participant_id.sudo()
            participants.fetch(["payload"])
            payloads = {p.id: p.payload for p in participants}
        numbers = {trace: template._get_number(records[trace.res_id]) for trace in traces}
        blacklisted = set(
            self.env["phone.blacklist"]
            .search([("number", "in", [n for n in numbers.values() if n])])
            .mapped("number")
        )
        outcome, to_send = {}, []
        for trace in traces:
            number = numbers[trace]
            if not number:
                outcome[trace] = ("rejected", self.env._("No valid phone number for WhatsApp."))
            elif number in blacklisted:
                outcome[trace] = ("rejected", self.env._("The phone number is blacklisted."))
            else:
                # payloads read from the records now: the requests run in threads
                to_send.append(
                    (
                        trace,
                        template._message_payload(
                            number,
                            records[trace.res_id],
                            payloads.get(trace.participant_id.id),
                        ),
                    )
                )
        sent = []
        if to_send:
            traces._mark_sending()
            answers = client.send_messages([payload for _trace, payload in to_send])
            for (trace, _payload), answer in zip(to_send, answers, strict=True):
                if isinstance(answer, WhatsAppError):
                    outcome[trace] = ("retry" if answer.transient else "failed", str(answer))
                else:
                    sent.append((trace.id, answer))
        client.close()
        if sent:
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    """UPDATE mkt_trace t SET whatsapp_message_id = v.message_id
                     FROM (VALUES %s) AS v(id, message_id) WHERE t.id = v.id""",
                    SQL(", ").join(SQL("(%s, %s)", trace_id, mid) for trace_id, mid in sent),
                )
            )
            traces.invalidate_recordset(["whatsapp_message_id"])
        return outcome

    @api.model
    def _process_webhook(self, payload):
        """Status updates and replies from the WhatsApp webhook (the
        controller verified its signature): 'read' is the step's open, a
        reply (a message whose context names ours) its reply, 'failed' after
        sending records the reason. Returns how many were used."""
        Trace = self.env["mkt.trace"]
        statuses, replies = [], []
        for entry in (payload or {}).get("entry", []):
            for change in entry.get("changes", []):
                value = change.get("value") or {}
                statuses += value.get("statuses") or []
                replies += [
                    m["context"]["id"]
                    for m in value.get("messages") or []
                    if (m.get("context") or {}).get("id")
                ]
        ids = {s.get("id") for s in statuses} | set(replies)
        traces = Trace.search([("whatsapp_message_id", "in", list(ids))]) if ids else Trace
        by_message = {t.whatsapp_message_id: t for t in traces}
        read, replied, failed = Trace.browse(), Trace.browse(), {}
        used = 0
        for status in statuses:
            trace = by_message.get(status.get("id"))
            if not trace:
                continue
            used += 1
            if status.get("status") == "read":
                read |= trace
            elif status.get("status") == "failed":
                errors = status.get("errors") or [{}]
                failed[trace] = self.env._(
                    "WhatsApp could not deliver the message: %(error)s",
                    error=errors[0].get("title")
                    or errors[0].get("message")
                    or errors[0].get("code"),
                )
        for message_id in replies:
            if trace := by_message.get(message_id):
                used += 1
                replied |= trace
        # WhatsApp accepted the message, then could not deliver it: the step
        # failed (it is not counted as sent) and its follow-ups are canceled.
        # A message already read or replied to was delivered: a late or
        # repeated status never moves it backwards.
        for trace, reason in failed.items():
            if trace not in read and trace not in replied:
                trace._fail_after_sending(reason)
        # one event call per kind for the whole payload (WhatsApp batches them)
        read._process_event("open", "whatsapp")
        replied._process_event("reply", "whatsapp")
        return used


class MktWhatsAppTemplateVariable(models.Model):
    _name = "mkt.whatsapp.template.variable"
    _description = "WhatsApp Template Variable"
    _order = "index"

    template_id = fields.Many2one(
        "mkt.whatsapp.template", required=True, ondelete="cascade", index=True
    )
    index = fields.Integer("Placeholder", required=True, default=1, help="n of {{n}}.")
    field_path = fields.Char(
        "Field",
        help="Field (path) of the record, e.g. name, partner_id.name. Leave it empty to "
        "use a payload key.",
    )
    payload_key = fields.Char(
        help="Key of the campaign participant's payload (the custom data of each "
        "recipient, e.g. coupon) whose value fills the placeholder instead of a field. "
        "A recipient without it gets '-'.",
    )
    sample = fields.Char(help="Example value shown to WhatsApp's reviewers.")

    @api.constrains("field_path", "payload_key", "template_id")
    def _check_field_path(self):
        # a variable written on its own (not through its template) is checked too
        for variable in self:
            if bool(variable.field_path) == bool(variable.payload_key):
                raise ValidationError(
                    self.env._(
                        "Template %(name)s: placeholder {{%(number)s}} is filled either from a "
                        "field or from a payload key: give one of them.",
                        name=variable.template_id.name,
                        number=variable.index,
                    )
                )
            if variable.payload_key:
                if not variable.payload_key.strip() or len(variable.payload_key) > 64:
                    raise ValidationError(
                        self.env._(
                            "Template %(name)s: the payload key of placeholder {{%(number)s}} "
                            "must be a short name (at most 64 characters).",
                            name=variable.template_id.name,
                            number=variable.index,
                        )
                    )
                continue
            variable.template_id._check_path(variable.field_path)

    def _label(self):
        """What the variable reads, as the user wrote it: the field path, or
        payload.<key>. Shown where there is no value (the preview of a
        payload key without a participant, the sample sent for review)."""
        self.ensure_one()
        return f"payload.{self.payload_key}" if self.payload_key else self.field_path

    def _value(self, record, payload=None):
        """The text of the variable for ``record``: the field of the record,
        or the key of ``payload`` (the participant's payload, a dict; None
        when there is no participant). Empty when the value is missing."""
        self.ensure_one()
        if not self.payload_key:
            return self.template_id._read_path(record, self.field_path)
        value = payload.get(self.payload_key) if isinstance(payload, dict) else None
        if value is None or value is False:
            return ""
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        return str(value)

    @api.model_create_multi
    def create(self, vals_list):
        variables = super().create(vals_list)
        variables.template_id._check_author_paths()
        return variables

    def write(self, vals):
        res = super().write(vals)
        if {"field_path", "payload_key", "template_id"} & set(vals):
            self.template_id._check_author_paths()
        return res
