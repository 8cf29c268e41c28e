import logging
from collections import defaultdict
from datetime import datetime, timezone

from odoo import api, fields, models
from odoo.tools import SQL, email_normalize

from .mail_render_mixin import PAYLOAD_CONTEXT_KEY
from .mkt_trace_attempt import FEEDBACK_KINDS

_logger = logging.getLogger(__name__)

# the webhook's event names (controllers/main.py) -> feedback kind
PROVIDER_EVENTS = {
    "delivered": "delivered",
    "delivery": "delivered",
    "bounce": "bounced_hard",
    "hard_bounce": "bounced_hard",
    "soft_bounce": "bounced_soft",
    "complaint": "complained",
    "spam": "complained",
    "blocked": "blocked",
    "unsubscribe": "unsubscribed",
    "unsubscribed": "unsubscribed",
}
# feedback that takes the address out of every mailing, as Email Marketing
# blacklists addresses that bounce too often
BLACKLISTING = {"complained", "unsubscribed"}


class MktTrace(models.Model):
    """Provider feedback on queue rows, the history of their attempts and the
    participant's payload in the messages they send."""

    _inherit = "mkt.trace"

    payload_text = fields.Text(related="participant_id.payload_text", string="Payload")
    feedback = fields.Selection(
        FEEDBACK_KINDS,
        "Provider Feedback",
        readonly=True,
        index="btree_not_null",
        help="What the provider last said about the message: delivered, bounced, "
        "complaint (marked as spam), blocked or unsubscribed.",
    )
    feedback_answer = fields.Text("Provider Answer", readonly=True)
    feedback_date = fields.Datetime("Feedback On", readonly=True)
    attempt_ids = fields.One2many("mkt.trace.attempt", "trace_id", "Attempt History")

    # ------------------------------------------------------------------
    # Attempt history: written where the queue records outcomes
    # ------------------------------------------------------------------

    def _set_state(self, state, message=False):
        # rows a worker claimed ('processing') end an attempt here: kept in
        # the history before their state changes (one INSERT … SELECT)
        self._record_attempts(state, message)
        return super()._set_state(state, message)

    def _schedule_retry(self, outcome):
        # ir.config_parameter is admin-only (a test run executes as its user): one known key
        params = self.env["ir.config_parameter"].sudo()
        max_attempts = int(params.get_param("mkt_campaign.max_attempts", 5))
        # those given up end 'failed' through _set_state (recorded there)
        retried = self.filtered(lambda t: t.attempts < max_attempts)
        retried._record_attempts("retry", answers={t.id: outcome[t][1] for t in retried})
        return super()._schedule_retry(outcome)

    def _record_attempts(self, outcome, message=False, answers=None):
        """History lines for the claimed rows among these (one INSERT):
        ``outcome`` with ``message``, or each row's own answer (``answers``:
        id -> text)."""
        if not self:
            return
        self.env.flush_all()
        answers = answers or {}
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO mkt_trace_attempt (trace_id, attempt, attempt_date, outcome, answer)
            SELECT t.id, t.attempts, %(now)s, %(outcome)s,
                   COALESCE(a.answer, %(message)s)
              FROM mkt_trace t
              LEFT JOIN (SELECT unnest(%(ids)s::int[]) AS id,
                                unnest(%(answers)s::text[]) AS answer) a ON a.id = t.id
             WHERE t.id = ANY(%(all)s) AND t.state = 'processing'
            """,
                now=fields.Datetime.now(),
                outcome=outcome,
                message=message or None,
                ids=list(answers),
                answers=[str(a or "") or None for a in answers.values()],
                all=self.ids,
            )
        )

    # ------------------------------------------------------------------
    # Payload in the messages of a chunk
    # ------------------------------------------------------------------

    def _execute_channel(self, activity):
        # the participants' payload is read by the templates the channel
        # renders (object_payload, mail_render_mixin.py)
        ctx = {PAYLOAD_CONTEXT_KEY: tuple(self.participant_id.ids)}
        return super(MktTrace, self.with_context(**ctx))._execute_channel(
            activity.with_context(**ctx)
        )

    # ------------------------------------------------------------------
    # Provider feedback
    # ------------------------------------------------------------------

    @api.model
    def _process_provider_feedback(self, payload):
        """Feedback of an e-mail / SMS / WhatsApp provider, verified by the
        caller (the signed webhook): ``{"events": [{"message_id": …, "event":
        "delivered" | "bounce" | "soft_bounce" | "complaint" | "blocked" |
        "unsubscribe", "answer": "…", "timestamp": unix seconds}]}``, the
        message identified by its Message-ID (e-mail), the SMS uuid, or the
        provider's id (WhatsApp wamid). Returns how many events were used.
        Called as superuser by the webhook, whose call is anonymous for Odoo."""
        items = []
        for event in (payload or {}).get("events") or []:
            if not isinstance(event, dict):
                continue
            kind = PROVIDER_EVENTS.get(str(event.get("event") or "").lower())
            message_id = event.get("message_id")
            if not kind or not message_id or not isinstance(message_id, str):
                continue
            try:
                when = datetime.fromtimestamp(float(event["timestamp"]), tz=timezone.utc)
                when = when.replace(tzinfo=None)
            except (KeyError, TypeError, ValueError, OverflowError, OSError):
                when = fields.Datetime.now()
            answer = event.get("answer")
            items.append((message_id.strip(), kind, str(answer)[:2000] if answer else False, when))
        if not items:
            return 0
        message_ids = list({item[0] for item in items})
        MailingTrace = self.env["mailing.trace"]
        mailing_traces = MailingTrace.search(
            [
                ("message_id", "in", message_ids),
                ("mkt_trace_id", "!=", False),
            ]
        )
        by_message = {mt.message_id: mt for mt in mailing_traces}
        # SMS: the uuid the SMS provider knows the message by
        for tracker in self.env["sms.tracker"].search(
            [
                ("sms_uuid", "in", message_ids),
                ("mailing_trace_id.mkt_trace_id", "!=", False),
            ]
        ):
            by_message[tracker.sms_uuid] = tracker.mailing_trace_id
        whatsapp = self.search([("whatsapp_message_id", "in", message_ids)])
        by_wamid = {t.whatsapp_message_id: t for t in whatsapp}
        feedback = []
        bounced = defaultdict(lambda: MailingTrace)  # answer -> mailing traces
        for message_id, kind, answer, when in items:
            mtrace = by_message.get(message_id)
            trace = mtrace.mkt_trace_id if mtrace else by_wamid.get(message_id)
            if not trace:
                continue
            if kind == "bounced_hard" and mtrace and mtrace.trace_type == "mail":
                # as Email Marketing records a bounce: the trace's status, then
                # the campaign's bounce event (mailing_trace.py)
                bounced[answer] |= mtrace
                continue
            feedback.append((trace.id, kind, answer, when))
        for answer, mtraces in bounced.items():
            mtraces.set_bounced(bounce_message=answer)
        self._record_feedback(feedback)
        return len(feedback) + sum(len(mtraces) for mtraces in bounced.values())

    @api.model
    def _record_feedback(self, feedback):
        """``feedback``: [(trace id, kind, answer, date)]. Written in bulk: the
        history lines (one INSERT), the rows' last feedback (one UPDATE; a
        'delivered' arriving late never hides a complaint or a bounce), and
        the blacklisting of the addresses that complained or unsubscribed.
        Called as superuser (the webhook, mailing.trace's events)."""
        if not feedback:
            return
        self.env.flush_all()
        values = SQL(", ").join(
            SQL(
                "(%s::int, %s::varchar, %s::text, %s::timestamp)",
                trace_id,
                kind,
                answer or None,
                date,
            )
            for trace_id, kind, answer, date in feedback
        )
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO mkt_trace_attempt (trace_id, attempt, attempt_date, outcome, answer)
            SELECT t.id, t.attempts, v.date, v.kind, v.answer
              FROM (VALUES %(values)s) AS v(id, kind, answer, date)
              JOIN mkt_trace t ON t.id = v.id
            """,
                values=values,
            )
        )
        self.env.cr.execute(
            SQL(
                """
            UPDATE mkt_trace t
               SET feedback = v.kind, feedback_answer = v.answer, feedback_date = v.date
              FROM (SELECT DISTINCT ON (id) * FROM (VALUES %(values)s) AS v(id, kind, answer, date)
                     ORDER BY id, (kind = 'delivered'), date DESC) v
             WHERE t.id = v.id
               AND NOT (v.kind = 'delivered' AND t.feedback IS NOT NULL
                        AND t.feedback != 'delivered')
            """,
                values=values,
            )
        )
        self.invalidate_model(["feedback", "feedback_answer", "feedback_date", "attempt_ids"])
        self._blacklist_from_feedback(feedback)

    @api.model
    def _blacklist_from_feedback(self, feedback):
        blacklisting = [item for item in feedback if item[1] in BLACKLISTING]
        if not blacklisting:
            return
        traces = self.browse([item[0] for item in blacklisting])
        emails, phones = set(), set()
        for trace in traces:
            if trace.activity_type == "email":
                email = email_normalize(trace.email or "")
                if email:
                    emails.add(email)
            elif trace.activity_type in ("sms", "whatsapp") and trace.phone:
                phones.add(trace.phone)
        message = self.env._(
            "Added to the blocklist by a marketing campaign: the recipient marked a "
            "message as spam or unsubscribed at the provider."
        )
        Blacklist = self.env["mail.blacklist"]
        for email in emails:
            Blacklist._add(email, message=message)
        PhoneBlacklist = self.env["phone.blacklist"]
        if phones:
            PhoneBlacklist._add(list(phones), message=message)
        _logger.info(
            "mkt_campaign: %d addresses and %d numbers blacklisted from provider feedback",
            len(emails),
            len(phones),
        )
