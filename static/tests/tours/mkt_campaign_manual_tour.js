import { registry } from "@web/core/registry";

// A running campaign whose workflow changed: the form offers Rebuild Queue,
// then the participants list sends a one-off e-mail to a selected participant
// and the queue sends a scheduled step now (Send Now).
registry.category("web_tour.tours").add("mkt_campaign_manual_sending", {
    steps: () => [
        {
            content: "The form offers to rebuild the queue",
            trigger: '.alert-info button[name="action_rebuild_queue"]',
            run: "click",
        },
        {
            content: "Requeue failed steps too",
            trigger: ".modal .o_field_widget[name=requeue_failed] input",
            run: "click",
        },
        {
            content: "Rebuild",
            trigger: '.modal button[name="action_rebuild"]',
            run: "click",
        },
        {
            content: "The counts are shown",
            trigger: ".o_notification:contains(re-planned)",
        },
        {
            content: "The banner is gone",
            trigger: '.o_form_view:not(:has(.alert-info button[name="action_rebuild_queue"]))',
        },
        {
            content: "The phase is shown in its status bar",
            trigger: '.o_field_widget[name=phase_id] button.o_arrow_button_current',
        },
        {
            content: "Open the participants",
            trigger: 'button[name="action_view_participants"]',
            run: "click",
        },
        {
            content: "Select Tour Alice",
            trigger: '.o_data_row:has(td[name=record_name]:contains("Tour Alice")) .o_list_record_selector input',
            run: "click",
        },
        {
            content: "Message the selected participant",
            trigger: 'button[name="action_message_participants"]',
            run: "click",
        },
        {
            content: "Write the subject",
            trigger: ".modal .o_field_widget[name=subject] input",
            run: "edit Your gift, {{ object.name }}",
        },
        {
            content: "Write the body",
            trigger: ".modal .o_field_widget[name=body_html] .odoo-editor-editable",
            run: "editor A gift is waiting for you in store.",
        },
        {
            content: "Send",
            trigger: '.modal button[name="action_send"]',
            run: "click",
        },
        {
            content: "The message is queued",
            trigger: ".o_notification:contains(messages are queued)",
        },
        {
            content: "Back to the campaign",
            trigger: '.o_breadcrumb .breadcrumb-item a:contains("Tour Manual")',
            run: "click",
        },
        {
            content: "Open its queue",
            trigger: 'button[name="action_view_traces"]',
            run: "click",
        },
        {
            content: "Select Tour Bob's scheduled welcome",
            trigger: '.o_data_row:has(td[name=record_name]:contains("Tour Bob")):has(td[name=activity_id]:contains("Welcome")) .o_list_record_selector input',
            run: "click",
        },
        {
            content: "Send it now",
            trigger: 'button[name="action_send_now"]',
            run: "click",
        },
        {
            content: "It is due now",
            trigger: ".o_notification:contains(due now)",
        },
    ],
});
