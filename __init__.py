from odoo.tools import SQL

from . import controllers
from . import models
from . import report
from . import tools
from . import wizard


def uninstall_hook(env):
    """Remove what the addon created at run time outside its own tables, which
    Odoo's uninstall (tables, views, columns, indexes, crons and records of the
    module's data files) does not know of:

    - the server actions it created: the Actions menu entries of WhatsApp
      templates (Allow Multi) and the actions of campaigns made from a
      template (registered under the module's name when created);
    - its settings (``mkt_campaign.*`` system parameters), also those saved
      from the settings screen, which have no XML id.
    """
    templates = env["mkt.whatsapp.template"].with_context(active_test=False).search([])
    actions = templates.multi_action_id
    owned = (
        env["ir.model.data"]
        .search(
            [
                ("module", "=", "mkt_campaign"),
                ("model", "=", "ir.actions.server"),
                ("name", "=like", "campaign_template_action_%"),
            ]
        )
        .filtered(lambda xmlid: xmlid.name.startswith("campaign_template_action_"))
    )
    actions |= env["ir.actions.server"].browse(owned.mapped("res_id")).exists()
    if actions:
        # steps refer to their action with ondelete='restrict'; the steps go
        # with the addon's tables right after this hook
        env.cr.execute(
            SQL(
                "UPDATE mkt_activity SET server_action_id = NULL WHERE server_action_id = ANY(%s)",
                actions.ids,
            )
        )
        actions.unlink()
    # campaigns hold their phase with ondelete='restrict': the phases of the
    # data file are deleted before the campaigns' table is dropped
    env.cr.execute("UPDATE mkt_campaign SET phase_id = NULL WHERE phase_id IS NOT NULL")
    settings = env["ir.config_parameter"].search([("key", "=like", "mkt_campaign.%")])
    settings.filtered(lambda param: param.key.startswith("mkt_campaign.")).unlink()
