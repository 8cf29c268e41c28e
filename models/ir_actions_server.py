from odoo import models
from odoo.exceptions import AccessError, UserError


class IrActionsServer(models.Model):
    _inherit = "ir.actions.server"

    def _mkt_check_user(self, owner, user, campaign=None):
        """``user`` may run this server action of ``owner`` (a campaign step
        or a campaign phase): the action's own group restriction
        (``group_ids``), as ``ir.actions.server`` checks it when it runs.
        Raises an AccessError naming ``owner`` otherwise. No action: nothing
        to check. When it runs for ``campaign``, ``user`` is the campaign's
        responsible: a campaign without one runs no server action
        (UserError)."""
        if self and campaign is not None and not user:
            raise UserError(
                self.env._(
                    "Campaign %(campaign)s has no responsible user: nobody may run its "
                    "server action %(action)s.",
                    campaign=campaign.name,
                    # sudo: server actions are readable by administrators only; its name
                    action=self.sudo().name,
                )
            )
        # sudo: server actions and their groups are readable by administrators only
        action = self.sudo()
        if not action.group_ids or action.group_ids & user.all_group_ids:
            return
        action.ensure_one()
        values = {
            "user": user.name,
            "action": action.name,
            "groups": ", ".join(action.group_ids.mapped("full_name")),
        }
        if owner._name == "mkt.campaign.phase":
            message = self.env._(
                "Phase %(phase)s: %(user)s may not run the server action %(action)s "
                "(reserved to %(groups)s).",
                phase=owner.name,
                **values,
            )
        else:
            message = self.env._(
                "Step %(step)s: %(user)s may not run the server action %(action)s "
                "(reserved to %(groups)s).",
                step=owner.name,
                **values,
            )
        raise AccessError(message)
