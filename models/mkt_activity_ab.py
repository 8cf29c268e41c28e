import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .engine_fields import EngineMany2one
from .mkt_activity import MktChannel

_logger = logging.getLogger(__name__)

# context key naming the variant whose mailing the channel sends
AB_VARIANT_KEY = "mkt_ab_variant_id"


class MktActivity(models.Model):
    """A/B test of an e-mail step: its variants (mkt.activity.variant) are
    sent to a share of the participants each, assigned deterministically;
    after the test period the variant with the best open or click rate is
    sent to the others (the queue holds them until then, a cron decides)."""

    _inherit = "mkt.activity"

    ab_enabled = fields.Boolean(
        "A/B Test",
        copy=False,
        help="Send variants of this e-mail to a share of the participants each, then "
        "the best one to the others once the test period is over.",
    )
    ab_variant_ids = fields.One2many("mkt.activity.variant", "activity_id", "Variants")
    ab_criterion = fields.Selection(
        [("open", "Open Rate"), ("click", "Click Rate")],
        "Winner By",
        default="open",
        required=True,
    )
    ab_test_hours = fields.Integer(
        "Test Period (hours)",
        default=24,
        help="How long after the first test e-mail the winner is chosen.",
    )
    ab_test_start = fields.Datetime("Test Started On", readonly=True, copy=False)
    ab_test_end = fields.Datetime("Winner Chosen After", compute="_compute_ab_test_end")
    ab_winner_id = fields.Many2one(
        "mkt.activity.variant",
        "Winner",
        readonly=True,
        copy=False,
        ondelete="set null",
    )
    ab_rest_share = fields.Integer(
        "Rest (%)",
        compute="_compute_ab_rest_share",
        help="Share of the participants who get the winner.",
    )

    @api.depends("ab_test_start", "ab_test_hours")
    def _compute_ab_test_end(self):
        for activity in self:
            activity.ab_test_end = activity.ab_test_start and (
                activity.ab_test_start + timedelta(hours=activity.ab_test_hours)
            )

    @api.depends("ab_variant_ids.share")
    def _compute_ab_rest_share(self):
        for activity in self:
            activity.ab_rest_share = max(100 - sum(activity.ab_variant_ids.mapped("share")), 0)

    @api.constrains("ab_enabled", "activity_type", "ab_test_hours")
    def _check_ab(self):
        for activity in self.filtered("ab_enabled"):
            if activity.activity_type != "email":
                raise ValidationError(
                    self.env._(
                        "Only e-mail steps can be A/B tested: %(step)s is not one.",
                        step=activity.name,
                    )
                )
            if activity.ab_test_hours < 1:
                raise ValidationError(
                    self.env._(
                        "The test period of step %(step)s must last at least one hour.",
                        step=activity.name,
                    )
                )

    def _ab_active(self):
        self.ensure_one()
        return self.ab_enabled and self.activity_type == "email" and bool(self.ab_variant_ids)

    def _check_launchable(self):
        res = super()._check_launchable()
        self._check_ab_launchable()
        return res

    def _check_ab_launchable(self):
        """Before launch: a test needs two variants with content."""
        for activity in self.filtered("ab_enabled"):
            if len(activity.ab_variant_ids) < 2:
                raise ValidationError(
                    self.env._(
                        "The A/B test of step %(step)s needs at least two variants.",
                        step=activity.name,
                    )
                )
            for variant in activity.ab_variant_ids:
                variant.mailing_id._mkt_check_content(activity)

    def _mkt_channel(self):
        # a chunk of one variant (mkt.trace._execute_channel below) is sent
        # with that variant's mailing, through the e-mail channel as usual
        variant_id = self.env.context.get(AB_VARIANT_KEY)
        if variant_id and self.activity_type == "email":
            variant = self.ab_variant_ids.filtered(lambda v: v.id == variant_id)
            if variant:
                return MktChannel(variant.mailing_id.with_env(self.env)._mkt_execute)
        return super()._mkt_channel()

    @api.model
    def _cron_ab_decide(self):
        """Choose the winner of the A/B tests whose test period is over and
        wake the queue: the participants held for the winner get it."""
        activities = self.search(
            [
                ("ab_enabled", "=", True),
                ("ab_winner_id", "=", False),
                ("ab_test_start", "!=", False),
            ]
        ).filtered(lambda a: a.ab_test_end <= fields.Datetime.now())
        activities._ab_decide()
        if activities:
            self.env["mkt.trace"]._trigger_queue()

    def _ab_give_winner_to_pending(self):
        """Once the winner is chosen, every row of the step not sent yet gets
        it, set-based: the ones held for the winner, and the ones assigned a
        test variant that have not left (held by the caps or the sending
        window, postponed, waiting for a retry). The rows already sent keep
        their variant: the figures of each variant stay true. Rows a worker
        is processing right now are skipped here (SKIP LOCKED, no wait on
        it): if they come back to the queue, _ab_assign gives them the winner
        when they run again."""
        self.ensure_one()
        self._ab_give_winner(
            SQL(
                """SELECT p.id FROM mkt_trace p
                    WHERE p.activity_id = %s AND p.state = 'scheduled'
                      FOR UPDATE SKIP LOCKED""",
                self.id,
            )
        )

    def _ab_give_winner(self, rows):
        """The winner for the queue rows ``rows`` (SQL selecting their ids)
        that do not have it yet: one UPDATE."""
        self.ensure_one()
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """UPDATE mkt_trace SET ab_variant_id = %(winner)s, ab_group = 'winner'
                WHERE id IN (%(rows)s)
                  AND (ab_variant_id IS DISTINCT FROM %(winner)s
                       OR ab_group IS DISTINCT FROM 'winner')""",
                winner=self.ab_winner_id.id,
                rows=rows,
            )
        )
        self.env["mkt.trace"].invalidate_model(["ab_variant_id", "ab_group"])

    def _ab_decide(self):
        """The variant with the best rate of the chosen criterion in its test
        group wins (ties: more messages sent, then the first variant)."""
        for activity in self:
            variants = activity.ab_variant_ids
            if not variants or activity.ab_winner_id:
                continue
            rate = "open_rate" if activity.ab_criterion == "open" else "click_rate"
            winner = max(variants, key=lambda v: (v[rate], v.sent_count, -v.sequence, -v.id))
            # the engine's field and note (the queue may run as a campaign user's test,
            # who only reads steps and campaigns): a text built here
            activity.sudo().ab_winner_id = winner
            activity._ab_give_winner_to_pending()
            activity.campaign_id.sudo().message_post(
                body=self.env._(
                    "A/B test of step %(step)s: %(variant)s wins with a %(criterion)s of "
                    "%(rate).1f%%; it is sent to the other participants.",
                    step=activity.name,
                    variant=winner.name,
                    criterion=dict(self._fields["ab_criterion"]._description_selection(self.env))[
                        activity.ab_criterion
                    ].lower(),
                    rate=winner[rate],
                )
            )
            _logger.info(
                "mkt_campaign: A/B test of step %s won by variant %s", activity.id, winner.id
            )


class MktTrace(models.Model):
    _inherit = "mkt.trace"

    ab_variant_id = EngineMany2one(
        "mkt.activity.variant",
        "Variant",
        readonly=True,
        index="btree_not_null",
        help="The variant of the step's A/B test this participant received.",
    )
    ab_group = fields.Selection(
        [("test", "Test"), ("winner", "Winner")],
        "A/B Group",
        readonly=True,
        help="Test: received a variant during the test. Winner: received the winning "
        "variant after it.",
    )

    def _execute_activity(self, activity):
        held = self.browse()
        if activity._ab_active():
            held = self._ab_assign(activity)
            if held:
                held._postpone(
                    activity.ab_test_end,
                    activity.env._(
                        "Waiting for the winner of the A/B test (chosen after %(date)s).",
                        date=fields.Datetime.to_string(activity.ab_test_end),
                    ),
                )
        return super(MktTrace, self - held)._execute_activity(activity)

    def _execute_channel(self, activity):
        if not activity._ab_active():
            return super()._execute_channel(activity)
        outcome = {}
        for variant, traces in self.grouped("ab_variant_id").items():
            ctx = {AB_VARIANT_KEY: variant.id}
            outcome.update(
                super(MktTrace, traces.with_context(**ctx))._execute_channel(
                    activity.with_context(**ctx)
                )
            )
        return outcome

    def _ab_assign(self, activity):
        """Give these claimed rows of an A/B tested step their variant, set-based.
        During the test each participant falls in a bucket 0-99 (a hash of the
        participant and the step: deterministic, the same on a retry) and gets
        the variant whose share covers it; the rows beyond the shares are held
        until the winner is chosen. Once it is, no bucket is used any more:
        every row that runs gets the winner, including the ones assigned a
        test variant that did not leave before the decision (claimed rows
        are not sent yet). Returns the rows held until the winner is chosen."""
        now = fields.Datetime.now()
        if not activity.ab_winner_id and activity.ab_test_end and activity.ab_test_end <= now:
            # due before the cron ran: decide now
            activity._ab_decide()
        if activity.ab_winner_id:
            activity._ab_give_winner(SQL("SELECT unnest(%s::int[])", self.ids))
            return self.browse()
        self.env.flush_all()
        ranges, low = [], 0
        for variant in activity.ab_variant_ids.sorted(lambda v: (v.sequence, v.id)):
            ranges.append(SQL("(%s::int, %s::int, %s::int)", variant.id, low, low + variant.share))
            low += variant.share
        self.env.cr.execute(
            SQL(
                """
            UPDATE mkt_trace t SET ab_variant_id = v.variant_id, ab_group = 'test'
              FROM (VALUES %(ranges)s) AS v(variant_id, low, high)
             WHERE t.id = ANY(%(ids)s) AND t.ab_variant_id IS NULL
               AND mod(abs(hashtext(t.participant_id::text || '/' || %(activity)s::text)), 100)
                   >= v.low
               AND mod(abs(hashtext(t.participant_id::text || '/' || %(activity)s::text)), 100)
                   < v.high
            RETURNING t.id
            """,
                ranges=SQL(", ").join(ranges),
                ids=self.ids,
                activity=activity.id,
            )
        )
        if not activity.ab_test_start:
            # the test period starts when the step first runs; the engine's field
            # (a campaign user's test run only reads steps)
            activity.sudo().ab_test_start = now
        self.invalidate_recordset(["ab_variant_id", "ab_group"])
        # rehearsals (test participants) send nothing: never held
        return self.filtered(lambda t: not t.ab_variant_id and not t.is_test)


class MailingMailing(models.Model):
    """Email Marketing's own A/B test does not apply to a campaign step's
    mailing: the step has its own (above). Refused rather than ignored."""

    _inherit = "mailing.mailing"

    @api.constrains("ab_testing_enabled", "mkt_activity_id")
    def _check_mkt_no_mailing_ab_test(self):
        for mailing in self:
            if mailing.mkt_activity_id and mailing.ab_testing_enabled:
                raise ValidationError(
                    self.env._(
                        "%(mailing)s is the content of a campaign step: use the step's A/B Test "
                        "(variants) instead of Email Marketing's.",
                        mailing=mailing.subject,
                    )
                )
