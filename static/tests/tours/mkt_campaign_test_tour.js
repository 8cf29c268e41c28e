import { registry } from "@web/core/registry";

// A marketing user tests a campaign on one contact: the first e-mail really
// goes out, the contact "opens" it, and the 'opened' branch runs next.
registry.category("web_tour.tours").add("mkt_campaign_record_test", {
    steps: () => [
        {
            content: "Launch a test",
            trigger: 'button[name="action_open_test_wizard"]',
            run: "click",
        },
        {
            content: "Pick the contact to test on",
            trigger: ".modal .o_field_widget[name=record_ref] input",
            run: "edit Bob Tour",
        },
        {
            trigger: '.o-autocomplete--dropdown-item .dropdown-item:contains("Bob Tour")',
            run: "click",
        },
        {
            content: "Launch",
            trigger: '.modal button[name="action_launch"]',
            run: "click",
        },
        {
            content: "The test screen lists the first step: run it",
            trigger: '.o_data_row:has(td:contains("Tour welcome")) button[name="action_run_test_step"]',
            run: "click",
        },
        {
            content: "The e-mail went out: the contact opens it",
            trigger: '.o_data_row:has(td:contains("Tour welcome")) button[name="action_simulate"]:contains("Opened")',
            run: "click",
        },
        {
            content: "The 'opened' branch is due: run it",
            trigger: '.o_data_row:has(td:contains("Tour thanks")) button[name="action_run_test_step"]',
            run: "click",
        },
        {
            content: "It ran",
            trigger: '.o_data_row:has(td:contains("Tour thanks")) .badge:contains("Processed")',
        },
        {
            content: "The 'not opened' branch was canceled by the open",
            trigger: '.o_data_row:has(td:contains("Tour reminder")) .badge:contains("Canceled")',
        },
        {
            content: "Stop the test",
            trigger: 'button[name="action_stop_test"]',
            run: "click",
        },
        {
            trigger: '.o_statusbar_status button.o_arrow_button_current:contains("Canceled")',
        },
    ],
});

// A marketing user pauses a running campaign from its form, then resumes it.
registry.category("web_tour.tours").add("mkt_campaign_pause_resume", {
    steps: () => [
        {
            content: "Pause the running campaign",
            trigger: 'button[name="action_pause"]',
            run: "click",
        },
        {
            content: "The form says it is paused",
            trigger: '.o_form_sheet .alert-warning:contains("paused")',
        },
        {
            content: "Resume it",
            trigger: 'button[name="action_resume"]',
            run: "click",
        },
        {
            content: "It runs again: Pause is offered, the banner is gone",
            trigger: '.o_form_view:not(:has(.o_form_sheet .alert-warning)) button[name="action_pause"]',
        },
    ],
});
