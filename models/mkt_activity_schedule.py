import logging

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from .mkt_activity import EVENT_TRIGGERS, NEGATIVE_TRIGGERS
from .mkt_trace import EVENT_FIELDS

_logger = logging.getLogger(__name__)

# expiry unit -> PostgreSQL interval unit (mkt.trace._expire_overdue)
EXPIRY_UNITS = {"hours": "hours", "days": "days", "weeks": "weeks"}
# a change of these in a running campaign's step may call for Update
WORKFLOW_FIELDS = {
    "parent_id",
    "trigger_type",
    "interval_number",
    "interval_type",
    "activity_type",
    "date_field_id",
    "date_direction",
    "date_yearly",
    "campaign_id",
}


class MktActivity(models.Model):
    """Date triggers, expiry and the content's starting point of a step
    (issue 10, items 6 and 8)."""

    _inherit = "mkt.activity"

    trigger_type = fields.Selection(
        selection_add=[("record_date", "On a date of the record")],
        ondelete={"record_date": "set default"},
    )
    date_field_id = fields.Many2one(
        "ir.model.fields",
        ondelete="cascade",
        domain="[('model', '=', model_name), ('ttype', 'in', ('date', 'datetime')), "
        "('store', '=', True)]",
        help="The step runs the delay before or after this date of the participant's "
        "record (a birthday, a contract end, a last purchase).",
    )
    date_direction = fields.Selection(
        [("before", "Before the date"), ("after", "After the date")],
        "Before / After",
        default="before",
    )
    date_yearly = fields.Boolean(
        "Every Year",
        help="The day and month of the date count, each year: birthdays, anniversaries, "
        "contract renewals. The step runs the delay before or after the next anniversary "
        "of the date (February 29 falls on February 28 in other years). A participant "
        "gets the step once: to get it again next year, set the campaign's Re-entry "
        "After (days) between the step's expiry and a year, e.g. 300 days.",
    )
    expiry_number = fields.Integer(
        "Expires After",
        default=0,
        help="A step not executed within this time after it came due is canceled with "
        "that reason (a sale that ended, a late reminder). 0: it never expires.",
    )
    expiry_type = fields.Selection(
        [("hours", "Hours"), ("days", "Days"), ("weeks", "Weeks")],
        "Expiry Unit",
        default="days",
        required=True,
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        "Start From Template",
        ondelete="set null",
        domain="[('model', '=', model_name)]",
        help="Copies the subject and body of an e-mail template of the campaign's target "
        "into the step, as a starting point.",
    )
    preview_html = fields.Html(
        "Preview",
        compute="_compute_preview_html",
        sanitize=False,
        help="The e-mail rendered for the first record of the campaign's audience.",
    )

    @api.depends("subject", "body_html", "campaign_id", "activity_type")
    def _compute_preview_html(self):
        for activity in self:
            activity.preview_html = activity._render_preview()

    @api.depends("date_field_id", "date_direction", "date_yearly")
    def _compute_trigger_description(self):
        return super()._compute_trigger_description()

    def _trigger_sentence(self):
        """ "3 days before Birthday": the date trigger in words."""
        if self.trigger_type != "record_date":
            return super()._trigger_sentence()
        _ = self.env._
        field = self.date_field_id.field_description or _("the date")
        if self.date_yearly:
            if not self.interval_number:
                return _("On %(field)s, every year", field=field)
            if self.date_direction == "after":
                return _(
                    "%(delay)s after %(field)s, every year",
                    delay=self._delay_words(),
                    field=field,
                )
            return _(
                "%(delay)s before %(field)s, every year", delay=self._delay_words(), field=field
            )
        if not self.interval_number:
            return _("On %(field)s", field=field)
        if self.date_direction == "after":
            return _("%(delay)s after %(field)s", delay=self._delay_words(), field=field)
        return _("%(delay)s before %(field)s", delay=self._delay_words(), field=field)

    def _render_preview(self):
        """The e-mail rendered for the first record of the audience the
        current user may read, with that user's rights (record rules and the
        template-editor restriction apply as when they write it)."""
        self.ensure_one()
        campaign = self.campaign_id
        if self.activity_type != "email" or not campaign.model_name or not self.body_html:
            return False
        try:
            record = self.env[campaign.model_name].search(campaign._get_audience_domain(), limit=1)
        except (UserError, ValidationError):
            # a filter being edited: the preview waits for a valid one
            record = self.env[campaign.model_name]
        if not record:
            return Markup("<p class='text-muted'>%s</p>") % self.env._(
                "No record of the audience to preview the e-mail with."
            )
        Render = self.env["mail.render.mixin"]
        try:
            subject = Render._render_template(
                self.subject or "",
                campaign.model_name,
                record.ids,
                engine="inline_template",
            )[record.id]
            body = Render._render_template(
                self.body_html,
                campaign.model_name,
                record.ids,
                engine="qweb",
                options={"post_process": True},
            )[record.id]
        except Exception as error:  # noqa: BLE001 - any rendering error is the author's input
            return Markup("<p class='text-danger'>%s</p>") % self.env._(
                "The e-mail does not render: %(error)s",
                error=error,
            )
        return Markup(
            "<p class='text-muted mb-1'>%s</p><p><strong>%s</strong></p><div>%s</div>"
        ) % (
            self.env._("Rendered for %(record)s", record=record.display_name),
            subject,
            Markup(body),
        )

    @api.model_create_multi
    def create(self, vals_list):
        activities = super().create(vals_list)
        activities._flag_workflow_change()
        return activities

    def write(self, vals):
        res = super().write(vals)
        if WORKFLOW_FIELDS & set(vals):
            self._flag_workflow_change()
        return res

    def _flag_workflow_change(self):
        """A running campaign whose steps were added or re-wired offers Update."""
        campaigns = self.campaign_id.filtered(lambda c: c.state == "running" and not c.needs_update)
        # the engine's flag (mkt.campaign._check_engine_fields)
        campaigns.sudo().write({"needs_update": True})

    @api.onchange("mail_template_id")
    def _onchange_mail_template_id(self):
        """Copy the template's subject and body as the step's starting point."""
        template = self.mail_template_id
        if template:
            if template.subject:
                self.subject = template.subject
            if template.body_html:
                self.body_html = template.body_html

    @api.constrains("trigger_type", "parent_id", "activity_type")
    def _check_trigger(self):
        # a step on a date of the record may be a first step (queued when its
        # record is enrolled) or follow a parent (queued once it ran)
        dated = self.filtered(lambda a: a.trigger_type == "record_date")
        res = super(MktActivity, self - dated)._check_trigger()
        for activity in dated.filtered("parent_id"):
            if activity.parent_id.campaign_id != activity.campaign_id:
                raise ValidationError(
                    self.env._(
                        "The parent of step %(step)s belongs to another campaign.",
                        step=activity.name,
                    )
                )
        if dated._has_cycle():
            raise ValidationError(self.env._("The workflow's steps cannot form a loop."))
        return res

    @api.constrains("trigger_type", "date_field_id", "campaign_id")
    def _check_date_field(self):
        for activity in self.filtered(lambda a: a.trigger_type == "record_date"):
            field = activity.date_field_id
            if not field:
                raise ValidationError(
                    self.env._(
                        "Step %(step)s runs on a date of the record: choose which date.",
                        step=activity.name,
                    )
                )
            if (
                field.model != activity.campaign_id.model_name
                or field.ttype not in ("date", "datetime")
                or not field.store
            ):
                raise ValidationError(
                    self.env._(
                        "The date %(field)s of step %(step)s is not a stored date of the "
                        "campaign's target.",
                        field=field.field_description,
                        step=activity.name,
                    )
                )

    @api.constrains("expiry_number")
    def _check_expiry_number(self):
        for activity in self:
            if activity.expiry_number < 0:
                raise ValidationError(
                    self.env._(
                        "The expiry of step %(step)s cannot be negative.", step=activity.name
                    )
                )

    def _get_schedule_date(self, reference, ignore_delay=False):
        # a step on a record's date is queued now: the queue dates it from
        # its record when it first comes up (mkt.trace._apply_record_date)
        if self.trigger_type == "record_date":
            return reference
        return super()._get_schedule_date(reference, ignore_delay)

    def _get_expiry(self):
        """How long a due step of this activity may wait (False: forever)."""
        self.ensure_one()
        if self.expiry_number <= 0:
            return False
        return relativedelta(**{EXPIRY_UNITS[self.expiry_type]: self.expiry_number})

    def _next_yearly_target(self, value, earliest, last=None):
        """When a yearly step on the date ``value`` runs next: the delay
        before / after the first anniversary of ``value`` (its own year
        included) whose result is not before ``earliest`` (now less the late
        window) and after ``last`` (when a past participation got the step).
        February 29 falls on February 28 in other years (relativedelta clips
        it); a date-time keeps its time of day."""
        self.ensure_one()
        delay = self._get_delay()
        before = self.date_direction != "after"

        def target(year):
            anniversary = value + relativedelta(year=year)
            return anniversary - delay if before else anniversary + delay

        bound = max(earliest, last) if last else earliest
        # the anniversary we need is in the year of the bound moved by the
        # delay, or the next one: start a year below, never past the answer
        year = max(value.year, (bound + delay if before else bound - delay).year - 1)
        while target(year) < earliest or (last and target(year) <= last):
            year += 1
        return target(year)

    def _update_trigger_condition(self):
        """SQL on the parent step ``t``: whether this step's trigger fired for
        it, as the queue and the tracking events decide it."""
        self.ensure_one()
        trigger = self.trigger_type
        if trigger in EVENT_TRIGGERS:
            column = EVENT_FIELDS[EVENT_TRIGGERS[trigger][0]]
            return SQL("t.%s IS NOT NULL", SQL.identifier(column))
        # a bounce cancels the time-based children of a message
        not_bounced = SQL("t.bounce_datetime IS NULL")
        if trigger in NEGATIVE_TRIGGERS:
            column = EVENT_FIELDS[NEGATIVE_TRIGGERS[trigger][0]]
            return SQL("%s AND t.%s IS NULL", not_bounced, SQL.identifier(column))
        return not_bounced
