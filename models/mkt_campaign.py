import logging
from datetime import date, datetime, time

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import api, fields, models, modules
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.fields import Domain
from odoo.tools import SQL
from odoo.tools.safe_eval import safe_eval

_logger = logging.getLogger(__name__)

SAMPLE_SIZE = 10
AUDIENCE_FIELDS = (
    "model_name",
    "domain",
    "registered_days",
    "mailing_list_ids",
    "previous_ids.condition",
    "previous_ids.previous_campaign_id",
    "previous_ids.engagement",
    "refinement_ids.kind",
    "refinement_ids.res_id",
    "refinement_ids.record_ref",
)
# written by the engine only (as superuser): never by a user, even over RPC
ENGINE_FIELDS = ("state", "last_sync_date", "utm_campaign_id", "is_paused", "paused_date")


class MktCampaign(models.Model):
    _name = "mkt.campaign"
    _description = "Marketing Campaign"
    _inherit = ["mail.thread"]
    _order = "create_date desc, id desc"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company, index=True)
    user_id = fields.Many2one(
        "res.users", "Responsible", default=lambda self: self.env.user, tracking=True
    )
    utm_campaign_id = fields.Many2one(
        "utm.campaign",
        "UTM Campaign",
        ondelete="restrict",
        copy=False,
        readonly=True,
        help="Attributes the campaign's mailings, links and the revenue they bring.",
    )
    model_id = fields.Many2one(
        "ir.model",
        "Target",
        required=True,
        ondelete="cascade",
        domain=[("is_mailing_enabled", "=", True)],
        default=lambda self: self.env["ir.model"]._get_id("res.partner"),
        help="The kind of records the campaign targets: contacts, leads, POS orders…",
    )
    model_name = fields.Char("Target Model", related="model_id.model", store=True, readonly=True)
    domain = fields.Char(
        "Filter",
        default="[]",
        required=True,
        help="Only records matching this filter are enrolled.",
    )
    unique_field_id = fields.Many2one(
        "ir.model.fields",
        ondelete="set null",
        domain="[('model_id', '=', model_id), ('store', '=', True), "
        "('ttype', 'in', ('char', 'many2one', 'integer', 'selection'))]",
        help="Records sharing a value of this field (an e-mail, a customer…) are "
        "enrolled once: the first record found represents them all.",
    )
    mode = fields.Selection(
        [
            ("test", "Test"),
            ("test_realtime", "Test in real time"),
            ("manual", "Manual confirmation"),
            ("normal", "Normal"),
        ],
        default="normal",
        required=True,
        tracking=True,
        help="Test: runs the whole workflow at once, ignoring delays and executing "
        "no action: only the queue is produced.\n"
        "Test in real time: delays are respected, no action is executed.\n"
        "Manual confirmation: every due step waits for a user to confirm it.\n"
        "Normal: everything runs automatically.",
    )
    state = fields.Selection(
        [("draft", "Draft"), ("running", "Running"), ("stopped", "Stopped")],
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    schedule_date = fields.Datetime(
        "Start Date",
        copy=False,
        help="When set, the campaign enrols its audience at that moment.",
    )
    auto_entry = fields.Boolean(
        "Enrol New Matches",
        default=True,
        help="Records that start to match the filter after the launch are enrolled "
        "by the hourly synchronisation. When off, the audience is frozen at launch.",
    )
    last_sync_date = fields.Datetime("Last Enrolment", readonly=True, copy=False)
    is_paused = fields.Boolean(
        "Paused",
        readonly=True,
        copy=False,
        tracking=True,
        help="A paused campaign holds its pending steps in the queue (nothing is "
        "canceled) until it is resumed; new matching records are still enrolled.",
    )
    paused_date = fields.Datetime("Paused Since", readonly=True, copy=False)
    audience = fields.Selection(
        [("customers", "Customers"), ("leads", "Leads"), ("custom", "Other Records")],
        default="custom",
        required=True,
        help="Customers: contacts with at least one POS order, sale order or invoice.",
    )
    registered_days = fields.Integer(
        "Registered Within (days)",
        default=0,
        help="Only records created in the last N days. 0: no limit.",
    )
    mailing_list_ids = fields.Many2many(
        "mailing.list",
        string="Distribution Lists",
        help="Only records subscribed (and not opted out) to one of these lists: mailing "
        "list contacts themselves, or records whose e-mail is on a list.",
    )
    previous_ids = fields.One2many(
        "mkt.campaign.previous", "campaign_id", "Previous Campaigns", copy=True
    )
    refinement_ids = fields.One2many(
        "mkt.campaign.refinement", "campaign_id", "Manual Refinement", copy=True
    )
    sample_html = fields.Html("Sample", compute="_compute_sample_html", sanitize=False)
    reentry_days = fields.Integer(
        "Re-entry After (days)",
        default=0,
        help="A record that completed or left the campaign may enter it again after "
        "this many days, and then receives the steps again. 0: never again. For a "
        "yearly date step (birthdays), e.g. 300 days: each participant comes back for "
        "next year's date.",
    )
    require_optin = fields.Boolean(
        "Require Confirmed Opt-in",
        help="Double opt-in: messages go only to contacts who confirmed their "
        "subscription; the others' steps are rejected with the reason.",
    )
    activity_ids = fields.One2many("mkt.activity", "campaign_id", "Activities", copy=True)
    participant_ids = fields.One2many("mkt.participant", "campaign_id", "Participants")
    participant_count = fields.Integer(compute="_compute_participant_counts")
    test_participant_count = fields.Integer(compute="_compute_participant_counts")
    trace_count = fields.Integer("Queue", compute="_compute_trace_count")
    record_count = fields.Integer("Matching Records", compute="_compute_record_count")
    is_test_mode = fields.Boolean(compute="_compute_is_test_mode")

    @api.depends("participant_ids")
    def _compute_participant_counts(self):
        counts = {
            (campaign.id, is_test): count
            for campaign, is_test, count in self.env["mkt.participant"]._read_group(
                [("campaign_id", "in", self.ids)],
                ["campaign_id", "is_test"],
                ["__count"],
            )
        }
        for campaign in self:
            campaign.participant_count = counts.get((campaign.id, False), 0)
            campaign.test_participant_count = counts.get((campaign.id, True), 0)

    def _compute_trace_count(self):
        counts = dict(
            self.env["mkt.trace"]._read_group(
                [("campaign_id", "in", self.ids)], ["campaign_id"], ["__count"]
            )
        )
        for campaign in self:
            campaign.trace_count = counts.get(campaign, 0)

    @api.depends(*AUDIENCE_FIELDS)
    def _compute_record_count(self):
        for campaign in self:
            try:
                campaign.record_count = (
                    self.env[campaign.model_name].search_count(campaign._get_audience_domain())
                    if campaign.model_name
                    else 0
                )
            except (ValidationError, UserError):
                campaign.record_count = 0

    @api.depends(*AUDIENCE_FIELDS)
    def _compute_sample_html(self):
        for campaign in self:
            if not campaign.model_name:
                campaign.sample_html = False
                continue
            try:
                records = self.env[campaign.model_name].search(
                    campaign._get_audience_domain(), limit=SAMPLE_SIZE
                )
            except (ValidationError, UserError) as e:
                campaign.sample_html = Markup("<p class='text-danger'>%s</p>") % e
                continue
            campaign.sample_html = (
                Markup("<ul class='mb-0'>%s</ul>")
                % Markup("").join(Markup("<li>%s</li>") % record.display_name for record in records)
                if records
                else Markup("<p class='text-muted'>%s</p>") % self.env._("No record matches.")
            )

    @api.onchange("audience")
    def _onchange_audience(self):
        if self.audience == "customers":
            self.model_id = self.env["ir.model"]._get("res.partner")
            self.domain = "[('mkt_is_customer', '=', True)]"
        elif self.audience == "leads":
            self.model_id = self.env["ir.model"]._get("crm.lead")
            self.domain = "[('type', '=', 'lead')]"

    @api.constrains("registered_days", "reentry_days")
    def _check_days(self):
        for campaign in self:
            if campaign.registered_days < 0 or campaign.reentry_days < 0:
                raise ValidationError(
                    self.env._(
                        "Campaign %(campaign)s: the registration window and the re-entry "
                        "cooldown cannot be negative.",
                        campaign=campaign.name,
                    )
                )

    @api.depends("mode")
    def _compute_is_test_mode(self):
        for campaign in self:
            campaign.is_test_mode = campaign.mode in ("test", "test_realtime")

    @api.constrains("model_id", "domain")
    def _check_domain(self):
        for campaign in self:
            campaign._get_domain()

    @api.constrains("unique_field_id", "model_id")
    def _check_unique_field(self):
        for campaign in self:
            field = campaign.unique_field_id
            if field and field.model_id != campaign.model_id:
                raise ValidationError(
                    self.env._(
                        "The unique field %(field)s of campaign %(campaign)s does not "
                        "belong to its target %(model)s.",
                        field=field.field_description,
                        campaign=campaign.name,
                        model=campaign.model_id.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._convert_model_name(vals)
            self._check_engine_fields(
                {
                    fname: value
                    for fname, value in vals.items()
                    if not (fname == "state" and value == "draft")
                }
            )
        return super().create(vals_list)

    def write(self, vals):
        self._check_engine_fields(vals)
        self._convert_model_name(vals)
        if "mode" in vals and any(c.state == "running" and c.mode != vals["mode"] for c in self):
            # a test run never sends and a real one must not stop halfway
            # into a rehearsal: the queue of each mode is its own
            raise UserError(
                self.env._("The mode of a running campaign cannot change: stop it first.")
            )
        if "model_id" in vals and any(
            c.model_id.id != vals["model_id"] and c.participant_ids for c in self
        ):
            raise UserError(
                self.env._("The target of a campaign that already has participants cannot change.")
            )
        res = super().write(vals)
        if "model_id" in vals or "name" in vals:
            self.activity_ids._sync_mailing()
            self.activity_ids._sync_mailing_name()
        return res

    @api.model
    def _mkt_engine_fields(self):
        """The fields only the engine writes (features add theirs)."""
        return ENGINE_FIELDS

    def _check_engine_fields(self, vals):
        """``readonly`` does not stop an RPC write: a campaign's state, last
        enrolment, UTM campaign and the other fields of
        ``_mkt_engine_fields`` are the engine's."""
        forged = [fname for fname in self._mkt_engine_fields() if vals.get(fname)]
        if forged and not self.env.su:
            raise AccessError(
                self.env._(
                    "%(fields)s of a campaign cannot be written: the campaign sets them "
                    "itself (Launch, Stop, Pause, Update, Rebuild Queue, its phases).",
                    fields=", ".join(self._fields[fname].string for fname in forged),
                )
            )

    @api.model
    def _convert_model_name(self, vals):
        """Accept ``model_name`` (the technical name) in create/write, as the
        external API documents it, and turn it into the target model."""
        model_name = vals.pop("model_name", None)
        if model_name and "model_id" not in vals:
            model = self.env["ir.model"]._get(model_name)
            if not model:
                raise ValidationError(
                    self.env._("The target model %(model)s does not exist.", model=model_name)
                )
            vals["model_id"] = model.id

    @api.ondelete(at_uninstall=False)
    def _unlink_except_running(self):
        if any(campaign.state == "running" for campaign in self):
            raise UserError(self.env._("Stop a running campaign before deleting it."))

    @api.model
    def _send_now(self, name, records, step, unique_field=None, template_fields=()):
        """Send one message to ``records`` right away: a one-step campaign on
        their model, created (as superuser, for the user sending) and launched
        at once, so that the queue, opt-outs, caps, the sending window and the
        results apply as to any campaign. Used by the POS order list and the
        WhatsApp templates' list action.

        The sending user may have no marketing rights (a POS user): the
        message they wrote is checked with their own rights first (the
        template-editor restriction), and so are the recipients; only then is
        the campaign created as superuser, and nothing of theirs is rendered
        with more rights than they have. ``template_fields``: texts of the step
        copied unchanged from an e-mail template, whose author's rights were
        checked when the template was written (as Odoo's composer trusts them)."""
        records.check_access("read")
        self.env["mkt.activity"]._check_content_rights(
            {fname: value for fname, value in step.items() if fname not in template_fields},
            records._name,
        )
        # the sender may not create campaigns (a POS user): created for them,
        # its content and recipients checked with their rights just above
        campaign = self.sudo().create(
            {
                "name": name,
                "model_id": self.env["ir.model"]._get_id(records._name),
                "domain": repr([("id", "in", records.ids)]),
                "unique_field_id": unique_field
                and self.env["ir.model.fields"]._get(records._name, unique_field).id,
                "auto_entry": False,
                "user_id": self.env.user.id,
                "company_id": self.env.company.id,
                "activity_ids": [fields.Command.create({"trigger_type": "begin", **step})],
            }
        )
        campaign.action_start()
        return campaign

    @api.model
    def _sent_notification(self, title, message):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": title,
                "message": message,
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def unlink(self):
        ids = self.ids
        res = super().unlink()
        # participants and queue rows have no foreign key (engine_fields.py)
        self.env["mkt.trace"]._unlink_queue("campaign_id", ids)
        self.env.cr.execute(SQL("DELETE FROM mkt_participant WHERE campaign_id = ANY(%s)", ids))
        self.env["mkt.participant"].invalidate_model()
        return res

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_start(self):
        self._check_can_run()
        self._check_launchable()
        for campaign in self:
            if not campaign.utm_campaign_id:
                # engine-only field (mkt.campaign._check_engine_fields): set for the user
                campaign.sudo().utm_campaign_id = self.env["utm.campaign"].create(
                    {"name": campaign.name}
                )
        # a (re)launch takes the audience as it is now, even when it is then frozen;
        # engine-only fields (_check_engine_fields): a campaign user only reads campaigns
        self.sudo().write({"state": "running", "last_sync_date": False})
        self.activity_ids._sync_mailing()
        # Email Marketing marks a mailing done when it sends: settled once
        # here, so that workers sending batches at once never write this
        # shared row (a write conflict between them); sudo on these two fields
        # only: any write re-checks the body against the writer's template-editor
        # right, and a campaign user launches a manager's content
        self.activity_ids.mailing_id.filtered(lambda m: m.state != "done").sudo().write(
            {"state": "done", "sent_date": fields.Datetime.now()}
        )
        now = fields.Datetime.now()
        due = self.filtered(lambda c: not c.schedule_date or c.schedule_date <= now)
        due._sync_participants()
        due.filtered(lambda c: c.mode == "test")._run_test_workflow()
        for campaign in self - due:
            self.env.ref("mkt_campaign.ir_cron_sync_participants")._trigger(campaign.schedule_date)
        if due.filtered(lambda c: c.mode != "test"):
            self.env["mkt.trace"]._trigger_queue()
        return True

    def action_stop(self):
        self._check_can_run()
        running = self.filtered(lambda c: c.state == "running")
        # engine-only fields (_check_engine_fields): a campaign user only reads campaigns
        running.sudo().write({"state": "stopped", "is_paused": False, "paused_date": False})
        if not running:
            return True
        # set-based: a campaign may have a million pending steps
        self.env.flush_all()
        now = fields.Datetime.now()
        self.env.cr.execute(
            SQL(
                """UPDATE mkt_trace SET state = 'canceled', error_message = %s, processed_date = %s
                WHERE campaign_id = ANY(%s) AND state = 'scheduled'""",
                self.env._("The campaign was stopped."),
                now,
                running.ids,
            )
        )
        self.env.cr.execute(
            SQL(
                """UPDATE mkt_participant SET state = 'canceled', end_date = %s
                WHERE campaign_id = ANY(%s) AND state = 'running'""",
                now,
                running.ids,
            )
        )
        self.env["mkt.trace"].invalidate_model(["state", "error_message", "processed_date"])
        self.env["mkt.participant"].invalidate_model(["state", "end_date"])
        return True

    def action_pause(self):
        """Hold every pending step of running campaigns: the queue claims none
        of them until Resume; nothing is canceled."""
        self._check_can_run()
        running = self.filtered(lambda c: c.state == "running" and not c.is_paused)
        # engine-only fields (_check_engine_fields): a campaign user only reads campaigns
        running.sudo().write({"is_paused": True, "paused_date": fields.Datetime.now()})
        return True

    def action_resume(self):
        """Continue: the steps that came due during the pause are sent now."""
        return self._resume(skip_missed=False)

    def action_resume_skip(self):
        """Continue without the steps that came due during the pause: they are
        canceled with the reason; later ones run when due."""
        return self._resume(skip_missed=True)

    def _resume(self, skip_missed):
        self._check_can_run()
        paused = self.filtered("is_paused")
        if not paused:
            return True
        now = fields.Datetime.now()
        if skip_missed:
            self.env.flush_all()
            # set-based: a campaign may hold a million steps
            self.env.cr.execute(
                SQL(
                    """UPDATE mkt_trace SET state = 'canceled', error_message = %s,
                          processed_date = %s
                    WHERE campaign_id = ANY(%s) AND state = 'scheduled'
                      AND schedule_date <= %s""",
                    self.env._("Skipped: it came due while the campaign was paused."),
                    now,
                    paused.ids,
                    now,
                )
            )
            self.env["mkt.trace"].invalidate_model(["state", "error_message", "processed_date"])
            paused.participant_ids.filtered(lambda p: p.state == "running")._update_completion()
        # engine-only fields (_check_engine_fields): a campaign user only reads campaigns
        paused.sudo().write({"is_paused": False, "paused_date": False})
        self.env["mkt.trace"]._trigger_queue()
        return True

    def action_draft(self):
        self._check_can_run()
        if any(campaign.state == "running" for campaign in self):
            raise UserError(self.env._("Stop the campaign before resetting it to draft."))
        # engine-only field (_check_engine_fields): a campaign user only reads campaigns
        self.sudo().write({"state": "draft"})
        return True

    def action_view_participants(self):
        return self._action_view("mkt_campaign.mkt_participant_action", is_test=False)

    def action_view_test_participants(self):
        return self._action_view("mkt_campaign.mkt_participant_action", is_test=True)

    def action_view_traces(self):
        return self._action_view("mkt_campaign.mkt_trace_action")

    def action_view_records(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Matching %(target)s", target=self.model_id.name),
            "res_model": self.model_name,
            "view_mode": "list,form",
            "domain": self._get_domain(),
        }

    def _action_view(self, xmlid, is_test=None):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        domain = [("campaign_id", "=", self.id)]
        if is_test is not None:
            domain.append(("is_test", "=", is_test))
        action["domain"] = domain
        action["context"] = {"default_campaign_id": self.id, "search_default_campaign_id": False}
        return action

    # ------------------------------------------------------------------
    # Checks
    # ------------------------------------------------------------------

    def _check_can_run(self):
        """Campaign users launch, stop and confirm; only managers configure."""
        if not self.env.is_superuser() and not self.env.user.has_group(
            "mkt_campaign.group_mkt_campaign_user"
        ):
            raise AccessError(self.env._("Only marketing campaign users can run campaigns."))
        self.check_access("read")

    def _check_launchable(self):
        for campaign in self:
            if campaign.state == "running":
                raise UserError(
                    self.env._("Campaign %(campaign)s is already running.", campaign=campaign.name)
                )
            if not campaign.activity_ids:
                raise UserError(
                    self.env._(
                        "Campaign %(campaign)s has no activity: add at least one step "
                        "to its workflow before launching it.",
                        campaign=campaign.name,
                    )
                )
            campaign._get_domain()
            campaign._get_audience_env()
            campaign.activity_ids._check_launchable()

    def _get_eval_context(self):
        """What a filter may use: plain values only (ids, dates), never a
        record. In 19 ``env.user`` is a superuser record: a filter holding it
        could write anything (``user.env.ref(...).write(...)``) when evaluated."""
        today = fields.Date.context_today(self)
        return {
            # the responsible user: the one whose rights the audience has
            "uid": (self.user_id or self.env.user).id,
            "datetime": datetime,
            "time": time,
            "relativedelta": relativedelta,
            "context_today": lambda: today,
            "company_id": (self.company_id or self.env.company).id,
            "company_ids": (self.company_id or self.env.companies).ids,
        }

    def _parse_domain(self, domain_str, model_name, label):
        """Parse and validate a filter. Raises ValidationError naming the problem."""
        self.ensure_one()
        try:
            value = safe_eval(domain_str or "[]", self._get_eval_context())
            if not isinstance(value, (list, tuple)) or not _is_plain(value):
                raise ValueError(
                    self.env._(
                        "a filter is a list of conditions whose values are texts, "
                        "numbers, booleans or dates"
                    )
                )
            domain = Domain(value)
            model = self.env[model_name]
            domain.validate(model)
            model._search(domain)
        except Exception as e:  # noqa: BLE001 - every parsing error is reported to the user
            raise ValidationError(
                self.env._(
                    "The filter of %(label)s is invalid: %(error)s\nFilter: %(domain)s",
                    label=label,
                    error=e,
                    domain=domain_str,
                )
            ) from e
        return domain

    def _get_audience_env(self):
        """The environment the audience is searched in: the campaign's
        responsible user, in the campaign's company (or the user's companies
        when the campaign has none), so that record rules and multi-company
        rules decide who is enrolled. A campaign whose responsible is the
        superuser (created by code or data files) is not restricted.
        Raises UserError when the responsible user is unset, archived or has
        no access to the campaign's company: nobody is enrolled then."""
        self.ensure_one()
        # the responsible's active flag and companies, whatever the caller's
        # companies: read only to build the environment the audience is searched in
        user = self.user_id.sudo()
        company = self.company_id
        if user and user._is_superuser():
            context = dict(self.env.context)
            if company:
                context["allowed_company_ids"] = company.ids
            return self.env(su=True, context=context)
        if not user or not user.active:
            raise UserError(
                self.env._(
                    "Campaign %(campaign)s has no active responsible user: its audience is "
                    "the records that user may read. Choose an active responsible user.",
                    campaign=self.name,
                )
            )
        if company and company not in user.company_ids:
            raise UserError(
                self.env._(
                    "The responsible user %(user)s of campaign %(campaign)s has no access "
                    "to its company %(company)s.",
                    user=user.name,
                    campaign=self.name,
                    company=company.name,
                )
            )
        companies = company or user.company_ids
        env = self.env(
            user=user.id,
            su=False,
            context=dict(
                self.env.context,
                allowed_company_ids=companies.ids,
            ),
        )
        if self.model_name and not env[self.model_name].has_access("read"):
            raise UserError(
                self.env._(
                    "The responsible user %(user)s of campaign %(campaign)s may not read "
                    "%(target)s records.",
                    user=user.name,
                    campaign=self.name,
                    target=self.model_id.name,
                )
            )
        previous = self.previous_ids.previous_campaign_id
        hidden = previous - previous.with_env(env)._filtered_access("read")
        if hidden:
            readable = hidden._filtered_access("read")
            raise UserError(
                self.env._(
                    "The responsible user %(user)s of campaign %(campaign)s may not read "
                    "the previous campaigns %(previous)s that limit its audience.",
                    user=user.name,
                    campaign=self.name,
                    # names of those the current user may read, numbers of the others
                    # (another company's campaign name is not the caller's to see)
                    previous=", ".join(
                        campaign.name if campaign in readable else f"#{campaign.id}"
                        for campaign in hidden
                    ),
                )
            )
        return env

    def _get_domain(self):
        self.ensure_one()
        return self._parse_domain(
            self.domain,
            self.model_name,
            self.env._("campaign %(name)s", name=self.name),
        )

    def _get_audience_domain(self):
        """The filter, limited by registration date, distribution lists and
        previous campaigns, plus the records added by hand, minus the excluded
        ones. Every part is SQL: matching runs in the database."""
        self.ensure_one()
        # the SQL subqueries below read these tables directly
        for model in ("mailing.contact", "mailing.subscription", "mkt.participant", "mkt.trace"):
            self.env[model].flush_model()
        domain = self._get_domain()
        if self.registered_days:
            domain &= Domain(
                "create_date",
                ">=",
                fields.Datetime.now() - relativedelta(days=self.registered_days),
            )
        if self.mailing_list_ids:
            domain &= self._get_list_domain()
        for line in self.previous_ids:
            domain &= line._get_domain()

        # while the form is edited, the picked record is in record_ref: its
        # inverse writes res_id only when the campaign is saved
        def refined(kind):
            lines = self.refinement_ids.filtered(lambda r: r.kind == kind)
            return [r.record_ref.id if r.record_ref else r.res_id for r in lines]

        included = [res_id for res_id in refined("include") if res_id]
        excluded = [res_id for res_id in refined("exclude") if res_id]
        if included:
            domain |= Domain("id", "in", included)
        if excluded:
            domain &= Domain("id", "not in", excluded)
        return domain

    def _get_list_domain(self):
        subscribed = SQL(
            "SELECT s.contact_id FROM mailing_subscription s"
            " WHERE s.list_id = ANY(%s) AND NOT COALESCE(s.opt_out, false)",
            self.mailing_list_ids.ids,
        )
        if self.model_name == "mailing.contact":
            return Domain("id", "in", subscribed)
        emails = SQL(
            "SELECT mc.email_normalized FROM mailing_contact mc"
            " WHERE mc.email_normalized IS NOT NULL AND mc.id IN (%s)",
            subscribed,
        )
        Model = self.env[self.model_name]
        if "email_normalized" in Model._fields and Model._fields["email_normalized"].store:
            return Domain("email_normalized", "in", emails)
        if Model._mkt_partner_field() == "partner_id":
            return Domain("partner_id.email_normalized", "in", emails)
        raise ValidationError(
            self.env._(
                "%(target)s records have no e-mail to match distribution lists with.",
                target=self.model_id.name,
            )
        )

    # ------------------------------------------------------------------
    # Enrolment
    # ------------------------------------------------------------------

    @api.model
    def _cron_sync_participants(self):
        now = fields.Datetime.now()
        campaigns = self.search(
            [
                ("state", "=", "running"),
                "|",
                ("schedule_date", "=", False),
                ("schedule_date", "<=", now),
                "|",
                ("auto_entry", "=", True),
                ("last_sync_date", "=", False),
            ]
        )
        cron = self.env["ir.cron"]
        auto_commit = not modules.module.current_test
        if auto_commit or self.env.context.get("ir_cron_progress_id"):
            cron._commit_progress(remaining=len(campaigns))
        for campaign in campaigns:
            campaign._sync_participants()
            if campaign.mode == "test":
                campaign._run_test_workflow()
            if auto_commit or self.env.context.get("ir_cron_progress_id"):
                if not cron._commit_progress(1):
                    break
        self.env["mkt.trace"]._trigger_queue()

    def _sync_participants(self):
        """Enrol matching records that are not participants yet, then queue the
        workflow's first steps for them. One INSERT … SELECT per campaign."""
        total = 0
        for campaign in self:
            if campaign.last_sync_date and not campaign.auto_entry:
                continue
            try:
                campaign._get_audience_env()
                campaign._get_domain()
            except UserError as e:
                # the responsible user was archived (or lost the company), or
                # the filter no longer parses, since the launch: nobody is
                # enrolled until a manager fixes it
                _logger.warning("Campaign %s: nobody enrolled: %s", campaign.id, e)
                continue
            now = fields.Datetime.now()
            count = campaign._enrol(now)
            # engine-only field (_check_engine_fields): set for a user launching
            campaign.sudo().last_sync_date = now
            total += count
            _logger.info("Campaign %s: %d records enrolled", campaign.id, count)
        return total

    def _enrol(self, now):
        """Enrol the matching records (see mkt.participant._enrol_for)."""
        self.ensure_one()
        return self.env["mkt.participant"]._enrol_for(self, now)

    # ------------------------------------------------------------------
    # Test mode
    # ------------------------------------------------------------------

    def _run_test_workflow(self):
        """Test mode: execute the whole workflow now, ignoring delays and running
        no action, so that the queue it would produce can be reviewed."""
        Trace = self.env["mkt.trace"]
        for campaign in self:
            while True:
                # only the rehearsal's own rows: real participants' steps are
                # never run by a test
                traces = Trace._claim(
                    Domain("campaign_id", "=", campaign.id) & Domain("is_test", "=", True),
                    limit=None,
                    ignore_schedule=True,
                )
                if not traces:
                    break
                traces._execute()


def _is_plain(value):
    """Whether a parsed filter holds plain values only: texts, numbers,
    booleans, dates, and lists / tuples of them."""
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool, date))
