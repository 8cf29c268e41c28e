from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL, format_amount

from .mkt_campaign_results import MESSAGE_TYPES  # the channels with a unit cost

# budget used (%) at which the responsible is told, once each
BUDGET_THRESHOLDS = (80, 100)
BUDGET_FIELDS = (
    "budget",
    "budget_pause",
    "cost_ids",
    "cost_per_email",
    "cost_per_sms",
    "cost_per_whatsapp",
    "cost_per_push",
)
# written by the engine only (the budget checks), never by a user
BUDGET_ENGINE_FIELDS = ("budget_paused", "budget_notified_80", "budget_notified_100")


class MktCampaign(models.Model):
    """A budget that binds: planned cost per step next to its actual cost,
    the responsible told at 80% and 100% of the budget (once each), and, as
    an option, the campaign's sending paused at 100% (the queue then claims
    none of its steps, see mkt.trace._due_query)."""

    _inherit = "mkt.campaign"

    budget_pause = fields.Boolean(
        "Pause Sending at 100%",
        help="When the costs reach the budget, the campaign's messages stop leaving: "
        "its steps wait in the queue until the budget is raised (or this option "
        "turned off).",
    )
    budget_paused = fields.Boolean(
        "Sending Paused (Budget)",
        readonly=True,
        copy=False,
        help="The costs reached the budget: the campaign's steps wait in the queue.",
    )
    budget_notified_80 = fields.Boolean("Told at 80% of the Budget", readonly=True, copy=False)
    budget_notified_100 = fields.Boolean("Told at 100% of the Budget", readonly=True, copy=False)
    planned_cost = fields.Monetary(
        compute="_compute_planned_cost",
        help="Sum of the steps' planned costs (unit cost × expected messages).",
    )

    @api.depends("activity_ids.planned_cost")
    def _compute_planned_cost(self):
        for campaign in self:
            campaign.planned_cost = sum(campaign.activity_ids.mapped("planned_cost"))

    def write(self, vals):
        res = super().write(vals)
        if any(fname in vals for fname in BUDGET_FIELDS):
            # a raised budget (or the option turned off) resumes the sending
            self._check_budget()
        return res

    @api.model
    def _check_engine_fields(self, vals):
        res = super()._check_engine_fields(vals)
        # even False: resuming a paused campaign is raising its budget
        forged = [fname for fname in BUDGET_ENGINE_FIELDS if fname in vals]
        if forged and not self.env.su:
            raise AccessError(
                self.env._(
                    "%(fields)s of a campaign cannot be written: the budget checks set it.",
                    fields=", ".join(self._fields[fname].string for fname in forged),
                )
            )
        return res

    def _check_budget(self):
        """Compare the costs with the budget: tell the responsible at 80% and
        100% (once each, even with several queue workers), pause the sending
        at 100% when the campaign asks for it, resume it below. Called after
        each chunk of messages and when the budget or costs change."""
        campaigns = self.filtered("budget")
        # budget removed: nothing binds any more (engine-only field,
        # mkt.campaign._check_engine_fields: written for the queue or the manager)
        (self - campaigns).filtered("budget_paused").sudo().write({"budget_paused": False})
        if not campaigns:
            return
        campaigns.invalidate_recordset(
            [
                "pending_count",
                "sent_count",
                "sent_email_count",
                "sent_sms_count",
                "sent_whatsapp_count",
                "sent_push_count",
                "registered_cost",
                "message_cost",
                "total_cost",
                "budget_remaining",
                "budget_used_rate",
            ]
        )
        resumed = self.browse()
        for campaign in campaigns:
            rate = campaign.budget_used_rate
            for threshold in BUDGET_THRESHOLDS:
                fname = f"budget_notified_{threshold}"
                if rate >= threshold:
                    if campaign._mark_budget_flag(fname):
                        campaign._notify_budget(threshold)
                elif campaign[fname]:
                    # the budget was raised: told again when reached again (the
                    # engine's flag, read-only to users)
                    campaign.sudo()[fname] = False
            paused = campaign.budget_pause and rate >= 100
            if paused != campaign.budget_paused:
                # the engine's field (narrow sudo)
                campaign.sudo().budget_paused = paused
                if not paused:
                    resumed |= campaign
        if resumed.filtered(lambda c: c.state == "running"):
            self.env["mkt.trace"]._trigger_queue()

    def _mark_budget_flag(self, fname):
        """Set the flag if nobody did: True for the one caller that did."""
        self.ensure_one()
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE mkt_campaign SET %(flag)s = true WHERE id = %(id)s AND %(flag)s IS NOT TRUE"
                " RETURNING id",
                flag=SQL.identifier(fname),
                id=self.id,
            )
        )
        marked = bool(self.env.cr.fetchone())
        self.invalidate_recordset([fname])
        return marked

    def _notify_budget(self, threshold):
        """A note in the chatter notifying the responsible."""
        self.ensure_one()
        values = {
            "campaign": self.name,
            "rate": round(self.budget_used_rate),
            "cost": format_amount(self.env, self.total_cost, self.currency_id),
            "budget": format_amount(self.env, self.budget, self.currency_id),
        }
        if threshold < 100:
            body = self.env._(
                "Campaign %(campaign)s has used %(rate)s%% of its budget: %(cost)s of %(budget)s.",
                **values,
            )
        elif self.budget_pause:
            body = self.env._(
                "Campaign %(campaign)s reached its budget: %(cost)s of %(budget)s. Its "
                "sending is paused until the budget is raised.",
                **values,
            )
        else:
            body = self.env._(
                "Campaign %(campaign)s reached its budget: %(cost)s of %(budget)s.",
                **values,
            )
        # the queue worker posts for the campaign: engine text, no user content
        self.sudo().message_post(
            body=body,
            partner_ids=self.user_id.partner_id.ids,
            subtype_xmlid="mail.mt_note",
        )


class MktActivity(models.Model):
    _inherit = "mkt.activity"

    expected_count = fields.Integer(
        "Expected Messages",
        help="How many messages this step is expected to send: its planned cost is "
        "this number times the unit cost of its channel.",
    )
    currency_id = fields.Many2one(related="campaign_id.currency_id")
    unit_cost = fields.Monetary(
        compute="_compute_costs",
        help="The campaign's cost per message of this step's channel.",
    )
    planned_cost = fields.Monetary(compute="_compute_costs")
    actual_cost = fields.Monetary(
        compute="_compute_costs",
        help="Messages sent × unit cost, plus the costs registered on this step.",
    )

    @api.depends(
        "activity_type",
        "expected_count",
        "campaign_id.cost_per_email",
        "campaign_id.cost_per_sms",
        "campaign_id.cost_per_whatsapp",
        "campaign_id.cost_per_push",
        "campaign_id.cost_ids.amount",
        "campaign_id.cost_ids.activity_id",
    )
    def _compute_costs(self):
        for activity in self:
            campaign = activity.campaign_id
            unit = (
                campaign[f"cost_per_{activity.activity_type}"]
                if (activity.activity_type in MESSAGE_TYPES and campaign)
                else 0.0
            )
            registered = sum(
                campaign.cost_ids.filtered(lambda c, a=activity: c.activity_id == a).mapped(
                    "amount"
                )
            )
            activity.unit_cost = unit
            activity.planned_cost = unit * activity.expected_count
            activity.actual_cost = unit * activity.processed_count + registered


class MktTrace(models.Model):
    _inherit = "mkt.trace"

    def _execute_chunk(self, activity, auto_commit):
        campaign = activity.campaign_id
        if activity.activity_type in MESSAGE_TYPES and campaign.budget_paused:
            # paused by an earlier chunk of this batch: back to the queue,
            # which claims none of the campaign's steps until it resumes
            self._postpone(
                fields.Datetime.now(),
                self.env._("Sending paused: the campaign reached its budget."),
            )
            return False
        requeued = super()._execute_chunk(activity, auto_commit)
        # one grouped query over the campaign's queue rows per chunk, while
        # there is something left to tell or to pause (a budget raised later
        # is re-checked by write())
        if (
            activity.activity_type in MESSAGE_TYPES
            and campaign.budget
            and (campaign.budget_pause or not campaign.budget_notified_100)
        ):
            campaign._check_budget()
            if auto_commit:
                # the pause / notice is kept with the chunk it follows
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return requeued
