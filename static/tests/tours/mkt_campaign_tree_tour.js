import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

function writeEmailStep(name, subject, body) {
    return [
        {
            content: `Name the step ${name}`,
            trigger: ".modal .o_field_widget[name=name] input",
            run: `edit ${name}`,
        },
        {
            content: "Write the subject",
            trigger: ".modal .o_field_widget[name=subject] input",
            run: `edit ${subject}`,
        },
        {
            content: "Write the body",
            trigger: ".modal .o_field_widget[name=body_html] .odoo-editor-editable",
            run: `editor ${body}`,
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
            content: `${name} is a card of the tree`,
            trigger: `.o_mkt_workflow_tree .o_mkt_card[data-name="${name}"]`,
        },
    ];
}

// A marketing user builds a three-level workflow from the cards of the
// Workflow tab: a welcome e-mail, a thank-you when it is opened, and a
// follow-up after the thank-you.
registry.category("web_tour.tours").add("mkt_campaign_tree", {
    steps: () => [
        {
            content: "Add the first step",
            trigger: ".o_mkt_workflow_tree .o_field_x2many_list_row_add a",
            run: "click",
        },
        ...writeEmailStep("Tree welcome", "Welcome {{ object.name }}", "Hello and welcome."),
        {
            content: "Add a step under the welcome e-mail",
            trigger: '.o_mkt_card[data-name="Tree welcome"] .o_mkt_add_child',
            run: "click",
        },
        {
            content: "Triggered when the e-mail is opened",
            trigger: ".o-dropdown--menu .o_mkt_add_child_email_open",
            run: "click",
        },
        ...writeEmailStep("Tree thanks", "Thanks {{ object.name }}", "Thank you for reading."),
        {
            content: "The thank-you is under the welcome e-mail, with its trigger in words",
            trigger: '.o_mkt_card[data-name="Tree welcome"] + .o_mkt_tree_children .o_mkt_card[data-name="Tree thanks"] .o_mkt_card_trigger:contains("opened")',
        },
        {
            content: "Add a step under the thank-you",
            trigger: '.o_mkt_card[data-name="Tree thanks"] .o_mkt_add_child',
            run: "click",
        },
        {
            content: "Triggered after the thank-you",
            trigger: ".o-dropdown--menu .o_mkt_add_child_after_parent",
            run: "click",
        },
        ...writeEmailStep("Tree follow-up", "News for {{ object.name }}", "Here is our news."),
        {
            content: "The follow-up is on the third level",
            trigger: '.o_mkt_tree_node[data-level="2"] .o_mkt_card[data-name="Tree follow-up"]',
        },
        ...stepUtils.saveForm(),
        {
            content: "Figures are shown on the saved steps",
            trigger: '.o_mkt_card[data-name="Tree follow-up"] .o_mkt_figure_processed',
        },
        {
            content: "A figure opens the matching rows of the queue",
            trigger: '.o_mkt_card[data-name="Tree welcome"] .o_mkt_figure_scheduled',
            run: "click",
        },
        {
            content: "The queue of the step is shown",
            trigger: '.o_breadcrumb:contains("Tree welcome")',
        },
    ],
});

// With no campaign yet, the dashboard shows the templates: one click creates
// the draft and opens it, its workflow as a tree.
registry.category("web_tour.tours").add("mkt_campaign_dashboard_template", {
    steps: () => [
        {
            content: "Pick the Prioritize Hot Leads template",
            trigger: ".o_mkt_campaign_templates .o_mkt_template_prioritize_hot_leads",
            run: "click",
        },
        {
            content: "The draft campaign opens with the template's workflow",
            trigger: '.o_form_view .o_mkt_card[data-name="Nice to meet you"]',
        },
        {
            content: "Its children are cards under it",
            trigger: ".o_form_view .o_mkt_tree_children .o_mkt_card",
        },
    ],
});
