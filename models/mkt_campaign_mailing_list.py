from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL


class MktCampaign(models.Model):
    """Audience as a list: "Save as Mailing List" creates an Email Marketing
    mailing list from the campaign's current audience, set-based (one
    INSERT … SELECT of the contacts, one of their subscriptions)."""

    _inherit = "mkt.campaign"

    def action_save_mailing_list(self):
        self.ensure_one()
        self._check_can_run()
        mailing_list = self._save_mailing_list()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mailing.list",
            "res_id": mailing_list.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def _save_mailing_list(self, name=None):
        """A new mailing list holding the records of the current audience that
        have an e-mail address, one contact per address. The audience is what
        the campaign's responsible may read (as for an enrolment) and what
        the user saving it may read: nobody gets a record they could not see.
        Returns the list."""
        self.ensure_one()
        # the list and its contacts are the user's: their Email Marketing rights
        self.env["mailing.contact"].check_access("create")
        self.env["mailing.subscription"].check_access("create")
        mailing_list = self.env["mailing.list"].create(
            {
                "name": name
                or self.env._(
                    "%(campaign)s (%(date)s)",
                    campaign=self.name,
                    date=fields.Date.to_string(fields.Date.context_today(self)),
                ),
            }
        )
        domain = self._get_audience_domain()
        Model = self.env[self.model_name]
        responsible_query = Model.with_env(self._get_audience_env())._search(domain)
        user_query = Model._search(domain)
        cr = self.env.cr
        self.env.flush_all()
        now = fields.Datetime.now()
        if self.model_name == "mailing.contact":
            # the contacts themselves are subscribed
            cr.execute(
                SQL(
                    """
                INSERT INTO mailing_subscription (contact_id, list_id, opt_out,
                                                  create_uid, write_uid, create_date, write_date)
                SELECT t.id, %(list)s, false, %(uid)s, %(uid)s, %(now)s, %(now)s
                  FROM mailing_contact t
                 WHERE t.id IN (%(responsible)s) AND t.id IN (%(user)s)
                   AND t.email_normalized IS NOT NULL
                """,
                    list=mailing_list.id,
                    uid=self.env.uid,
                    now=now,
                    responsible=responsible_query.subselect(),
                    user=user_query.subselect(),
                )
            )
        else:
            email, normalized, name_sql, joins = self._mailing_list_columns(Model)
            cr.execute(
                SQL(
                    """
                WITH audience AS MATERIALIZED (
                    SELECT DISTINCT ON (%(normalized)s) %(name)s AS name, %(email)s AS email,
                           %(normalized)s AS email_normalized
                      FROM %(table)s t %(joins)s
                     WHERE t.id IN (%(responsible)s) AND t.id IN (%(user)s)
                       AND %(normalized)s IS NOT NULL AND %(normalized)s != ''
                  ORDER BY %(normalized)s, t.id
                ), contacts AS (
                    INSERT INTO mailing_contact (name, email, email_normalized, message_bounce,
                                                 create_uid, write_uid, create_date, write_date)
                    SELECT a.name, a.email, a.email_normalized, 0,
                           %(uid)s, %(uid)s, %(now)s, %(now)s
                      FROM audience a
                 RETURNING id
                )
                INSERT INTO mailing_subscription (contact_id, list_id, opt_out,
                                                  create_uid, write_uid, create_date, write_date)
                SELECT c.id, %(list)s, false, %(uid)s, %(uid)s, %(now)s, %(now)s FROM contacts c
                """,
                    normalized=normalized,
                    name=name_sql,
                    email=email,
                    joins=joins,
                    table=SQL.identifier(Model._table),
                    responsible=responsible_query.subselect(),
                    user=user_query.subselect(),
                    uid=self.env.uid,
                    now=now,
                    list=mailing_list.id,
                )
            )
        count = cr.rowcount
        self.env["mailing.contact"].invalidate_model()
        self.env["mailing.subscription"].invalidate_model()
        mailing_list.invalidate_recordset()
        self._post_note(
            self.env._(
                "Audience saved as the mailing list %(list)s (%(count)s contacts) by %(user)s.",
                list=mailing_list.name,
                count=count,
                user=self.env.user.name,
            ),
            self.env["res.partner"],
        )
        return mailing_list

    def _mailing_list_columns(self, Model):
        """SQL of (e-mail, normalized e-mail, name, joins) for the records of
        ``Model`` (alias ``t``): their own e-mail, or their contact's."""

        def stored(fname):
            field = Model._fields.get(fname)
            return bool(field and field.store and field.column_type and not field.translate)

        email_fname = Model._mail_get_primary_email_field()
        if email_fname and stored(email_fname):
            email = SQL("t.%s", SQL.identifier(email_fname))
            normalized = (
                SQL("t.email_normalized")
                if stored("email_normalized")
                else SQL("lower(trim(t.%s))", SQL.identifier(email_fname))
            )
            joins = SQL("")
        elif (partner_sql := Model._mkt_partner_sql("t")) is not None:
            email = SQL("rp.email")
            normalized = SQL("rp.email_normalized")
            joins = SQL("JOIN res_partner rp ON rp.id = %s", partner_sql)
        else:
            raise UserError(
                self.env._(
                    "%(target)s records have no e-mail address to save in a mailing list.",
                    target=self.model_id.name,
                )
            )
        rec_name = Model._rec_name
        if rec_name and stored(rec_name):
            name = SQL("t.%s", SQL.identifier(rec_name))
        elif (partner_sql := Model._mkt_partner_sql("t")) is not None:
            name = SQL("(SELECT p.name FROM res_partner p WHERE p.id = %s)", partner_sql)
        else:
            name = email
        return email, normalized, name, joins
