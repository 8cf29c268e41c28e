import functools
import logging
import re
import uuid
from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL
from odoo.tools.misc import file_open

from ..tools.mail_batch import SmtpBatch, tracked_body
from .link_tracker import MktLinkCache
from .mkt_trace import TransientDbError

_logger = logging.getLogger(__name__)

# mailing.trace failure types that mean "do not send to this recipient"
REJECTING_FAILURES = {
    "mail_bl",
    "mail_optout",
    "mail_dup",
    "mail_email_invalid",
    "mail_email_missing",
    "sms_blacklist",
    "sms_optout",
    "sms_duplicate",
    "sms_number_missing",
    "sms_number_format",
}
# failures worth another attempt later
TRANSIENT_FAILURES = {"mail_smtp", "sms_server", "sms_acc", "sms_credit"}
# a temporary (4xx) SMTP reply to MAIL FROM, RCPT TO or DATA: Odoo records it as
# an 'unknown' failure whose reason holds smtplib's "(451, b'4.3.0 …')"
SMTP_TEMPORARY_REPLY = re.compile(r"\(4\d\d, b['\"]")
# what mail.mail.send() reads of each mail, its message and its recipients
MESSAGE_PREFETCH = [
    "subject",
    "body",
    "email_from",
    "reply_to",
    "message_id",
    "model",
    "res_id",
    "author_id",
    "attachment_ids",
    "record_alias_domain_id",
    "record_company_id",
    "message_type",
    "partner_ids",
    "mail_ids",
]


@functools.lru_cache(maxsize=64)  # the same sender for a whole chunk
def _split_and_format(emails):
    return tuple(tools.mail.email_split_and_format_normalize(emails))


class MailingMailing(models.Model):
    _inherit = "mailing.mailing"

    mkt_activity_id = fields.Many2one(
        "mkt.activity",
        "Campaign Step",
        index="btree_not_null",
        ondelete="set null",
        copy=False,
        readonly=True,
        help="This mailing is the content of a marketing campaign step: the campaign "
        "sends it, recipient by recipient, when the step comes due.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._mkt_check_step_link(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._mkt_check_step_link(vals)
        return super().write(vals)

    @api.model
    def _mkt_check_step_link(self, vals):
        """The link to a campaign step is the campaign's (readonly does not
        stop an RPC write): a mailing is not attached to or detached from a
        step by hand."""
        if "mkt_activity_id" in vals and not self.env.su:
            raise AccessError(
                self.env._(
                    "The campaign step of a mailing is set by the campaign: edit the step's "
                    "content from the campaign instead."
                )
            )

    def action_put_in_queue(self):
        self._mkt_refuse_direct_send()
        return super().action_put_in_queue()

    def action_launch(self):
        self._mkt_refuse_direct_send()
        return super().action_launch()

    def _mkt_refuse_direct_send(self):
        steps = self.filtered("mkt_activity_id")
        if steps:
            raise UserError(
                self.env._(
                    "%(mailing)s is the content of step %(step)s of campaign %(campaign)s: "
                    "the campaign sends it. Launch the campaign instead.",
                    mailing=steps[0].subject,
                    step=steps[0].mkt_activity_id.name,
                    campaign=steps[0].mkt_activity_id.campaign_id.name,
                )
            )

    def _mkt_send(self, res_ids):
        """Generate this mailing for ``res_ids`` in the caller's transaction.

        Same composer values as ``_action_send_mail`` (mass_mailing), but never
        auto-committed: the campaign batch owns the transaction, so a failure
        rolls back to its savepoint and nothing half-done is kept."""
        self.ensure_one()
        mailing = self._mkt_mailing_in_user_context()
        composer = mailing._mkt_composer(res_ids)
        mails, _messages = composer._action_send_mail(auto_commit=False)
        mailing._mkt_mark_done()
        return mails

    def _mkt_mailing_in_user_context(self):
        context_user = self.user_id or self.write_uid or self.env.user
        return self.with_context(**self.env["res.users"].with_user(context_user).context_get())

    def _mkt_composer(self, res_ids):
        """The mass-mail composer Email Marketing uses for this mailing
        (``_action_send_mail`` of mass_mailing), on ``res_ids``."""
        mailing = self
        user_partner = self.env.user.partner_id
        odoobot = self.env.ref("base.partner_root")
        composer_values = {
            "auto_delete": not mailing.keep_archives,
            "auto_delete_keep_log": mailing.reply_to_mode == "update",
            "author_id": (
                mailing.user_id.partner_id.id if user_partner == odoobot else user_partner.id
            ),
            "attachment_ids": [(4, attachment.id) for attachment in mailing.attachment_ids],
            "body": mailing._prepend_preview(mailing.body_html or "", mailing.preview),
            "composition_mode": "mass_mail",
            "email_from": mailing.email_from,
            # the campaign sends the whole batch itself, in one SMTP session:
            # the composer must not send it by chunks of mail.batch_size
            "force_send": False,
            "mail_server_id": mailing.mail_server_id.id,
            "mass_mailing_id": mailing.id,
            "model": mailing.mailing_model_real,
            "reply_to_force_new": mailing.reply_to_mode == "new",
            "subject": mailing.subject,
            "template_id": False,
            "use_exclusion_list": mailing.use_exclusion_list,
        }
        if mailing.reply_to_mode == "new":
            composer_values["reply_to"] = mailing.reply_to
        return (
            self.env["mail.compose.message"]
            .with_context(
                active_ids=res_ids,
                default_composition_mode="mass_mail",
                **mailing._get_mass_mailing_context(),
            )
            .create(composer_values)
        )

    def _mkt_mark_done(self):
        if self.state != "done":
            self.write({"state": "done", "sent_date": fields.Datetime.now()})

    # ------------------------------------------------------------------
    # Channel adapter (e-mail and SMS steps of campaigns)
    # ------------------------------------------------------------------

    def _mkt_execute(self, traces):
        """Channel adapter of e-mail and SMS steps (contract:
        mkt.trace._execute_activity): send this mailing (the step's content)
        to the records of ``traces`` through Email/SMS Marketing: blacklist,
        opt-out, link tracking and statistics come with it. The messages of
        the chunk go out at once, without waiting for the mail queue cron."""
        if self.mailing_type == "sms":
            return self._mkt_execute_sms(traces)  # mailing_mailing_sms.py
        activity = traces.activity_id
        channel = "sms" if self.mailing_type == "sms" else "mail"
        if channel == "mail" and not self._mkt_fast_email_unsupported():
            return self._mkt_execute_fast(traces)
        # the queue renders as the engine (it runs as superuser), like Email
        # Marketing's own sending; the content was checked with its author's
        # rights when written (mkt.activity._check_content_rights), so this
        # never lets a non-editor's text run more than simple placeholders
        mailing = self.with_context(mkt_campaign_send=True)
        by_res_id = {trace.res_id: trace for trace in traces}
        try:
            with self.env.cr.savepoint():
                mailing._mkt_send(list(by_res_id))
        except TransientDbError:
            raise  # another worker's update: the chunk goes back to the queue
        except Exception as e:  # noqa: BLE001 - the reason is kept on every step
            _logger.exception("mkt_campaign: step %s failed", activity.id)
            return {trace: ("failed", str(e)) for trace in traces}
        self._mkt_link_traces(by_res_id, activity.campaign_id.model_name)
        MailingTrace = self.env["mailing.trace"]
        MailingTrace.invalidate_model()
        mailing_traces = MailingTrace.search([("mkt_trace_id", "in", traces.ids)])
        if channel != "mail":
            return self._mkt_collect_outcome(traces, mailing_traces)
        return self._mkt_send_mails(traces, mailing_traces)

    def _mkt_link_traces(self, by_res_id, model):
        """Link the traces Email/SMS Marketing just created for this mailing
        to our steps (``by_res_id``: record id -> mkt.trace)."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
            UPDATE mailing_trace mt SET mkt_trace_id = v.trace_id
              FROM (SELECT unnest(%(res_ids)s::int[]) AS res_id,
                           unnest(%(trace_ids)s::int[]) AS trace_id) v
             WHERE mt.mass_mailing_id = %(mailing)s AND mt.res_id = v.res_id
               AND mt.model = %(model)s AND mt.mkt_trace_id IS NULL
            """,
                res_ids=list(by_res_id),
                trace_ids=[t.id for t in by_res_id.values()],
                mailing=self.id,
                model=model,
            )
        )
        self.env["mailing.trace"].invalidate_model(["mkt_trace_id"])

    def _mkt_send_mails(self, traces, mailing_traces):
        """Send the mail.mail rows the composer made for ``traces`` (the
        composer path of e-mail steps) and return the steps' outcome."""
        activity = traces.activity_id
        mails = mailing_traces.mail_mail_id.filtered(lambda m: m.state == "outgoing")
        # mail.mail.send() deletes each sent message right after sending it
        # ('auto_delete'), one ORM unlink per mail: about 12 queries each.
        # The batch defers that to one unlink once the outcome is known.
        deferred = mails.filtered("auto_delete")
        if deferred:
            deferred.write({"auto_delete": False})
        # send() walks the mails one by one (browse(id)): without this prefetch
        # each of them reads its own fields, message and recipients
        mails.fetch(
            [
                fname
                for fname, field in mails._fields.items()
                if field.store and field.prefetch is True and not field.inherited
            ]
            + ["recipient_ids", "mailing_trace_ids"]
        )
        messages = mails.mail_message_id
        messages.fetch([fname for fname in MESSAGE_PREFETCH if fname in messages._fields])
        mails.recipient_ids.fetch()
        mails.mailing_trace_ids.fetch(["trace_status", "mass_mailing_id", "res_id", "model"])
        interrupted = False
        traces._mark_sending()
        try:
            mails.send(auto_commit=False, raise_exception=False)
        except Exception as e:  # noqa: BLE001 - e.g. the SMTP server dropped the connection
            _logger.warning("mkt_campaign: sending of step %s interrupted: %s", activity.id, e)
            interrupted = str(e) or e.__class__.__name__
        outcome = self._mkt_collect_outcome(traces, mailing_traces, interrupted=interrupted)
        deferred = deferred.exists()
        if deferred:
            deferred.write({"auto_delete": True})
            # what send() would have deleted: sent, or failed for a missing or
            # invalid address (mail.mail._postprocess_sent_message)
            deferred.filtered(
                lambda m: (
                    m.state == "sent"
                    or m.failure_type in ("mail_email_invalid", "mail_email_missing")
                )
            ).unlink()
        return outcome

    # ------------------------------------------------------------------
    # Batch-native e-mail path (issue 8, section 2)
    # ------------------------------------------------------------------
    #
    # Why it goes around mail.mail: the composer path writes one mail.mail
    # and one mail.message per recipient, then mail.mail.send() reads them
    # back one by one, writes each outcome and deletes each row again
    # (~30 queries a message). Nothing of that is needed to deliver a
    # campaign e-mail: what opens, clicks, replies, bounces and Email
    # Marketing's statistics need is the mailing.trace row (its Message-ID,
    # its id in the tracked links, a mail id for the open pixel). So the
    # chunk is rendered at once by the very composer Email Marketing uses
    # (same values, exclusions and traces), its mailing.trace rows are
    # written in one INSERT, the first message of the chunk is built and
    # prepared by ir.mail_server and the next ones are assembled from a MIME
    # skeleton (tools/mail_batch.py), the chunk goes out over one SMTP
    # session, and each trace's outcome comes from the server's answer to
    # its message. The only mail.mail written is the one of a message the
    # server refused for good (Odoo keeps it to retry from Email Marketing).

    def _mkt_fast_email_unsupported(self):
        """Why this e-mail mailing takes the composer path instead of the
        batch-native one (False when it does not):

        - attachments: mail.mail turns heavy ones into links, copies them per
          message; not worth re-doing for campaign e-mails;
        - ``keep_archives``: the user asked for a mail.mail/mail.message copy
          of every message;
        - replies to the record's thread (``reply_to_mode`` 'update', e.g.
          leads): Odoo threads the answers on the record through the
          mail.message kept for each recipient (auto_delete_keep_log);
        - ``mkt_campaign.fast_email`` set to False (a kill switch)."""
        self.ensure_one()
        param = self.env["ir.config_parameter"].get_param("mkt_campaign.fast_email", "1")
        if param.strip().lower() in ("0", "false", "no", "off"):
            return "disabled"
        if self.attachment_ids:
            return "attachments"
        if self.keep_archives:
            return "keep_archives"
        if self.reply_to_mode != "new":
            return "reply_to_thread"
        return False

    def _mkt_execute_fast(self, traces):
        """Batch-native adapter of e-mail steps (same contract as
        ``_mkt_execute``): no mail.mail / mail.message row per recipient,
        except a mail.mail kept for a message the server refused for good,
        as Odoo keeps one so that it can be retried from Email Marketing."""
        activity = traces.activity_id
        model = activity.campaign_id.model_name
        by_res_id = {trace.res_id: trace for trace in traces}
        res_ids = list(by_res_id)
        try:
            with self.env.cr.savepoint():
                # rendered as the engine, the content having been checked
                # with its author's rights when written (see above)
                mailing = self.with_context(mkt_campaign_send=True)._mkt_mailing_in_user_context()
                # subjects and bodies of the whole chunk rendered at once
                # (mail.render.mixin, links shortened: post_convert_links);
                # blacklist, opt-out, duplicates and invalid addresses
                # excluded and their traces written by Email Marketing itself
                values_all = mailing._mkt_fast_values(res_ids)
                mailing._mkt_mark_done()
                if len(values_all) < len(res_ids):
                    # Email Marketing wrote the traces of the excluded ones
                    mailing._mkt_link_traces(by_res_id, model)
                mtraces, messages = mailing._mkt_fast_prepare(values_all, by_res_id)
        except TransientDbError:
            raise  # another worker's update: the chunk goes back to the queue
        except Exception as e:  # noqa: BLE001 - the reason is kept on every step
            _logger.exception("mkt_campaign: step %s failed", activity.id)
            return {trace: ("failed", str(e)) for trace in traces}
        # one SMTP session per worker, kept open across the chunks of a cron
        # run (closed at its end: mkt.trace._cron_execute_activities)
        batch = SmtpBatch.shared(mailing.mail_server_id, self.env)
        sent = batch.send(messages, on_first_send=traces._mark_sending, keep_open=batch.kept)
        return mailing._mkt_fast_outcome(traces, mtraces, sent, values_all)

    def _mkt_fast_values(self, res_ids):
        """The values Email Marketing's composer gives each record of the
        chunk (``_prepare_mail_values`` then ``_manage_mail_values`` of
        mass_mailing's ``mail.compose.message``), for the mailings the fast
        path takes (no template, no attachment, no e-mail layout, a new
        reply-to): the same renderings, recipients, exclusions and traces,
        but what Odoo computes record by record and the same for all of them
        is computed once for the chunk:

        - subjects, bodies, senders and reply-to rendered for every record
          at once (the composer's ``_render_field``);
        - recipients (``_message_get_default_recipients``) and alias domains
          (bounce address) read for the chunk;
        - mass_mailing's mail layout (a QWeb page reading a stylesheet from
          disk) rendered once and wrapped around each body;
        - the tracked links of the bodies looked up (or created) once for the
          chunk (``link.tracker.search_or_create``, see models/link_tracker.py);
        - no attachment copies nor per-record headers: the fast path sends
          neither (``_mkt_fast_build`` writes the mailing headers).

        Blacklist, opt-out, duplicates, invalid or missing addresses and the
        mailing.trace of every excluded record are the composer's own
        (``_process_mail_values_state``, ``_manage_mail_values``)."""
        self.ensure_one()
        # link trackers looked up once for the chunk, not once per body
        composer = self.with_context(mkt_link_cache=MktLinkCache())._mkt_composer(res_ids)
        Records = self.env[composer.model].with_prefetch(res_ids).browse(res_ids)
        # the recipients' languages, computed once for both renderings (the
        # composer's compute_lang computes them per field); their partners
        # read at once, where _render_lang reads them one by one
        partners = Records._mail_get_partners()
        self.env["res.partner"].union(*partners.values()).fetch(["lang"])
        default_lang = composer.env.context.get("lang")
        langs = {
            res_id: lang or default_lang for res_id, lang in composer._render_lang(res_ids).items()
        }
        subjects = composer._render_field("subject", res_ids, res_ids_lang=langs)
        bodies = composer._render_field(
            "body",
            res_ids,
            res_ids_lang=langs,
            options={"preserve_comments": True},
        )
        emails_from = composer._render_field("email_from", res_ids)
        if composer.reply_to_force_new:
            replies_to = composer._render_field("reply_to", res_ids)
        else:
            replies_to = Records._notify_get_reply_to_batch(
                defaults=emails_from,
                author_ids=dict.fromkeys(res_ids, composer.author_id.id),
            )
        alias_domains = Records._mail_get_alias_domains(default_company=self.env.company)
        recipients = Records._message_get_default_recipients()
        layout = self._mkt_fast_layout()
        static = composer._prepare_mail_values_static()
        values_all = {}
        for res_id in res_ids:
            defaults = recipients.get(res_id, {})
            body = bodies[res_id]
            values_all[res_id] = dict(
                static,
                attachment_ids=[],
                body=body,
                body_html=Markup(layout[0]) + body + Markup(layout[1]) if body and layout else body,
                email_cc=defaults.get("email_cc") or "",
                email_from=emails_from[res_id],
                email_to=defaults.get("email_to") or "",
                mailing_id=self.id,
                recipient_ids=[(4, pid) for pid in defaults.get("partner_ids") or []],
                record_alias_domain_id=alias_domains[res_id].id,
                reply_to=replies_to.get(res_id) or emails_from[res_id],
                res_id=res_id,
                scheduled_date=False,
                subject=subjects[res_id],
            )
        values_all = composer._process_mail_values_state(values_all)
        Message = self.env["mail.message"]
        for values in values_all.values():
            values["message_id"] = values["references"] = Message._get_message_id(values)
        trace_values = composer._prepare_mail_values_mailing_traces(values_all)
        for res_id, values in values_all.items():
            values["mailing_trace_ids"] = [(0, 0, trace_values[res_id])]
        return composer._manage_mail_values(values_all)

    def _mkt_fast_layout(self):
        """mass_mailing's mail layout around a body, as ``(head, tail)``:
        rendered once, where its composer renders it for every message."""
        marker = f"mkt-body-{uuid.uuid4().hex}"
        with file_open("mass_mailing/static/src/scss/mass_mailing_mail.scss", "r") as fd:
            styles = fd.read()
        page = self.env["ir.qweb"]._render(
            "mass_mailing.mass_mailing_mail_layout",
            {"body": Markup(marker), "mailing_style": Markup(f"<style>{styles}</style>")},
            minimal_qcontext=True,
            raise_if_not_found=False,
        )
        if not page or str(page).count(marker) != 1:
            return None
        head, tail = str(page).split(marker)
        return head, tail

    def _mkt_fast_prepare(self, values_all, by_res_id):
        """Write the chunk's mailing.trace rows in one go and build each
        message (``[(mailing.trace, EmailMessage)]``) the way mass_mailing's
        mail.mail does (``_prepare_outgoing_body``, ``_prepare_outgoing_list``):
        tracked links carrying the trace id, open-tracking pixel, the
        recipient's unsubscribe and view links, List-Unsubscribe headers."""
        cr = self.env.cr
        sendable = [
            (res_id, values)
            for res_id, values in values_all.items()
            if values.get("state") not in ("cancel", "exception")
        ]
        # the open pixel is /mail/track/<mail id>/<token>: Email Marketing
        # finds the trace by mail_mail_id_int. Ids taken from mail.mail's own
        # sequence never collide with a real mail.mail.
        cr.execute(
            "SELECT nextval('mail_mail_id_seq') FROM generate_series(1, %s)",
            [len(values_all)],
        )
        mail_ids = [row[0] for row in cr.fetchall()]
        trace_vals = []
        for (res_id, values), mail_id in zip(values_all.items(), mail_ids, strict=True):
            vals = dict(values["mailing_trace_ids"][0][2])
            vals.update(mail_mail_id_int=mail_id, mkt_trace_id=by_res_id[res_id].id)
            if values.get("state") == "exception":
                vals.update(trace_status="error", failure_type=values.get("failure_type"))
            trace_vals.append(vals)
        mtraces = self.env["mailing.trace"].create(trace_vals)
        by_mail_id = {mtrace.mail_mail_id_int: mtrace for mtrace in mtraces}
        mail_id_of = dict(zip(values_all, mail_ids, strict=True))

        partner_ids = {
            command[1]
            for _res_id, values in sendable
            for command in values.get("recipient_ids") or []
        }
        self.env["res.partner"].browse(partner_ids).fetch(["name", "email"])
        messages = []
        for res_id, values in sendable:
            mail_id = mail_id_of[res_id]
            mtrace = by_mail_id[mail_id]
            messages.append((mtrace, self._mkt_fast_build(res_id, values, mtrace.id, mail_id)))
        return mtraces, messages

    def _mkt_fast_build(self, res_id, values, trace_id, mail_id):
        """One message (``ir.mail_server._build_email__``'s arguments) from the composer's
        ``values`` for ``res_id``, as mass_mailing's mail.mail would send it:
        its trace id in the tracked links, the open pixel of ``mail_id``, the
        recipient's unsubscribe / view links, List-Unsubscribe headers."""
        base_url = self.get_base_url()
        email_to = tools.mail.email_split_and_format_normalize(values.get("email_to") or "")
        for partner in self.env["res.partner"].browse(
            [command[1] for command in values.get("recipient_ids") or []]
        ):
            email_to += [
                tools.formataddr((partner.name or "", email))
                for email in tools.mail.email_normalize_all(partner.email) or [partner.email or ""]
            ]
        email_to = [email for email in email_to if email]
        body = values.get("body_html") or ""
        body = (
            ""
            if tools.is_html_empty(body)
            else str(self.env["mail.render.mixin"]._replace_local_links(body))
        )
        if body:
            token = self.env["mail.mail"]._generate_mail_recipient_token(mail_id)
            body = tracked_body(
                body, trace_id, f"{base_url}/mail/track/{mail_id}/{token}/blank.gif"
            )
        headers = {
            "Return-Path": self.env["mail.alias.domain"]
            .browse(values.get("record_alias_domain_id"))
            .bounce_email
            or self.env.company.bounce_email,
        }
        if email_to:
            recipient = tools.email_normalize(email_to[0], strict=False) or email_to[0]
            if f"{base_url}/unsubscribe_from_list" in body:
                body = body.replace(
                    f"{base_url}/unsubscribe_from_list",
                    self._get_unsubscribe_url(recipient, res_id),
                )
            if f"{base_url}/view" in body:
                body = body.replace(f"{base_url}/view", self._get_view_url(recipient, res_id))
            headers.update(
                {
                    "List-Unsubscribe": "<%s>"
                    % self._get_unsubscribe_oneclick_url(recipient, res_id),
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                    "Precedence": "list",
                    "X-Auto-Response-Suppress": "OOF",
                }
            )
        emails_from = _split_and_format(values["email_from"])
        # built (once per chunk the stock way, else from a skeleton) and
        # sent by tools/mail_batch.py
        return dict(
            validated_to=[tools.email_normalize(email) for email in email_to],
            email_from=emails_from[0] if emails_from else values["email_from"],
            email_to=email_to,
            subject=values.get("subject") or "",
            body=body,
            body_alternative=tools.html2plaintext(body),
            reply_to=values.get("reply_to"),
            message_id=values["message_id"],
            references=values.get("references"),
            object_id=f"{res_id}-{values.get('model') or self.mailing_model_real}",
            subtype="html",
            subtype_alternative="plain",
            headers={key: value for key, value in headers.items() if value},
        )

    def _mkt_fast_outcome(self, traces, mtraces, sent, values_all):
        """Write the SMTP outcome on the chunk's mailing.trace rows (one
        UPDATE per outcome) and return the steps' outcome (contract of
        ``_mkt_execute``)."""
        MailingTrace = self.env["mailing.trace"]
        outcome = {}
        sent_steps = {mtrace.mkt_trace_id.id for mtrace in sent}
        ok = MailingTrace.browse(
            [mtrace.id for mtrace, (state, _r) in sent.items() if state == "sent"]
        )
        ok.set_sent()
        retried = MailingTrace
        failed = defaultdict(lambda: MailingTrace)
        for mtrace, (state, reason) in sent.items():
            if state == "retry":
                outcome[mtrace.mkt_trace_id] = ("retry", reason)
                retried |= mtrace
            elif state == "failed":
                failed[reason] |= mtrace
        kept = []
        for reason, group in failed.items():
            group.set_failed(failure_type="mail_smtp")
            group.write({"failure_reason": reason})
            for mtrace in group:
                outcome[mtrace.mkt_trace_id] = ("failed", reason)
                kept.append(mtrace)
        if kept:
            # Odoo keeps a message the server refused (state 'exception') so
            # that Email Marketing can retry it: only these get a mail.mail
            by_trace = {
                values["mailing_trace_ids"][0][2]["res_id"]: values
                for values in values_all.values()
            }
            mails = self.env["mail.mail"].create(
                [
                    {
                        key: value
                        for key, value in by_trace[mtrace.res_id].items()
                        if key not in ("mailing_trace_ids", "attachment_ids", "references")
                    }
                    | {
                        "state": "exception",
                        "failure_type": "mail_smtp",
                        "failure_reason": mtrace.failure_reason,
                        "mailing_id": self.id,
                    }
                    for mtrace in kept
                ]
            )
            for mtrace, mail in zip(kept, mails, strict=True):
                mtrace.mail_mail_id = mail
        if retried:
            # the retry makes new statistics, as the composer path does
            retried.unlink()
        # the other steps sent nothing: excluded by Email Marketing
        # (blacklist, opt-out, duplicate, invalid address) or without any
        # address; their outcome is read from their traces as on the
        # composer path
        rest = traces.filtered(lambda t: t.id not in sent_steps)
        if rest:
            MailingTrace.invalidate_model()
            outcome.update(
                self._mkt_collect_outcome(
                    rest, MailingTrace.search([("mkt_trace_id", "in", rest.ids)])
                )
            )
        return outcome

    def _mkt_collect_outcome(self, traces, mailing_traces, interrupted=False):
        """Map the Email/SMS Marketing result of each message to the outcome
        of its step (``traces``). Set-based: a few reads for the batch, one
        unlink for the messages of the steps that are retried."""
        outcome = {}
        failure_labels = None
        seen_ids = set()
        retried = []  # mailing.trace ids whose message is dropped before a retry
        for mtrace in mailing_traces:
            trace = mtrace.mkt_trace_id
            seen_ids.add(trace.id)
            status, failure_type = mtrace.trace_status, mtrace.failure_type
            if interrupted and mtrace.mail_mail_id.state == "outgoing":
                # the batch stopped before this message left: try it again later
                outcome[trace] = ("retry", interrupted)
                retried.append(mtrace.id)
                continue
            rejected = status == "cancel" or failure_type in REJECTING_FAILURES
            if not rejected and status != "error":
                continue  # sent (or still outgoing): processed
            if failure_labels is None:
                failure_labels = dict(
                    mailing_traces._fields["failure_type"]._description_selection(self.env)
                )
            reason = (
                mtrace.mail_mail_id.failure_reason
                or mtrace.failure_reason
                or failure_labels.get(failure_type)
                or ""
            )
            if rejected:
                outcome[trace] = ("rejected", reason or self.env._("Not sent."))
            elif failure_type in TRANSIENT_FAILURES or (
                failure_type == "unknown" and SMTP_TEMPORARY_REPLY.search(reason)
            ):
                outcome[trace] = ("retry", reason)
                retried.append(mtrace.id)
            else:
                outcome[trace] = ("failed", reason or self.env._("Sending failed."))
        if retried:
            retried = mailing_traces.browse(retried)
            retried.mail_mail_id.unlink()
            retried.unlink()
        for trace in traces:
            if trace.id not in seen_ids:
                outcome[trace] = (
                    "rejected",
                    self.env._("No message was generated for this recipient (no address)."),
                )
        return outcome

    def _get_seen_list(self):
        # a campaign never queues a step twice for a participant: Email
        # Marketing's "already mailed" scan over every past trace is not needed
        if self.env.context.get("mkt_campaign_send"):
            return set()
        return super()._get_seen_list()

    def _get_opt_out_list(self):
        # Email Marketing reads opt-outs only for mailings on mailing lists: a
        # campaign's messages also skip addresses opted out of its lists
        opt_out = super()._get_opt_out_list()
        lists = self.mkt_activity_id.campaign_id.mailing_list_ids
        if lists:
            opt_out = set(opt_out) | lists._mailing_get_opt_out_list(self)
        return opt_out

    def _mkt_check_content(self, activity):
        """Refuse a step whose message cannot be sent: no content, or
        placeholders that do not render on the campaign's records."""
        self.ensure_one()
        if not self:
            raise ValidationError(
                self.env._(
                    "Step %(step)s has no message: write its content first.", step=activity.name
                )
            )
        if self.mailing_type == "mail":
            if not self.email_from:
                raise ValidationError(
                    self.env._(
                        "The e-mail of step %(step)s has no sender address: set its "
                        "'Send From' in Email Marketing or the company's e-mail.",
                        step=activity.name,
                    )
                )
            if not self.subject:
                raise ValidationError(
                    self.env._("The e-mail of step %(step)s has no subject.", step=activity.name)
                )
            if not (self.body_html and self.body_html.striptags().strip()) and "<img" not in (
                self.body_html or ""
            ):
                raise ValidationError(
                    self.env._("The e-mail of step %(step)s has no content.", step=activity.name)
                )
            fnames = ["subject", "body_html"]
        else:
            if not (self.body_plaintext or "").strip():
                raise ValidationError(
                    self.env._("The SMS of step %(step)s has no text.", step=activity.name)
                )
            fnames = ["body_plaintext"]
        Model = self.env[activity.campaign_id.model_name]
        sample = Model.search(activity.campaign_id._get_domain(), limit=1) or Model.search(
            [], limit=1
        )
        if not sample:
            return
        for fname in fnames:
            try:
                self._render_field(fname, sample.ids)
            except Exception as e:  # noqa: BLE001 - reported to the user
                raise ValidationError(
                    self.env._(
                        "The %(part)s of step %(step)s does not render: %(error)s",
                        part=self._fields[fname].string,
                        step=activity.name,
                        error=e,
                    )
                ) from e
