import { registry } from "@web/core/registry";

// POS staff open an order and, from its Extra Info tab, send its customer an
// approved WhatsApp template of POS orders, previewed for that order.
registry.category("web_tour.tours").add("mkt_campaign_pos_order_whatsapp", {
    steps: () => [
        {
            content: "Open the Extra Info tab",
            trigger: '.o_notebook a[name="extra"]',
            run: "click",
        },
        {
            content: "WhatsApp message to this customer",
            trigger: 'button[name="action_mkt_send_whatsapp"]',
            run: "click",
        },
        {
            content: "The composer is for one order, on WhatsApp",
            trigger: '.modal .o_field_widget[name=order_count]:contains("1")',
        },
        {
            content: "Choose the approved template",
            trigger: ".modal .o_field_widget[name=whatsapp_template_id] input",
            run: "edit Order ready",
        },
        {
            trigger: '.modal .o-autocomplete--dropdown-item:contains("Order ready")',
            run: "click",
        },
        {
            content: "The preview is rendered for this order",
            trigger: '.modal .o_field_widget[name=preview]:contains("Hi Tour Customer, order")',
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
