from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

APPROVAL_PARAM = "mkt_campaign.approval_required"
# campaigns in these modes send nothing: they may be rehearsed before approval
TEST_MODES = ("test", "test_realtime")
# what may change on an approved campaign without a new approval: the engine's
# fields and the figures of the Results tab (nothing that is sent, nor to whom)
APPROVAL_KEEPS = {
    "state",
    "approved_by_id",
    "approved_date",
    "last_sync_date",
    "utm_campaign_id",
    "budget",
    "budget_pause",
    "budget_paused",
    "budget_notified_80",
    "budget_notified_100",
    "cost_ids",
    "cost_per_email",
    "cost_per_sms",
    "cost_per_whatsapp",
    "cost_per_push",
    "target_lead_count",
    "target_conversion_rate",
    "target_revenue",
    "target_roi",
    "attribution_days",
    "phase_id",
    "phase_date",
    "end_date",
    "queue_outdated",
}


class MktCampaign(models.Model):
    """Approval before launch (setting "Campaigns need approval"): a campaign
    user submits a campaign (state *To Approve*), the managers get an activity
    to review it, a manager approves or refuses it with a reason logged in the
    chatter; only an approved campaign launches. Without the setting, a
    campaign launches from draft as before."""

    _inherit = "mkt.campaign"

    state = fields.Selection(
        selection_add=[("draft",), ("pending", "To Approve"), ("approved", "Approved")],
        ondelete={"pending": "set default", "approved": "set default"},
    )
    approval_required = fields.Boolean(compute="_compute_approval_required")
    approved_by_id = fields.Many2one("res.users", readonly=True, copy=False)
    approved_date = fields.Datetime("Approved On", readonly=True, copy=False)

    def _compute_approval_required(self):
        required = self._is_approval_required()
        for campaign in self:
            campaign.approval_required = required

    @api.model
    def _is_approval_required(self):
        # ir.config_parameter is admin-only: one known key
        return bool(self.env["ir.config_parameter"].sudo().get_param(APPROVAL_PARAM))

    def write(self, vals):
        # a change of what the approver saw (audience, content, mode...) by
        # a user: the campaign is to be submitted again
        approved = self.browse()
        if not self.env.su and set(vals) - APPROVAL_KEEPS:
            approved = self.filtered(lambda c: c.state == "approved")
        res = super().write(vals)
        approved._reset_approval()
        return res

    @api.model
    def _check_engine_fields(self, vals):
        res = super()._check_engine_fields(vals)
        # an approval is given by action_approve only
        forged = [fname for fname in ("approved_by_id", "approved_date") if vals.get(fname)]
        if forged and not self.env.su:
            raise AccessError(
                self.env._(
                    "%(fields)s of a campaign cannot be written: use Approve.",
                    fields=", ".join(self._fields[fname].string for fname in forged),
                )
            )
        return res

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_submit(self):
        """Ask the managers to approve the campaigns (state To Approve)."""
        self._check_can_run()
        if not self._is_approval_required():
            raise UserError(self.env._("Campaigns need no approval: launch the campaign directly."))
        for campaign in self:
            if campaign.state not in ("draft", "stopped"):
                raise UserError(
                    self.env._(
                        "Campaign %(campaign)s cannot be submitted for approval: only a "
                        "draft or stopped campaign can.",
                        campaign=campaign.name,
                    )
                )
            # what a launch would refuse is reported now, not to the approver
            if not campaign.activity_ids:
                raise UserError(
                    self.env._(
                        "Campaign %(campaign)s has no activity: add at least one step "
                        "to its workflow before submitting it.",
                        campaign=campaign.name,
                    )
                )
        # engine-only fields (mkt.campaign._check_engine_fields): a user may not write them
        self.sudo().write({"state": "pending", "approved_by_id": False, "approved_date": False})
        for campaign in self:
            campaign._notify_approvers()
        return True

    def action_approve(self):
        self._check_can_approve()
        for campaign in self:
            if campaign.state != "pending":
                raise UserError(
                    self.env._(
                        "Campaign %(campaign)s is not waiting for approval.", campaign=campaign.name
                    )
                )
        # engine-only fields (mkt.campaign._check_engine_fields), after _check_can_approve
        self.sudo().write(
            {
                "state": "approved",
                "approved_by_id": self.env.user.id,
                "approved_date": fields.Datetime.now(),
            }
        )
        for campaign in self:
            campaign._close_approval_activities(
                self.env._("Approved by %(user)s.", user=self.env.user.name)
            )
            campaign._post_note(
                self.env._("Campaign approved by %(user)s.", user=self.env.user.name),
                campaign.user_id.partner_id,
            )
        return True

    def action_refuse_wizard(self):
        self._check_can_approve()
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Refuse Campaign"),
            "res_model": "mkt.campaign.refuse",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_campaign_id": self.id},
        }

    def _action_refuse(self, reason):
        """Back to draft, with the reason in the chatter for the responsible."""
        self._check_can_approve()
        if not (reason or "").strip():
            raise UserError(self.env._("Give the reason of the refusal."))
        for campaign in self:
            if campaign.state != "pending":
                raise UserError(
                    self.env._(
                        "Campaign %(campaign)s is not waiting for approval.", campaign=campaign.name
                    )
                )
        # engine-only field (mkt.campaign._check_engine_fields), after _check_can_approve
        self.sudo().write({"state": "draft"})
        for campaign in self:
            campaign._close_approval_activities(
                self.env._(
                    "Refused by %(user)s: %(reason)s",
                    user=self.env.user.name,
                    reason=reason,
                )
            )
            campaign._post_note(
                Markup("%s<br/>%s")
                % (
                    self.env._("Campaign refused by %(user)s.", user=self.env.user.name),
                    reason,
                ),
                campaign.user_id.partner_id,
            )
        return True

    # ------------------------------------------------------------------
    # Checks and helpers
    # ------------------------------------------------------------------

    def _check_can_approve(self):
        if not self.env.is_superuser() and not self.env.user.has_group(
            "mkt_campaign.group_mkt_campaign_manager"
        ):
            raise AccessError(
                self.env._("Only marketing campaign managers can approve or refuse campaigns.")
            )
        self.check_access("read")

    def _check_launchable(self):
        super()._check_launchable()
        # campaigns the engine launches as superuser (a POS user's one-off
        # message, _send_now) are not subject to the marketing team's approval;
        # no RPC caller runs as superuser
        if self.env.su or not self._is_approval_required():
            return
        for campaign in self:
            if campaign.mode not in TEST_MODES and campaign.state != "approved":
                raise UserError(
                    self.env._(
                        "Campaign %(campaign)s needs approval before it is launched: submit "
                        "it, then a manager approves it.",
                        campaign=campaign.name,
                    )
                )

    def _reset_approval(self):
        """Approved campaigns changed since: back to draft, to be submitted
        again (the approval was given to what they were)."""
        if not self:
            return
        # engine-only fields (mkt.campaign._check_engine_fields): a user may not write them
        self.sudo().write({"state": "draft", "approved_by_id": False, "approved_date": False})
        for campaign in self:
            campaign._post_note(
                self.env._(
                    "Changed by %(user)s after its approval: the campaign is to be submitted "
                    "for approval again.",
                    user=self.env.user.name,
                ),
                campaign.user_id.partner_id,
            )

    def _approvers(self):
        """Active managers who may read the campaign (its company)."""
        self.ensure_one()
        group = self.env.ref("mkt_campaign.group_mkt_campaign_manager")
        # a group's members are admin-only: read to find whom to notify, filtered here
        users = group.sudo().all_user_ids.filtered(
            lambda u: (
                u.active
                and not u.share
                and not u._is_superuser()
                and (not self.company_id or self.company_id in u.company_ids)
            )
        )
        return users

    def _notify_approvers(self):
        self.ensure_one()
        approvers = self._approvers()
        summary = self.env._("Approve campaign %(campaign)s", campaign=self.name)
        note = self.env._("%(user)s submitted the campaign for approval.", user=self.env.user.name)
        activity_type = self.env.ref("mkt_campaign.mail_activity_type_mkt_campaign_approval")
        model_id = self.env["ir.model"]._get_id(self._name)
        # a campaign user may not create activities on a campaign (read-only
        # access): the activities for the managers are created as superuser,
        # with the text above only
        self.env["mail.activity"].sudo().create(
            [
                {
                    "res_model_id": model_id,
                    "res_id": self.id,
                    "activity_type_id": activity_type.id,
                    "summary": summary,
                    "note": note,
                    "user_id": user.id,
                    "date_deadline": fields.Date.context_today(self),
                }
                for user in approvers
            ]
        )
        self._post_note(
            self.env._("Submitted for approval by %(user)s.", user=self.env.user.name),
            approvers.partner_id,
        )

    def _close_approval_activities(self, feedback):
        self.ensure_one()
        # the approval activities of the campaign, whoever they were assigned to (a
        # user may not close another's): this campaign's and this type's only
        activities = (
            self.env["mail.activity"]
            .sudo()
            .search(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "=", self.id),
                    (
                        "activity_type_id",
                        "=",
                        self.env.ref("mkt_campaign.mail_activity_type_mkt_campaign_approval").id,
                    ),
                ]
            )
        )
        activities.action_feedback(feedback=feedback)

    def _post_note(self, body, partners):
        """A note in the campaign's chatter, by the acting user, notifying
        ``partners``. A campaign user may only read a campaign, and posting
        needs write access: posted as superuser, with the acting user as
        author and a text built here (the reason of a refusal is escaped)."""
        self.ensure_one()
        # posting needs write access to the campaign: the text is built by the caller
        self.sudo().message_post(
            body=body,
            author_id=self.env.user.partner_id.id,
            partner_ids=partners.ids,
            subtype_xmlid="mail.mt_note",
        )


class MktActivity(models.Model):
    _inherit = "mkt.activity"

    @api.model_create_multi
    def create(self, vals_list):
        activities = super().create(vals_list)
        activities._reset_campaign_approval()
        return activities

    def write(self, vals):
        # before super(), which pops the content fields out of vals; the
        # step's mailing is the engine's (_sync_mailing)
        changed = set(vals) - {"mailing_id"}
        res = super().write(vals)
        if changed:
            self._reset_campaign_approval()
        return res

    def unlink(self):
        self._reset_campaign_approval()
        return super().unlink()

    def _reset_campaign_approval(self):
        """A step added, changed or removed by a user on an approved campaign:
        the campaign is to be submitted again."""
        if self.env.su:
            return
        self.campaign_id.filtered(lambda c: c.state == "approved")._reset_approval()
