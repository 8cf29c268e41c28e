-- mkt_campaign: a neutralized copy of the database (staging) sends no
-- campaign message and accepts no provider callback.

-- the addon's crons (enrolment, queue, WhatsApp template approvals, A/B test
-- winners) off
UPDATE ir_cron
   SET active = false
 WHERE id IN (
       SELECT res_id
         FROM ir_model_data
        WHERE model = 'ir.cron'
          AND module = 'mkt_campaign'
);

-- WhatsApp Cloud API and Firebase Cloud Messaging: credentials and endpoints
-- cleared (sending steps then fail with "not configured"); without an app
-- secret the WhatsApp webhook refuses every call
DELETE FROM ir_config_parameter
 WHERE key IN (
       'mkt_campaign.whatsapp_endpoint',
       'mkt_campaign.whatsapp_token',
       'mkt_campaign.whatsapp_phone_number_id',
       'mkt_campaign.whatsapp_account_id',
       'mkt_campaign.whatsapp_verify_token',
       'mkt_campaign.whatsapp_app_secret',
       'mkt_campaign.fcm_service_account',
       'mkt_campaign.fcm_endpoint',
       -- without a secret the provider feedback endpoint refuses every call
       'mkt_campaign.feedback_secret'
);

-- the contacts' push devices (their Firebase registration tokens), as mail
-- does with mail_push_device
DELETE FROM mkt_push_token;
