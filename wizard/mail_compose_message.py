from odoo import models
from odoo.tools import SQL


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _get_blacklist_record_ids(self, mail_values_dict, recipients_info=None):
        """For a chunk of a campaign step (context ``mkt_campaign_send``):
        look up the chunk's own addresses in the blocklist (one indexed
        query) where the composer reads the whole blocklist, which a campaign
        would do again for every chunk of 50 messages. Same rule: a record is
        excluded when its address (or one of its recipients') is blocked."""
        if not (
            self.env.context.get("mkt_campaign_send")
            and self.use_exclusion_list
            and self.composition_mode == "mass_mail"
        ):
            return super()._get_blacklist_record_ids(mail_values_dict, recipients_info)
        Model = self.env[self.model]
        if isinstance(Model, self.pool["mail.thread.blacklist"]):
            targets = Model.browse(mail_values_dict.keys())
            targets.fetch(["email_normalized"])
            emails = {
                target.id: {target.email_normalized}
                for target in targets
                if target.email_normalized
            }
        elif recipients_info:
            emails = {
                res_id: set(info["mail_to_normalized"]) for res_id, info in recipients_info.items()
            }
        else:
            return set()
        candidates = set().union(*emails.values())
        if not candidates:
            return set()
        self.env["mail.blacklist"].flush_model(["email", "active"])
        self.env.cr.execute(
            SQL(
                "SELECT email FROM mail_blacklist WHERE active AND email = ANY(%s)",
                sorted(candidates),
            )
        )
        blocked = {row[0] for row in self.env.cr.fetchall()}
        return {res_id for res_id, addresses in emails.items() if addresses & blocked}
