from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError


class MktActivityVariant(models.Model):
    """A variant of an e-mail step under A/B test (mkt_activity_ab.py): its
    own subject and body, kept in its own mailing as the step's are, sent to
    a share of the step's participants."""

    _name = "mkt.activity.variant"
    _description = "Marketing Campaign Step Variant"
    _order = "activity_id, sequence, id"

    sequence = fields.Integer(default=10)
    name = fields.Char(required=True, default=lambda self: self.env._("Variant"))
    activity_id = fields.Many2one(
        "mkt.activity", "Step", required=True, ondelete="cascade", index=True
    )
    campaign_id = fields.Many2one(related="activity_id.campaign_id")
    share = fields.Integer(
        "Share (%)",
        default=10,
        required=True,
        help="Share of the step's participants who receive this variant during the test.",
    )
    mailing_id = fields.Many2one(
        "mailing.mailing", "Content", readonly=True, copy=False, ondelete="restrict"
    )
    subject = fields.Char(related="mailing_id.subject", readonly=False)
    body_html = fields.Html(related="mailing_id.body_html", readonly=False, sanitize=False)
    sent_count = fields.Integer("Sent", compute="_compute_statistics")
    opened_count = fields.Integer("Opened", compute="_compute_statistics")
    clicked_count = fields.Integer("Clicked", compute="_compute_statistics")
    open_rate = fields.Float("Open Rate (%)", compute="_compute_statistics")
    click_rate = fields.Float("Click Rate (%)", compute="_compute_statistics")
    winner_sent_count = fields.Integer(
        "Sent as Winner",
        compute="_compute_statistics",
        help="Messages of this variant sent to the rest of the participants after the test.",
    )
    is_winner = fields.Boolean("Winner", compute="_compute_is_winner")

    _share_range = models.Constraint(
        "CHECK (share > 0 AND share <= 100)", "The share of a variant is between 1 and 100%."
    )

    def _compute_statistics(self):
        """Sent / opened / clicked messages of the test group per variant:
        one grouped read for all the variants shown."""
        groups = self.env["mkt.trace"]._read_group(
            [
                ("ab_variant_id", "in", self.ids),
                ("state", "=", "processed"),
                ("is_test", "=", False),
            ],
            ["ab_variant_id", "ab_group"],
            ["__count", "open_datetime:count", "click_datetime:count"],
        )
        stats = {(variant.id, group): counts for variant, group, *counts in groups}
        for variant in self:
            sent, opened, clicked = stats.get((variant.id, "test"), (0, 0, 0))
            variant.sent_count = sent
            variant.opened_count = opened
            variant.clicked_count = clicked
            variant.open_rate = 100.0 * opened / sent if sent else 0.0
            variant.click_rate = 100.0 * clicked / sent if sent else 0.0
            variant.winner_sent_count = stats.get((variant.id, "winner"), (0, 0, 0))[0]

    @api.depends("activity_id.ab_winner_id")
    def _compute_is_winner(self):
        for variant in self:
            variant.is_winner = variant.activity_id.ab_winner_id == variant

    @api.constrains("share", "activity_id")
    def _check_shares(self):
        for activity in self.activity_id:
            if sum(activity.ab_variant_ids.mapped("share")) > 100:
                raise ValidationError(
                    self.env._(
                        "The variants of step %(step)s share more than 100%% of its participants.",
                        step=activity.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        Activity = self.env["mkt.activity"]
        contents = []
        for vals in vals_list:
            activity = Activity.browse(vals.get("activity_id"))
            # the author's rights decide what the content may contain, as on the step
            Activity._check_content_rights(vals, activity.campaign_id.model_name)
            contents.append({f: vals.pop(f) for f in ("subject", "body_html") if f in vals})
        variants = super().create(vals_list)
        for variant, content in zip(variants, contents, strict=False):
            activity = variant.activity_id
            if activity.activity_type != "email" or not activity.mailing_id:
                raise ValidationError(
                    self.env._(
                        "Only e-mail steps have variants: %(step)s is not one.",
                        step=activity.name,
                    )
                )
            # the engine's copy of the step's mailing (its link to the step is
            # the campaign's, as for the step's own mailing: only the engine sets it)
            variant.mailing_id = activity.mailing_id.sudo().copy(
                {
                    "mkt_activity_id": activity.id,
                    "name": f"{activity.mailing_id.sudo().name} - {variant.name}",
                }
            )
            if content:
                # written in the author's environment: mailing.mailing checks
                # the template-editor restriction on write
                variant.mailing_id.write(content)
        return variants

    def write(self, vals):
        model_names = set(self.mapped("campaign_id.model_name"))
        if vals.get("activity_id"):
            # read with the user's rights: never moved to a step they may not read
            activity = self.env["mkt.activity"].browse(vals["activity_id"])
            model_names.add(activity.campaign_id.model_name)
        for model_name in model_names or {False}:
            self.env["mkt.activity"]._check_content_rights(vals, model_name)
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_sent(self):
        if self.filtered("sent_count"):
            raise UserError(
                self.env._(
                    "A variant that was sent cannot be deleted: its results belong to the step."
                )
            )

    def unlink(self):
        mailings = self.mailing_id
        res = super().unlink()
        # the engine's copies, never sent (see _unlink_except_sent)
        mailings.unlink()
        return res
