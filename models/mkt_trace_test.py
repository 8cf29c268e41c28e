import random
from collections import defaultdict
from datetime import datetime, time, timedelta

from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from .mkt_trace import NOT_RECORD_TEST

# activity type -> (events a recipient may cause, channel name of _process_event)
SIMULATED_EVENTS = {
    "email": (("open", "click", "reply", "bounce"), "email"),
    "sms": (("click",), "sms"),
    "whatsapp": (("open", "reply"), "whatsapp"),
}


class MktTrace(models.Model):
    """The test on one record (▶ Run, simulated events), date triggers and
    expiry in the queue (issue 10, items 3 and 6)."""

    _inherit = "mkt.trace"

    is_record_test = fields.Boolean(related="participant_id.is_record_test")
    can_simulate = fields.Boolean(compute="_compute_can_simulate")

    def _compute_can_simulate(self):
        for trace in self:
            trace.can_simulate = (
                trace.is_test
                and trace.state == "processed"
                and trace.activity_type in SIMULATED_EVENTS
            )

    # ------------------------------------------------------------------
    # Test on one record
    # ------------------------------------------------------------------

    def action_run_test_step(self):
        """▶ Run: execute these steps of a test on one record now, for real,
        through their channel (the e-mail goes to the record's address); their
        children are queued as for any participant."""
        if not self:
            return True
        self.campaign_id._check_can_run()
        # the queue runs as superuser (mkt.trace._execute_channel): these steps only,
        # of a campaign the user may run, checked to be their test's just below
        traces = self.sudo()
        if not all(traces.mapped("participant_id.is_record_test")):
            raise UserError(
                self.env._(
                    "Only the steps of a test on one record run from the test screen: the "
                    "campaign's queue runs the others."
                )
            )
        if traces.participant_id.filtered(lambda p: p.state == "canceled"):
            raise UserError(self.env._("This test was stopped: launch a new one."))
        todo = traces.filtered(lambda t: t.state == "scheduled")
        if not todo:
            raise UserError(self.env._("This step already ran."))
        # the step's content and settings, as at launch (with the user's rights)
        self.activity_id._check_launchable()
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """UPDATE mkt_trace SET state = 'processing', attempts = attempts + 1,
                      processing_date = %s, send_started = false
                WHERE id = ANY(%s) AND state = 'scheduled'
            RETURNING id""",
                fields.Datetime.now(),
                todo.ids,
            )
        )
        claimed = todo.browse([row[0] for row in self.env.cr.fetchall()])
        claimed.invalidate_recordset(["state", "attempts", "processing_date", "send_started"])
        claimed._execute()
        # the children were inserted in SQL: the test screen lists them
        traces.participant_id.invalidate_recordset(["trace_ids"])
        return True

    def action_simulate(self, event=None):
        """Simulate what the recipient of these test steps' messages does:
        ``event`` ('open', 'click', 'reply', 'bounce'; from the button's context
        when called by a button). Email Marketing's own tracking records it
        when the message has a trace, so the same branches open as for a real
        recipient."""
        event = event or self.env.context.get("mkt_simulate_event")
        if event not in ("open", "click", "reply", "bounce"):
            raise UserError(self.env._("Unknown event to simulate: %(event)s", event=event))
        self.campaign_id._check_can_run()
        # the queue's fields of these test steps (a campaign user only reads steps)
        traces = self.sudo()
        if not all(traces.mapped("is_test")):
            raise UserError(
                self.env._(
                    "Only test steps can simulate their recipient: real recipients' events "
                    "come from their messages."
                )
            )
        for trace in traces:
            events, channel = SIMULATED_EVENTS.get(trace.activity_type, ((), None))
            if event not in events:
                raise UserError(
                    self.env._(
                        "Step %(step)s cannot be %(event)s: simulate an event its channel tracks.",
                        step=trace.activity_id.name,
                        event=dict(self._simulated_event_labels())[event],
                    )
                )
            if trace.state != "processed":
                raise UserError(
                    self.env._(
                        "Run step %(step)s before simulating what its recipient does.",
                        step=trace.activity_id.name,
                    )
                )
            mailing_traces = trace.mailing_trace_ids
            if mailing_traces:
                # the message really went out: its Email/SMS Marketing trace
                # records the event, which reaches the step (mailing.trace.write)
                {
                    "open": mailing_traces.set_opened,
                    "click": mailing_traces.set_clicked,
                    "reply": mailing_traces.set_replied,
                    "bounce": mailing_traces.set_bounced,
                }[event]()
            else:
                if event in ("click", "reply") and "open" in events:
                    trace._process_event("open", channel)
                trace._process_event(event, channel)
        # the branches were queued in SQL: the test screen lists them
        traces.participant_id.invalidate_recordset(["trace_ids"])
        return True

    def _simulated_event_labels(self):
        return [
            ("open", self.env._("opened")),
            ("click", self.env._("clicked")),
            ("reply", self.env._("replied to")),
            ("bounce", self.env._("bounced")),
        ]

    def _simulate_test_engagement(self, activity):
        """Audience-wide test modes send nothing, so nothing is opened: a share
        of the test participants (the campaign's Simulated Engagement) opens
        and then clicks their message, so that the event branches run too."""
        campaign = activity.campaign_id
        share = campaign.test_event_share
        kind = SIMULATED_EVENTS.get(activity.activity_type)
        traces = self.filtered(
            lambda t: t.is_test and not t.participant_id.is_record_test and t.state == "processed"
        )
        if not (share > 0 and kind and traces):
            return
        events, channel = kind
        happened = defaultdict(lambda: self.browse())
        for trace in traces:
            # one draw per step and event: the same participants every run
            rng = random.Random(trace.id)
            for event in ("open", "click"):
                if event not in events:
                    continue
                if rng.random() * 100 >= share:
                    break  # no open, hence no click
                happened[event] |= trace
        for event in ("open", "click"):
            if happened[event]:
                # the engine's own write, as mailing.trace does for real events
                happened[event].sudo()._process_event(event, channel)

    # ------------------------------------------------------------------
    # Date triggers and expiry
    # ------------------------------------------------------------------

    def _apply_record_date(self, activity):
        """Steps on a date of the record (claimed, 'processing'): those whose
        date is still ahead go back to the queue until then, those whose record
        has no date are rejected, those whose date passed too long ago (its
        expiry, or a day) are canceled; the rest run now. Returns the rest.
        The date is read when the step comes up, so a date changed meanwhile
        (a contract extended) moves the step.

        A yearly step (``date_yearly``: birthdays, anniversaries) counts from
        the next anniversary of the date instead: the first whose target
        (anniversary ± delay) is not more than the late window in the past,
        and after the last time a past participation of the same record got
        this step (a short re-entry cooldown never sends one birthday twice)."""
        if activity.trigger_type != "record_date" or not self:
            return self
        if activity.campaign_id.mode == "test":
            return self  # the rehearsal ignores every delay
        field = activity.date_field_id
        Model = self.env[activity.campaign_id.model_name]
        self.env[Model._name].flush_model([field.name])
        if activity.date_yearly:
            self.env["mkt.participant"].flush_model()
            self.env["mkt.trace"].flush_model()
            # when a past participation of the record last got this step: one
            # index lookup each, (campaign_id, res_id) then (participant_id, activity_id)
            last_sent = SQL(
                """(SELECT max(o.processed_date)
                     FROM mkt_participant op
                     JOIN mkt_trace o ON o.participant_id = op.id
                                     AND o.activity_id = t.activity_id
                    WHERE op.campaign_id = t.campaign_id AND op.res_id = t.res_id
                      AND op.is_test = t.is_test AND op.is_record_test IS NOT TRUE
                      AND op.id != t.participant_id AND o.state = 'processed')"""
            )
        else:
            last_sent = SQL("NULL::timestamp")
        self.env.cr.execute(
            SQL(
                "SELECT t.id, r.%s, %s FROM mkt_trace t JOIN %s r ON r.id = t.res_id "
                "WHERE t.id = ANY(%s)",
                SQL.identifier(field.name),
                last_sent,
                SQL.identifier(Model._table),
                self.ids,
            )
        )
        values = {trace_id: (value, last) for trace_id, value, last in self.env.cr.fetchall()}
        now = fields.Datetime.now()
        delay = activity._get_delay()
        late = activity._get_expiry() or timedelta(days=1)
        later, dates, missing, passed = [], [], self.browse(), self.browse()
        for trace in self:
            if trace.is_record_test:
                continue  # the tester runs it now
            value, last = values.get(trace.id, (None, None))
            if not value:
                missing |= trace
                continue
            if not isinstance(value, datetime):
                value = datetime.combine(value, time.min)
            if activity.date_yearly:
                target = activity._next_yearly_target(value, now - late, last)
            elif activity.date_direction == "before":
                target = value - delay
            else:
                target = value + delay
            if target > now:
                later.append(trace.id)
                dates.append(target)
            elif target + late < now:
                passed |= trace
        if later:
            self.env.cr.execute(
                SQL(
                    """UPDATE mkt_trace t SET state = 'scheduled', schedule_date = v.date,
                          attempts = GREATEST(t.attempts - 1, 0), send_started = false,
                          worker_key = NULL, error_message = NULL
                     FROM (SELECT unnest(%s::int[]) AS id, unnest(%s::timestamp[]) AS date) v
                    WHERE t.id = v.id""",
                    later,
                    dates,
                )
            )
            self.browse(later).invalidate_recordset(
                [
                    "state",
                    "schedule_date",
                    "attempts",
                    "send_started",
                    "worker_key",
                    "error_message",
                ]
            )
        missing._set_state(
            "rejected",
            self.env._(
                "The record has no %(field)s.",
                field=field.field_description,
            ),
        )
        passed._set_state(
            "canceled",
            self.env._(
                "The %(field)s of the record had already passed when the step came up.",
                field=field.field_description,
            ),
        )
        return self - missing - passed - self.browse(later)

    def _expire_overdue(self):
        """Cancel, with the reason, the steps not executed within their step's
        expiry after they came due. One UPDATE per expiring step (few)."""
        activities = self.env["mkt.activity"].search(
            [
                ("expiry_number", ">", 0),
                ("campaign_id.state", "=", "running"),
            ]
        )
        if not activities:
            return
        self.env.flush_all()
        now = fields.Datetime.now()
        participants = set()
        units = dict(
            self.env["mkt.activity"]._fields["expiry_type"]._description_selection(self.env)
        )
        for activity in activities:
            self.env.cr.execute(
                SQL(
                    """UPDATE mkt_trace SET state = 'canceled', error_message = %(reason)s,
                          processed_date = %(now)s
                    WHERE activity_id = %(activity)s AND state = 'scheduled'
                      AND schedule_date < %(limit)s
                      AND %(not_record_test)s
                      AND EXISTS (SELECT 1 FROM mkt_campaign c WHERE c.id = mkt_trace.campaign_id
                                     AND c.is_paused IS NOT TRUE
                                     AND c.budget_paused IS NOT TRUE)
                RETURNING participant_id""",
                    reason=self.env._(
                        "Expired: not executed within %(number)s %(unit)s after it came due.",
                        number=activity.expiry_number,
                        unit=units[activity.expiry_type].lower(),
                    ),
                    now=now,
                    activity=activity.id,
                    limit=now - activity._get_expiry(),
                    not_record_test=NOT_RECORD_TEST,
                )
            )
            participants.update(row[0] for row in self.env.cr.fetchall())
        if participants:
            self.invalidate_model(["state", "error_message", "processed_date"])
            self.env["mkt.participant"].browse(participants)._update_completion()
