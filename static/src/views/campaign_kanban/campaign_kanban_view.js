import { Component, onWillStart } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { KanbanRenderer } from "@web/views/kanban/kanban_renderer";
import { kanbanView } from "@web/views/kanban/kanban_view";

/** With no campaign yet: the six templates as cards, one click creating the draft. */
export class MktCampaignTemplateHelper extends Component {
    static template = "mkt_campaign.CampaignTemplateHelper";
    static props = ["noContentHelp?"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.templates = [];
        onWillStart(async () => {
            try {
                this.templates = await this.orm.call(
                    "mkt.campaign.template",
                    "get_template_cards",
                    []
                );
            } catch {
                // a user who may not create campaigns from templates: the plain helper
                this.templates = [];
            }
        });
    }

    async onTemplateClick(key) {
        const action = await this.orm.call("mkt.campaign.template", "action_create_from_template", [
            key,
        ]);
        await this.action.doAction(action);
    }
}

export class MktCampaignKanbanRenderer extends KanbanRenderer {
    static template = "mkt_campaign.CampaignKanbanRenderer";
    static components = { ...KanbanRenderer.components, MktCampaignTemplateHelper };
}

export const mktCampaignKanbanView = {
    ...kanbanView,
    Renderer: MktCampaignKanbanRenderer,
};

registry.category("views").add("mkt_campaign_kanban", mktCampaignKanbanView);
