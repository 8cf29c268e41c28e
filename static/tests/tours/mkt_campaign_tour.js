import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

// A marketing user builds a campaign from scratch in the Marketing app and launches it.
registry.category("web_tour.tours").add("mkt_campaign_create_and_launch", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the Marketing app",
            trigger: '.o_app[data-menu-xmlid="mkt_campaign.mkt_campaign_menu_root"]',
            run: "click",
        },
        {
            content: "Create a campaign",
            trigger: ".o_control_panel_main_buttons .o-kanban-button-new, .o_control_panel_main_buttons .o_list_button_add",
            run: "click",
        },
        {
            content: "Name it",
            trigger: ".o_field_widget[name=name] input",
            run: "edit Tour Spring Sale",
        },
        {
            content: "Add a step to the workflow",
            trigger: ".o_field_widget[name=activity_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Name the step",
            trigger: ".modal .o_field_widget[name=name] input",
            run: "edit Spring e-mail",
        },
        {
            content: "Write the subject with a placeholder",
            trigger: ".modal .o_field_widget[name=subject] input",
            run: "edit Spring is here, {{ object.name }}",
        },
        {
            content: "Write the body",
            trigger: ".modal .o_field_widget[name=body_html] .odoo-editor-editable",
            run: "editor Our spring sale starts today.",
        },
        {
            content: "Save the step",
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            trigger: "body:not(:has(.modal))",
        },
        {
            content: "The step is in the workflow",
            trigger: '.o_field_widget[name=activity_ids] .o_mkt_card_name:contains("Spring e-mail")',
        },
        ...stepUtils.saveForm(),
        {
            content: "Launch the campaign",
            trigger: 'button[name="action_start"]',
            run: "click",
        },
        {
            content: "The campaign runs",
            trigger: '.o_statusbar_status button.o_arrow_button_current:contains("Running")',
        },
        {
            content: "Participants were enrolled",
            trigger: 'button[name="action_view_participants"] .o_stat_value:not(:contains("0"))',
        },
    ],
});

// A marketing manager starts a campaign from a template and reads its results tab.
registry.category("web_tour.tours").add("mkt_campaign_from_template", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the Marketing app",
            trigger: '.o_app[data-menu-xmlid="mkt_campaign.mkt_campaign_menu_root"]',
            run: "click",
        },
        {
            content: "Open New from Template",
            trigger: '.o_main_navbar a[data-menu-xmlid="mkt_campaign.mkt_campaign_template_menu"], .o_main_navbar button[data-menu-xmlid="mkt_campaign.mkt_campaign_template_menu"]',
            run: "click",
        },
        {
            content: "Pick Prioritize Hot Leads",
            trigger: '.modal .o_field_widget[name=template] input[data-value="prioritize_hot_leads"]',
            run: "click",
        },
        {
            content: "Its description is shown",
            trigger: '.modal .o_field_widget[name=description]:contains("high priority")',
        },
        {
            content: "Create the campaign",
            trigger: '.modal button[name="action_create"]',
            run: "click",
        },
        {
            content: "The draft campaign has the template's workflow",
            trigger: '.o_field_widget[name=activity_ids] .o_mkt_card_name:contains("Nice to meet you")',
        },
        {
            content: "Open the Results tab",
            trigger: '.o_notebook .nav-link:contains("Results")',
            run: "click",
        },
        {
            content: "Budget and outcome are there",
            trigger: '.o_field_widget[name=budget] input',
            run: "edit 250",
        },
        {
            content: "ROI is shown",
            trigger: '.o_field_widget[name=roi]',
        },
        ...stepUtils.saveForm(),
    ],
});
