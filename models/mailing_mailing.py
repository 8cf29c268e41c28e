from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError


class MailingMailing(models.Model):
    _inherit = "mailing.mailing"

    mkt_activity_id = fields.Many2one(
        "mkt.activity", "Campaign Step", index="btree_not_null", ondelete="set null",
        copy=False, readonly=True,
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
            raise AccessError(self.env._(
                "The campaign step of a mailing is set by the campaign: edit the step's "
                "content from the campaign instead."
            ))

    def action_put_in_queue(self):
        self._mkt_refuse_direct_send()
        return super().action_put_in_queue()

    def action_launch(self):
        self._mkt_refuse_direct_send()
        return super().action_launch()

    def _mkt_refuse_direct_send(self):
        steps = self.filtered("mkt_activity_id")
        if steps:
            raise UserError(self.env._(
                "%(mailing)s is the content of step %(step)s of campaign %(campaign)s: "
                "the campaign sends it. Launch the campaign instead.",
                mailing=steps[0].subject, step=steps[0].mkt_activity_id.name,
                campaign=steps[0].mkt_activity_id.campaign_id.name,
            ))

    def _mkt_send(self, res_ids):
        """Generate this mailing for ``res_ids`` in the caller's transaction.

        Same composer values as ``_action_send_mail`` (mass_mailing), but never
        auto-committed: the campaign batch owns the transaction, so a failure
        rolls back to its savepoint and nothing half-done is kept."""
        self.ensure_one()
        if self.mailing_type == "sms":
            return self.action_send_sms(res_ids=res_ids)
        context_user = self.user_id or self.write_uid or self.env.user
        mailing = self.with_context(
            **self.env["res.users"].with_user(context_user).context_get()
        )
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
        composer = self.env["mail.compose.message"].with_context(
            active_ids=res_ids,
            default_composition_mode="mass_mail",
            **mailing._get_mass_mailing_context(),
        ).create(composer_values)
        mails, _messages = composer._action_send_mail(auto_commit=False)
        if mailing.state != "done":
            mailing.write({"state": "done", "sent_date": fields.Datetime.now()})
        return mails

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

    def _mkt_check_content(self, activity):
        """Refuse a step whose message cannot be sent: no content, or
        placeholders that do not render on the campaign's records."""
        self.ensure_one()
        if not self:
            raise ValidationError(self.env._(
                "Step %(step)s has no message: write its content first.", step=activity.name
            ))
        if self.mailing_type == "mail":
            if not self.email_from:
                raise ValidationError(self.env._(
                    "The e-mail of step %(step)s has no sender address: set its "
                    "'Send From' in Email Marketing or the company's e-mail.",
                    step=activity.name,
                ))
            if not self.subject:
                raise ValidationError(self.env._(
                    "The e-mail of step %(step)s has no subject.", step=activity.name
                ))
            if not (self.body_html and self.body_html.striptags().strip()) and "<img" not in (
                self.body_html or ""
            ):
                raise ValidationError(self.env._(
                    "The e-mail of step %(step)s has no content.", step=activity.name
                ))
            fnames = ["subject", "body_html"]
        else:
            if not (self.body_plaintext or "").strip():
                raise ValidationError(self.env._(
                    "The SMS of step %(step)s has no text.", step=activity.name
                ))
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
                raise ValidationError(self.env._(
                    "The %(part)s of step %(step)s does not render: %(error)s",
                    part=self._fields[fname].string, step=activity.name, error=e,
                )) from e
