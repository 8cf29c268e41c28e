from odoo import api, fields, models
from odoo.exceptions import ValidationError

PERIODS = [("day", "Day"), ("week", "Week"), ("month", "Month")]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    mkt_cap_all = fields.Integer(
        "Messages per Contact",
        config_parameter="mkt_campaign.cap_all",
        help="At most this many campaign messages (all channels) per contact in the "
        "rolling period. 0: no cap.",
    )
    mkt_cap_all_period = fields.Selection(
        PERIODS,
        "Messages Cap Period",
        config_parameter="mkt_campaign.cap_all_period",
        default="week",
    )
    mkt_cap_email = fields.Integer("E-mails per Contact", config_parameter="mkt_campaign.cap_email")
    mkt_cap_email_period = fields.Selection(
        PERIODS,
        "E-mails Cap Period",
        config_parameter="mkt_campaign.cap_email_period",
        default="week",
    )
    mkt_cap_sms = fields.Integer("SMS per Contact", config_parameter="mkt_campaign.cap_sms")
    mkt_cap_sms_period = fields.Selection(
        PERIODS, "SMS Cap Period", config_parameter="mkt_campaign.cap_sms_period", default="week"
    )
    mkt_approval_required = fields.Boolean(
        "Campaigns need approval",
        config_parameter="mkt_campaign.approval_required",
        help="Campaign users submit campaigns; a manager approves or refuses them. Only "
        "approved campaigns launch (test modes excepted: they send nothing).",
    )
    mkt_whatsapp_endpoint = fields.Char(
        "WhatsApp API Endpoint",
        config_parameter="mkt_campaign.whatsapp_endpoint",
        help="Base URL of the WhatsApp Cloud API (Graph API), "
        "default https://graph.facebook.com/v21.0.",
    )
    mkt_whatsapp_token = fields.Char("Access Token", config_parameter="mkt_campaign.whatsapp_token")
    mkt_whatsapp_phone_number_id = fields.Char(
        "Phone Number ID", config_parameter="mkt_campaign.whatsapp_phone_number_id"
    )
    mkt_whatsapp_account_id = fields.Char(
        "Business Account ID", config_parameter="mkt_campaign.whatsapp_account_id"
    )
    mkt_whatsapp_verify_token = fields.Char(
        "Webhook Verify Token",
        config_parameter="mkt_campaign.whatsapp_verify_token",
        help="The token WhatsApp sends when you register the webhook "
        "<your Odoo URL>/mkt_campaign/whatsapp/webhook.",
    )
    mkt_whatsapp_app_secret = fields.Char(
        "App Secret",
        config_parameter="mkt_campaign.whatsapp_app_secret",
        help="Checks the signature (X-Hub-Signature-256) of the webhook's calls. Without "
        "it the webhook is closed: read receipts and replies are refused.",
    )
    mkt_whatsapp_rate = fields.Integer(
        "WhatsApp Messages per Second",
        config_parameter="mkt_campaign.whatsapp_rate",
        default=80,
        help="Campaigns send WhatsApp messages with concurrent requests up to this rate: "
        "the throughput of your business phone number (80 by default on WhatsApp's "
        "Cloud API, up to 1,000 once Meta raised it).",
    )
    pos_mkt_receipt_contacts = fields.Boolean(
        related="pos_config_id.mkt_receipt_contacts",
        readonly=False,
    )
    mkt_feedback_secret = fields.Char(
        "Provider Feedback Secret",
        config_parameter="mkt_campaign.feedback_secret",
        help="Checks the signature (X-Mkt-Signature) of the calls providers make to "
        "<your Odoo URL>/mkt_campaign/feedback. Without it the endpoint is closed.",
    )
    mkt_fcm_service_account = fields.Char(
        "Firebase Service Account",
        config_parameter="mkt_campaign.fcm_service_account",
        help="The service account key (JSON) of the Firebase project the apps use.",
    )
    mkt_push_max_devices = fields.Integer(
        "Devices per Contact",
        config_parameter="mkt_campaign.push_max_devices",
        default=20,
        help="Active push devices a contact keeps: registering one more deactivates the oldest.",
    )
    mkt_fcm_endpoint = fields.Char(
        "Firebase Endpoint",
        config_parameter="mkt_campaign.fcm_endpoint",
        help="Base URL of Firebase Cloud Messaging, default https://fcm.googleapis.com.",
    )
    mkt_queue_workers = fields.Integer(
        "Parallel Queue Workers",
        default=1,
        help="How many cron jobs send the queue at once (1 to 4). Odoo gives each job to "
        "a free cron worker of any server on this database: with several workers "
        "(max_cron_threads, or several servers) one campaign is sent in parallel, every "
        "step by one worker only.",
    )
    mkt_quiet_hours = fields.Boolean(
        "Sending Window",
        config_parameter="mkt_campaign.quiet_hours",
        help="Campaign messages leave only inside this window, in the recipient's time "
        "zone (the contact's, else the company's). Due steps wait for it.",
    )
    mkt_quiet_hour_from = fields.Float(
        "From", config_parameter="mkt_campaign.quiet_hour_from", default=9.0
    )
    mkt_quiet_hour_to = fields.Float(
        "To", config_parameter="mkt_campaign.quiet_hour_to", default=20.0
    )
    mkt_quiet_mon = fields.Boolean("Monday", default=True)
    mkt_quiet_tue = fields.Boolean("Tuesday", default=True)
    mkt_quiet_wed = fields.Boolean("Wednesday", default=True)
    mkt_quiet_thu = fields.Boolean("Thursday", default=True)
    mkt_quiet_fri = fields.Boolean("Friday", default=True)
    mkt_quiet_sat = fields.Boolean("Saturday", default=True)
    mkt_quiet_sun = fields.Boolean("Sunday", default=True)

    @api.constrains("mkt_cap_all", "mkt_cap_email", "mkt_cap_sms")
    def _check_mkt_caps(self):
        for settings in self:
            if min(settings.mkt_cap_all, settings.mkt_cap_email, settings.mkt_cap_sms) < 0:
                raise ValidationError(self.env._("A frequency cap cannot be negative."))

    @api.constrains("mkt_queue_workers")
    def _check_mkt_queue_workers(self):
        for settings in self:
            if not 1 <= settings.mkt_queue_workers <= 4:
                raise ValidationError(self.env._("The queue runs with 1 to 4 parallel workers."))

    @api.constrains("mkt_whatsapp_rate")
    def _check_mkt_whatsapp_rate(self):
        for settings in self:
            if settings.mkt_whatsapp_rate < 1:
                raise ValidationError(
                    self.env._("WhatsApp needs a sending rate of at least one message per second.")
                )

    @api.constrains("mkt_push_max_devices")
    def _check_mkt_push_max_devices(self):
        for settings in self:
            if settings.mkt_push_max_devices < 1:
                raise ValidationError(
                    self.env._("A contact must be allowed at least one push device.")
                )

    @api.constrains(
        "mkt_quiet_hours",
        "mkt_quiet_hour_from",
        "mkt_quiet_hour_to",
        *(f"mkt_quiet_{day}" for day in WEEKDAYS),
    )
    def _check_mkt_window(self):
        for settings in self:
            if not settings.mkt_quiet_hours:
                continue
            if not 0 <= settings.mkt_quiet_hour_from < settings.mkt_quiet_hour_to <= 24:
                raise ValidationError(
                    self.env._(
                        "The sending window is empty: its start must come before its end, "
                        "within the day."
                    )
                )
            if not any(settings[f"mkt_quiet_{day}"] for day in WEEKDAYS):
                raise ValidationError(
                    self.env._("The sending window is empty: choose at least one weekday.")
                )

    @api.model
    def get_values(self):
        res = super().get_values()
        days = self.env["ir.config_parameter"].get_param(
            "mkt_campaign.quiet_weekdays", "0,1,2,3,4,5,6"
        )
        selected = {int(d) for d in days.split(",") if d.strip().isdigit()}
        res.update({f"mkt_quiet_{day}": index in selected for index, day in enumerate(WEEKDAYS)})
        res["mkt_queue_workers"] = len(self.env["mkt.trace"]._queue_crons().filtered("active")) or 1
        return res

    def set_values(self):
        res = super().set_values()
        self.env["ir.config_parameter"].set_param(
            "mkt_campaign.quiet_weekdays",
            ",".join(str(i) for i, day in enumerate(WEEKDAYS) if self[f"mkt_quiet_{day}"]),
        )
        crons = self.env["mkt.trace"]._queue_crons()
        for index, cron in enumerate(crons):
            active = index < self.mkt_queue_workers
            if cron.active != active:
                cron.active = active
        # the newly active jobs start on what is already due
        self.env["mkt.trace"]._trigger_queue()
        return res
