import logging

from odoo import models

from .mkt_trace import TransientDbError

_logger = logging.getLogger(__name__)


class MailingMailing(models.Model):
    """SMS steps of campaigns (as mass_mailing_sms adds SMS to Email
    Marketing): the step's mailing renders the chunk's SMS through SMS
    Marketing's composer (blacklist, opt-out, number checks, link tracking,
    mailing.trace and sms.tracker rows), then the campaign sends them at once
    through Odoo's SMS API, one request per batch of ``sms.session.batch.size``.
    A step is processed only when the provider accepted its SMS; delivery
    reports arriving later through ``/sms/status`` reach it in
    models/sms_tracker.py."""

    _inherit = "mailing.mailing"

    def _mkt_execute_sms(self, traces):
        """Channel adapter of SMS steps (contract: mkt.trace._execute_activity)."""
        activity = traces.activity_id
        # rendered as the engine (the queue runs as superuser), like the e-mail
        # steps; the text was checked with its author's rights when written
        mailing = self.with_context(mkt_campaign_send=True)
        by_res_id = {trace.res_id: trace for trace in traces}
        try:
            with self.env.cr.savepoint():
                # the mailing's environment: the campaign's context (opt-out
                # lists, no "already sent" scan) reaches the composer
                composer = (
                    mailing.env["sms.composer"]
                    .with_context(active_id=False)
                    .create(
                        # the campaign sends the SMS itself, below, to know the outcome
                        mailing._send_sms_get_composer_values(list(by_res_id))
                        | {
                            "mass_force_send": False,
                        }
                    )
                )
                composer._action_send_sms()
        except TransientDbError:
            raise  # another worker's update: the chunk goes back to the queue
        except Exception as e:  # the reason is kept on every step
            _logger.exception("mkt_campaign: SMS step %s failed", activity.id)
            return {trace: ("failed", str(e)) for trace in traces}
        self._mkt_link_traces(by_res_id, activity.campaign_id.model_name)
        MailingTrace = self.env["mailing.trace"]
        MailingTrace.invalidate_model()
        mailing_traces = MailingTrace.search([("mkt_trace_id", "in", traces.ids)])
        sms = (
            self.env["sms.sms"]
            .browse([sms_id for sms_id in mailing_traces.mapped("sms_id_int") if sms_id])
            .exists()
        )
        outgoing = sms.filtered(lambda s: s.state == "outgoing")
        if outgoing:
            traces._mark_sending()
            # Odoo's SMS API: one request per batch; each result updates the
            # SMS, its sms.tracker and its mailing.trace (sent 'pending',
            # or 'error' with the provider's failure type)
            outgoing.send(unlink_failed=False, unlink_sent=True, raise_exception=False)
            self.env.invalidate_all()
        outcome = self._mkt_collect_outcome(traces, mailing_traces.exists())
        failure_labels = dict(
            self.env["sms.sms"]._fields["failure_type"]._description_selection(self.env)
        )
        sent_by_trace = {
            mtrace.mkt_trace_id: sms_row
            for sms_row in outgoing.exists()
            for mtrace in sms_row.mailing_trace_ids
        }
        for trace, (state, reason) in list(outcome.items()):
            sms_row = sent_by_trace.get(trace)
            if sms_row and sms_row.state == "error":
                outcome[trace] = (
                    state,
                    self.env._(
                        "The SMS provider did not accept the message: %(error)s",
                        error=failure_labels.get(sms_row.failure_type) or reason,
                    ),
                )
        # a retried step gets a new SMS: drop the one that failed
        (outgoing.exists().filtered(lambda s: not s.mailing_trace_ids.exists())).unlink()
        return outcome

    def _get_opt_out_list_sms(self):
        opt_out = super()._get_opt_out_list_sms()
        lists = self.mkt_activity_id.campaign_id.mailing_list_ids
        if not lists:
            return opt_out
        if self.mailing_model_real == "mailing.contact":
            return opt_out + lists._mailing_get_opt_out_list_sms(self)
        # other targets matched the lists by address
        emails = lists._mailing_get_opt_out_list(self)
        Model = self.env[self.mailing_model_real]
        field = Model._fields.get("email_normalized")
        if emails and field and field.store:
            opt_out = opt_out + Model.search([("email_normalized", "in", list(emails))]).ids
        return opt_out

    def _get_seen_list_sms(self):
        if self.env.context.get("mkt_campaign_send"):
            return [], []
        return super()._get_seen_list_sms()
