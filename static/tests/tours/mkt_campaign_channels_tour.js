import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

// A marketing manager adds an SMS step to a campaign from its form and saves it.
registry.category("web_tour.tours").add("mkt_campaign_sms_step", {
    steps: () => [
        {
            content: "Add a step to the workflow",
            trigger: ".o_field_widget[name=activity_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Name the step",
            trigger: ".modal .o_field_widget[name=name] input",
            run: "edit Text reminder",
        },
        {
            content: "It is an SMS",
            trigger: ".modal .o_field_widget[name=activity_type] input[data-value=sms]",
            run: "click",
        },
        {
            content: "Write the SMS",
            trigger: ".modal .o_field_widget[name=body_plaintext] textarea",
            run: "edit Hello {{ object.name }}, the spring sale ends tonight",
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
            content: "The SMS step is in the workflow",
            trigger: '.o_field_widget[name=activity_ids] .o_mkt_card_name:contains("Text reminder")',
        },
        ...stepUtils.saveForm(),
    ],
});

// POS staff open an order, and from its Extra Info tab send its customer a
// marketing e-mail.
registry.category("web_tour.tours").add("mkt_campaign_pos_order_email", {
    steps: () => [
        {
            content: "Open the Extra Info tab",
            trigger: '.o_notebook a[name="extra"]',
            run: "click",
        },
        {
            content: "Marketing e-mail to this customer",
            trigger: 'button[name="action_mkt_send_email"]',
            run: "click",
        },
        {
            content: "The composer is for one order",
            trigger: '.modal .o_field_widget[name=order_count]:contains("1")',
        },
        {
            content: "Subject",
            trigger: ".modal .o_field_widget[name=subject] input",
            run: "edit A gift for you, {{ object.name }}",
        },
        {
            content: "Body",
            trigger: ".modal .o_field_widget[name=body_html] .odoo-editor-editable",
            run: "editor Come and see our new flower pots.",
        },
        {
            content: "Send",
            trigger: '.modal button[name="action_send"]',
            run: "click",
        },
        {
            content: "Sent: the notification says so",
            trigger: ".o_notification_manager .o_notification",
        },
    ],
});
