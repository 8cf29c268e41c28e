{
    "name": "Marketing Campaigns",
    "summary": "Multichannel marketing campaigns: audiences, activity workflows, "
    "a per-recipient send queue and results",
    "description": """
Campaigns target business records (contacts, leads, POS orders...) through a
filter, enrol them as participants and run a workflow of e-mail, SMS,
WhatsApp, push and server-action steps, with delays and branches on what each
recipient did. Every send is a row of the queue; results show rates, budget,
costs, revenue and ROI. POS staff send marketing messages from the order list.
""",
    "version": "19.0.1.2.0",
    "category": "Marketing/Marketing Campaigns",
    "license": "LGPL-3",
    "author": "mkt_campaign developers",
    "website": "https://github.com/mkt-campaign/mkt_campaign",
    "development_status": "Alpha",
    "maintainers": ["mkt-campaign"],
    "depends": [
        "mass_mailing",
        "mass_mailing_sms",
        "mass_mailing_crm",
        "crm",
        "point_of_sale",
        "sale",
        "link_tracker",
        "utm",
        "phone_validation",
    ],
    "data": [
        "security/res_groups_privilege_data.xml",
        "security/res_groups_data.xml",
        "security/mkt_campaign_security.xml",
        "security/ir.model.access.csv",
        "data/ir_config_parameter_data.xml",
        "data/ir_cron_data.xml",
        "data/ir_cron_queue_workers_data.xml",
        "data/mail_activity_type_data.xml",
        "views/mkt_trace_views.xml",
        "views/mkt_participant_views.xml",
        "views/mkt_activity_views.xml",
        "views/mkt_campaign_views.xml",
        "views/mkt_whatsapp_template_views.xml",
        "views/mkt_push_token_views.xml",
        "views/mkt_event_views.xml",
        "views/res_config_settings_views.xml",
        "views/mkt_optin_templates.xml",
        "views/res_partner_views.xml",
        "views/pos_order_views.xml",
        "wizard/mkt_pos_send_views.xml",
        "wizard/mkt_campaign_template_views.xml",
        "wizard/mkt_campaign_refuse_views.xml",
        "views/mkt_campaign_management_views.xml",
        "views/mkt_campaign_menus.xml",
    ],
    "demo": [
        "demo/mkt_campaign_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "mkt_campaign/static/src/**/*",
        ],
        "web.assets_tests": [
            "mkt_campaign/static/tests/tours/*.js",
        ],
    },
    "application": True,
    "uninstall_hook": "uninstall_hook",
}
