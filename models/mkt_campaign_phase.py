import logging

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.fields import Domain
from odoo.tools import SQL, sql

from .mkt_sending_policy import MESSAGE_TYPES

_logger = logging.getLogger(__name__)


class MktCampaignPhase(models.Model):
    """A phase (stage) of a campaign's life: Preparation, Sending, Follow-up,
    Analysis… shown in the campaign's status bar. A phase may move its
    campaigns on to the next phase by itself when a condition is met (the
    hourly cron, ``mkt.campaign._cron_phase_transitions``), and runs actions
    when a campaign enters it: a server action on the campaign and/or a
    message to the campaign's responsible."""

    _name = "mkt.campaign.phase"
    _description = "Marketing Campaign Phase"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    fold = fields.Boolean(
        "Folded in Kanban", help="Campaigns in this phase are folded in the kanban view."
    )
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Only campaigns of this company use the phase. Empty: every company.",
    )
    description = fields.Text(translate=True)
    condition = fields.Selection(
        [
            ("manual", "Manually"),
            ("launched", "When the campaign is launched"),
            ("first_steps_sent", "When all first steps are sent"),
            ("days_after_last", "N days after the last message"),
            ("end_date", "When the campaign's end date is reached"),
        ],
        "Move On",
        default="manual",
        required=True,
        help="When campaigns in this phase move on to the next phase by themselves "
        "(checked every hour):\n"
        "- all first steps sent: every step starting the workflow has run for "
        "every participant (nothing of them is waiting in the queue);\n"
        "- N days after the last message: no message is waiting in the queue and "
        "the last one was sent at least N days ago;\n"
        "- end date: the campaign's end date is past.",
    )
    condition_days = fields.Integer(
        "Days After Last Message",
        default=7,
        help="For 'N days after the last message': how many days.",
    )
    server_action_id = fields.Many2one(
        "ir.actions.server",
        "Server Action on Entry",
        ondelete="restrict",
        domain="[('model_id.model', '=', 'mkt.campaign')]",
        help="Run on the campaign when it enters this phase, with the rights of its "
        "responsible (who must be allowed to run it).",
    )
    notify_responsible = fields.Boolean(
        "Notify the Responsible",
        help="When a campaign enters this phase, its responsible receives a message.",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        "Message Template",
        ondelete="set null",
        domain="[('model', '=', 'mkt.campaign')]",
        help="The message sent to the responsible. Empty: a short standard message.",
    )

    _condition_days_positive = models.Constraint(
        "CHECK (condition_days >= 0)",
        "The number of days after the last message cannot be negative.",
    )

    @api.constrains("server_action_id")
    def _check_server_action_model(self):
        # ir.actions.server is admin-only: the phases' own actions, read to check their model
        for phase in self.sudo().filtered("server_action_id"):
            if phase.server_action_id.model_id.model != "mkt.campaign":
                raise ValidationError(
                    self.env._(
                        "The server action %(action)s of phase %(phase)s must apply to "
                        "marketing campaigns.",
                        action=phase.server_action_id.name,
                        phase=phase.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        phases = super().create(vals_list)
        if not self.env.su:
            phases.filtered("server_action_id")._check_server_action_user(self.env.user)
        return phases

    def write(self, vals):
        res = super().write(vals)
        if vals.get("server_action_id") and not self.env.su:
            self._check_server_action_user(self.env.user)
        return res

    def _check_server_action_user(self, user, campaign=None):
        """``user`` may run the phases' server actions: the action's own group
        restriction, as for server-action steps (and as ``ir.actions.server``
        checks it when it runs); ``user`` is the responsible of ``campaign``
        when the action runs for it."""
        for phase in self:
            phase.server_action_id._mkt_check_user(phase, user, campaign)

    def _next_phase(self, company):
        """The phase after this one for a campaign of ``company``."""
        self.ensure_one()
        phases = self.search(
            Domain("company_id", "in", [False, company.id])
            if company
            else Domain("company_id", "=", False)
        )
        later = phases.filtered(lambda p: (p.sequence, p.id) > (self.sequence, self.id))
        return later[:1]


class MktCampaign(models.Model):
    _inherit = "mkt.campaign"

    phase_id = fields.Many2one(
        "mkt.campaign.phase",
        tracking=True,
        copy=False,
        index=True,
        ondelete="restrict",
        group_expand="_read_group_phase_ids",
        default=lambda self: self._default_phase(),
        domain="['|', ('company_id', '=', False), ('company_id', '=', company_id)]",
    )
    phase_date = fields.Datetime(
        "In Phase Since",
        readonly=True,
        copy=False,
        default=fields.Datetime.now,
        help="When the campaign entered its current phase.",
    )
    end_date = fields.Datetime(
        copy=False,
        tracking=True,
        help="When the campaign ends: a phase may move on when it is reached.",
    )

    @api.model
    def _default_phase(self):
        # upgrading a database from before phases: the new column is filled for
        # the existing campaigns before the phases' table exists; they get
        # their phase from _init_phases once the phases are loaded
        if not sql.table_exists(self.env.cr, "mkt_campaign_phase"):
            return False
        return self.env["mkt.campaign.phase"].search(
            Domain("company_id", "in", [False, self.env.company.id]), limit=1
        )

    @api.model
    def _init_phases(self):
        """Campaigns without a phase (created before phases existed) start in
        the first one. Called by the phases' data file on install/update."""
        first = self.env["mkt.campaign.phase"].search(Domain("company_id", "=", False), limit=1)
        if first:
            self.env.cr.execute(
                SQL(
                    "UPDATE mkt_campaign SET phase_id = %s, phase_date = now() at time zone 'UTC'"
                    " WHERE phase_id IS NULL",
                    first.id,
                )
            )
            self.invalidate_model(["phase_id", "phase_date"])

    @api.model
    def _read_group_phase_ids(self, phases, domain):
        """Every phase is a kanban column, even an empty one."""
        return phases.search(
            Domain("id", "in", phases.ids)
            | Domain(
                "company_id",
                "in",
                [
                    False,
                    *self.env.companies.ids,
                ],
            )
        )

    def write(self, vals):
        moved = self.browse()
        if vals.get("phase_id"):
            moved = self.filtered(lambda c: c.phase_id.id != vals["phase_id"])
            phase = self.env["mkt.campaign.phase"].browse(vals["phase_id"])
            if phase.server_action_id and not self.env.su:
                # whoever moves a campaign into the phase runs its action: they
                # must be allowed to, as the author of a server-action step
                phase._check_server_action_user(self.env.user)
        res = super().write(vals)
        if moved:
            # engine-only field (mkt.campaign._check_engine_fields): set for the mover
            moved.sudo().write({"phase_date": fields.Datetime.now()})
            moved._run_phase_entry_actions()
        return res

    def action_start(self):
        res = super().action_start()
        # a phase may move on at launch: no need to wait for the hourly run
        cron = self.env.ref("mkt_campaign.ir_cron_phase_transitions", raise_if_not_found=False)
        if cron:
            cron._trigger()
        return res

    def _mkt_engine_fields(self):
        return (*super()._mkt_engine_fields(), "phase_date")

    # ------------------------------------------------------------------
    # Entry actions
    # ------------------------------------------------------------------

    def _run_phase_entry_actions(self):
        """Campaigns entered their phase: run its server action (as
        server-action steps run: the responsible must be allowed to run it)
        and tell the responsible. A failing action does not undo the move:
        the reason is logged in the campaign's chatter."""
        for campaign in self:
            phase = campaign.phase_id
            # the engine runs the action (see _run_phase_action): ir.actions.server
            # is admin-only; the responsible's right to run it is checked there
            action = phase.server_action_id.sudo()
            if action:
                campaign._run_phase_action(phase, action)
            if phase.notify_responsible and campaign.user_id:
                campaign._notify_phase_responsible(phase)

    def _run_phase_action(self, phase, action):
        self.ensure_one()
        user = self.user_id
        try:
            phase._check_server_action_user(user, self)
            with self.env.cr.savepoint():
                # sudo: server actions run as the engine, as server-action
                # steps do, once the responsible's right to run it is checked
                action.with_context(
                    active_model=self._name,
                    active_ids=self.ids,
                    active_id=self.id,
                ).run()
                self.env.flush_all()
        except Exception as error:  # noqa: BLE001 - the reason goes to the chatter
            _logger.info(
                "mkt_campaign: entry action of phase %s failed on campaign %s: %s",
                phase.id,
                self.id,
                error,
            )
            self.message_post(
                body=self.env._(
                    "The server action %(action)s of phase %(phase)s could not run: %(error)s",
                    action=action.name,
                    phase=phase.name,
                    error=str(error),
                )
            )

    def _notify_phase_responsible(self, phase):
        self.ensure_one()
        partner = self.user_id.partner_id
        template = phase.mail_template_id
        if template:
            # the template's author (a template editor) wrote its content
            self.message_post_with_source(
                template,
                partner_ids=partner.ids,
                subtype_xmlid="mail.mt_comment",
            )
            return
        campaign = self.with_context(lang=self.user_id.lang or self.env.lang)
        body = Markup("<p>%s</p>") % campaign.env._(
            "Campaign %(campaign)s entered the phase %(phase)s.",
            campaign=self.name,
            phase=phase.with_context(lang=campaign.env.lang).name,
        )
        self.message_post(
            body=body,
            partner_ids=partner.ids,
            subtype_xmlid="mail.mt_comment",
            message_type="notification",
        )

    # ------------------------------------------------------------------
    # Automatic transitions
    # ------------------------------------------------------------------

    @api.model
    def _cron_phase_transitions(self):
        """Move on the campaigns whose phase's condition is met, one phase
        at a time (a campaign meeting the next phase's condition too moves
        again, up to the number of phases)."""
        for _round in range(self.env["mkt.campaign.phase"].search_count([]) or 1):
            due = self._phase_transitions_due()
            if not due:
                break
            for campaign, reason in due.items():
                next_phase = campaign.phase_id._next_phase(campaign.company_id)
                if not next_phase:
                    continue
                campaign.write({"phase_id": next_phase.id})
                campaign.message_post(body=reason, message_type="notification")
            # one tracked change per phase crossed, not one from the first to
            # the last: the tracking is written before the next round's moves
            self.env.flush_all()
            self.env.cr.precommit.run()

    @api.model
    def _phase_transitions_due(self):
        """{campaign: reason} of the launched campaigns whose phase's condition
        is met: one query for all of them, whatever their number."""
        self.env.flush_all()
        now = fields.Datetime.now()
        message_types = list(MESSAGE_TYPES)
        self.env.cr.execute(
            SQL(
                """
            SELECT c.id, ph.condition
              FROM mkt_campaign c
              JOIN mkt_campaign_phase ph ON ph.id = c.phase_id
             WHERE c.state IN ('running', 'stopped') AND c.active
               AND (
                    (ph.condition = 'launched')
                 OR (ph.condition = 'end_date' AND c.end_date <= %(now)s)
                 OR (ph.condition = 'first_steps_sent'
                     AND EXISTS (SELECT 1 FROM mkt_trace t
                                   JOIN mkt_activity a ON a.id = t.activity_id
                                  WHERE t.campaign_id = c.id AND NOT t.is_test
                                    AND a.trigger_type = 'begin' AND a.is_one_off IS NOT TRUE)
                     AND NOT EXISTS (SELECT 1 FROM mkt_trace t
                                       JOIN mkt_activity a ON a.id = t.activity_id
                                      WHERE t.campaign_id = c.id AND NOT t.is_test
                                        AND a.trigger_type = 'begin' AND a.is_one_off IS NOT TRUE
                                        AND t.state IN ('scheduled', 'processing')))
                 OR (ph.condition = 'days_after_last'
                     AND NOT EXISTS (SELECT 1 FROM mkt_trace t
                                       JOIN mkt_activity a ON a.id = t.activity_id
                                      WHERE t.campaign_id = c.id AND NOT t.is_test
                                        AND a.activity_type = ANY(%(types)s)
                                        AND t.state IN ('scheduled', 'processing'))
                     AND (SELECT max(t.processed_date) FROM mkt_trace t
                            JOIN mkt_activity a ON a.id = t.activity_id
                           WHERE t.campaign_id = c.id AND NOT t.is_test
                             AND a.activity_type = ANY(%(types)s)
                             AND t.state = 'processed')
                         <= %(now)s - make_interval(days => ph.condition_days))
               )
            """,
                now=now,
                types=message_types,
            )
        )
        rows = self.env.cr.fetchall()
        campaigns = self.browse([row[0] for row in rows])
        reasons = {
            "launched": self.env._("Moved on automatically: the campaign is launched."),
            "end_date": self.env._("Moved on automatically: the campaign's end date is reached."),
            "first_steps_sent": self.env._(
                "Moved on automatically: all first steps of the workflow are sent."
            ),
            "days_after_last": self.env._(
                "Moved on automatically: the last message was sent long enough ago."
            ),
        }
        return {
            campaign: reasons[condition]
            for campaign, (_id, condition) in zip(campaigns, rows, strict=False)
        }
