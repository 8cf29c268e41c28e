import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta

from werkzeug.urls import url_parse

from odoo import tools
from odoo.exceptions import AccessError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import HttpCase, tagged, users
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import MktCampaignCommon

WEBHOOK = "/mkt_campaign/whatsapp/webhook"
SECRET = "meta-app-secret"


def _sign(body, secret=SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@tagged("post_install", "-at_install", "mkt_campaign", "security")
class TestSecurityEndpoints(MktCampaignCommon, HttpCase):
    """The public endpoints (WhatsApp webhook, push registration, double
    opt-in), the opt-in date, the multi-company rules of the addon's models
    and the neutralization of a copied database, each tried as the attacker."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.portal_anna = mail_new_test_user(
            cls.env,
            login="portal_anna",
            name="Anna Portal",
            email="anna.portal@example.com",
            groups="base.group_portal",
        )
        cls.portal_bert = mail_new_test_user(
            cls.env,
            login="portal_bert",
            name="Bert Portal",
            email="bert.portal@example.com",
            groups="base.group_portal",
        )
        # a salesman who edits contacts and runs campaigns, without managing them
        cls.user_salesman = mail_new_test_user(
            cls.env,
            login="mkt_salesman",
            name="Sam Salesman",
            email="sam.sales@example.com",
            groups="base.group_user,base.group_partner_manager,"
            "mkt_campaign.group_mkt_campaign_user",
        )
        # a queue row WhatsApp reports on: sent, with its message id
        cls.campaign, cls.steps = cls._create_campaign([("welcome", {})])
        cls.campaign.action_start()
        cls.trace = cls.campaign.participant_ids.trace_ids.filtered(
            lambda t: t.res_id == cls.alice.id
        )
        cls.trace.sudo().write(
            {"state": "processed", "whatsapp_message_id": "wamid.SEC1", "error_message": False}
        )

    # ------------------------------------------------------------------
    # WhatsApp webhook
    # ------------------------------------------------------------------

    def _set_secret(self, secret):
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.whatsapp_app_secret", secret)

    def _failed_status_body(self):
        return json.dumps(
            {
                "entry": [
                    {
                        "changes": [
                            {
                                "value": {
                                    "statuses": [
                                        {
                                            "id": "wamid.SEC1",
                                            "status": "failed",
                                            "errors": [{"code": 131049, "title": "Forged failure"}],
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                ]
            }
        ).encode()

    def _post_webhook(self, body, signature=None):
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        return self.url_open(WEBHOOK, data=body, headers=headers)

    def assertTraceUntouched(self):
        self.trace.invalidate_recordset()
        self.assertEqual((self.trace.state, self.trace.error_message), ("processed", False))

    @mute_logger("odoo.addons.mkt_campaign.controllers.main")
    def test_webhook_closed_without_secret(self):
        """Attack 3: with no app secret configured, an anonymous POST of
        forged statuses is refused (403) and changes nothing, signed or not."""
        self._set_secret(False)
        body = self._failed_status_body()
        response = self._post_webhook(body)
        self.assertEqual(response.status_code, 403)
        self.assertIn("no app secret", response.text)
        # a signature made with an empty key does not open it either
        self.assertEqual(self._post_webhook(body, _sign(body, secret="")).status_code, 403)
        self.assertTraceUntouched()

    def test_settings_say_webhook_closed(self):
        """The WhatsApp settings warn that the webhook is closed while no app
        secret is set."""
        arch = self.env["res.config.settings"].get_views([(False, "form")])["views"]["form"]["arch"]
        match = re.search(r'<div[^>]*name="mkt_whatsapp_webhook_closed"[^>]*>', arch)
        self.assertTrue(match, "the settings show the warning")
        self.assertIn('invisible="mkt_whatsapp_app_secret"', match.group(0))
        self.assertIn("The webhook is closed", arch)

    @mute_logger("odoo.addons.mkt_campaign.controllers.main")
    def test_webhook_bad_signature(self):
        self._set_secret(SECRET)
        body = self._failed_status_body()
        for signature in (
            None,
            "",
            "sha256=0000",
            _sign(body, secret="other-secret"),
            _sign(body + b" "),
        ):
            with self.subTest(signature=signature):
                self.assertEqual(self._post_webhook(body, signature).status_code, 403)
        self.assertTraceUntouched()

    def test_webhook_good_signature(self):
        """A payload signed with the app secret (on its raw bytes) is processed."""
        self._set_secret(SECRET)
        body = self._failed_status_body()
        response = self._post_webhook(body, _sign(body))
        self.assertEqual((response.status_code, response.text), (200, "OK"))
        self.trace.invalidate_recordset()
        self.assertIn("Forged failure", self.trace.error_message)

    @mute_logger("odoo.addons.mkt_campaign.controllers.main", "odoo.http")
    def test_webhook_oversized_payload(self):
        """A payload over 1 MiB is refused (413) from its length, even signed."""
        self._set_secret(SECRET)
        body = self._failed_status_body()
        body = body[:-1] + b', "padding": "' + b"x" * (1024 * 1024) + b'"}'
        response = self._post_webhook(body, _sign(body))
        self.assertEqual(response.status_code, 413)
        self.assertTraceUntouched()

    # ------------------------------------------------------------------
    # Push registration
    # ------------------------------------------------------------------

    def _register(self, token, **params):
        return self.make_jsonrpc_request(
            "/mkt_campaign/push/register", {"token": token, "platform": "android", **params}
        )

    def _devices(self, partner):
        return (
            self.env["mkt.push.token"]
            .with_context(active_test=False)
            .search([("partner_id", "=", partner.id)])
        )

    @mute_logger("odoo.http")
    def test_push_register_own_partner_only(self):
        """A user registers devices for their own contact only and cannot take
        over a device registered to another contact."""
        anna_groups = self.portal_anna.group_ids
        self.authenticate("portal_anna", "portal_anna")
        # a partner_id in the request is ignored: the device is Anna's
        self._register("device-anna", partner_id=self.portal_bert.partner_id.id)
        device = self.env["mkt.push.token"].search([("token", "=", "device-anna")])
        self.assertEqual(device.partner_id, self.portal_anna.partner_id)

        # Bert tries to move Anna's device to himself: refused, nothing changed
        self.authenticate("portal_bert", "portal_bert")
        with self.assertRaises(JsonRpcException):
            self._register("device-anna")
        device.invalidate_recordset()
        self.assertEqual((device.partner_id, device.active), (self.portal_anna.partner_id, True))
        # nor can he unregister it
        self.make_jsonrpc_request("/mkt_campaign/push/unregister", {"token": "device-anna"})
        device.invalidate_recordset()
        self.assertTrue(device.active)
        self.assertFalse(self._devices(self.portal_bert.partner_id))

        # once Anna unregistered it (device handed over), it may be registered again
        self.authenticate("portal_anna", "portal_anna")
        self.make_jsonrpc_request("/mkt_campaign/push/unregister", {"token": "device-anna"})
        self.authenticate("portal_bert", "portal_bert")
        self._register("device-anna")
        device.invalidate_recordset()
        self.assertEqual((device.partner_id, device.active), (self.portal_bert.partner_id, True))
        self.assertEqual(self.portal_anna.group_ids, anna_groups)

    def test_push_register_cap(self):
        """Registering more devices than the cap deactivates the oldest ones."""
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.push_max_devices", 3)
        self.authenticate("portal_anna", "portal_anna")
        for index in range(5):
            self._register(f"device-{index}")
        devices = self._devices(self.portal_anna.partner_id)
        self.assertEqual(len(devices), 5)
        active = devices.filtered("active")
        self.assertEqual(sorted(active.mapped("token")), ["device-2", "device-3", "device-4"])
        for device in devices - active:
            self.assertIn("at most 3 active devices", device.last_error)
        # re-registering an old device brings it back, the oldest active one goes
        self._register("device-0")
        devices.invalidate_recordset()
        self.assertEqual(
            sorted(devices.filtered("active").mapped("token")), ["device-0", "device-3", "device-4"]
        )

    # ------------------------------------------------------------------
    # Double opt-in
    # ------------------------------------------------------------------

    def _optin_page(self, token):
        return self.url_open(f"/mkt_campaign/optin?token={token}")

    def _confirm(self, token, csrf=True):
        data = {"token": token}
        if csrf:
            data["csrf_token"] = self._csrf()
        return self.url_open("/mkt_campaign/optin", data=data)

    def _page_csrf(self, page):
        return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)

    def _csrf(self):
        """A CSRF token of this browser session, from a confirmation page."""
        return self._page_csrf(self._optin_page(self.outsider._mkt_optin_token()))

    def test_optin_get_does_not_confirm(self):
        """Following the link (a mail scanner) shows the page and confirms
        nothing; the page's button (POST) confirms."""
        url = url_parse(self.bob.mkt_optin_url)
        for _attempt in range(2):
            page = self.url_open(f"{url.path}?{url.query}")
            self.assertEqual(page.status_code, 200)
        self.bob.invalidate_recordset()
        self.assertFalse(self.bob.mkt_optin_date)
        token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
        response = self.url_open(
            "/mkt_campaign/optin", data={"token": token, "csrf_token": self._page_csrf(page)}
        )
        self.assertEqual(response.status_code, 200)
        self.bob.invalidate_recordset()
        self.assertTrue(self.bob.mkt_optin_date)
        # the link now says it is done
        self.assertIn(
            "Your subscription is confirmed", self.url_open(f"{url.path}?{url.query}").text
        )

    @mute_logger("odoo.http")
    def test_optin_post_requires_csrf(self):
        token = self.bob._mkt_optin_token()
        response = self._confirm(token, csrf=False)
        self.assertEqual(response.status_code, 400)
        self.bob.invalidate_recordset()
        self.assertFalse(self.bob.mkt_optin_date)

    def test_optin_expired_or_other_address(self):
        """The token carries the address and expires: an expired token, one
        signed for another address, or for a record whose address changed
        since, confirms nothing."""
        env = self.env(su=True)
        expired = tools.hash_sign(
            env,
            "mkt_campaign-optin",
            ["res.partner", self.bob.id, "bob@example.com"],
            expiration=datetime.now() - timedelta(hours=1),
        )
        other_address = tools.hash_sign(
            env,
            "mkt_campaign-optin",
            ["res.partner", self.bob.id, "eve@example.com"],
            expiration=timedelta(days=1),
        )
        other_scope = tools.hash_sign(
            env,
            "other-scope",
            ["res.partner", self.bob.id, "bob@example.com"],
            expiration=timedelta(days=1),
        )
        carol_token = self.carol._mkt_optin_token()
        self.carol.email = "carol.new@example.com"
        for name, token in (
            ("expired", expired),
            ("other address", other_address),
            ("other scope", other_scope),
            ("address changed", carol_token),
            ("garbage", "AAAA"),
            ("empty", ""),
        ):
            with self.subTest(token=name):
                self.assertEqual(self._optin_page(token).status_code, 403)
                self.assertEqual(self._confirm(token).status_code, 403)
        (self.bob | self.carol).invalidate_recordset()
        self.assertFalse(self.bob.mkt_optin_date)
        self.assertFalse(self.carol.mkt_optin_date)
        # the valid token of Bob still confirms
        self.assertEqual(self._confirm(self.bob._mkt_optin_token()).status_code, 200)
        self.bob.invalidate_recordset()
        self.assertTrue(self.bob.mkt_optin_date)

    @users("mkt_salesman")
    @mute_logger("odoo.addons.base.models.ir_model")
    def test_optin_date_not_writable_by_plain_users(self):
        """A user who may edit contacts (and run campaigns) cannot forge the
        recipient's consent: the opt-in date is refused, on contacts, leads
        and mailing contacts, in write and create."""
        groups = self.env.user.group_ids
        bob = self.bob.with_user(self.env.user)
        with self.assertRaisesRegex(AccessError, "confirmation link"):
            bob.write({"mkt_optin_date": "2026-01-01 10:00:00"})
        with self.assertRaisesRegex(AccessError, "confirmation link"):
            self.env["res.partner"].create(
                {
                    "name": "Forged",
                    "email": "forged@example.com",
                    "mkt_optin_date": "2026-01-01 10:00:00",
                }
            )
        with self.assertRaisesRegex(AccessError, "confirmation link"):
            self.env["mailing.contact"].create(
                {
                    "name": "Forged",
                    "email": "forged@example.com",
                    "mkt_optin_date": "2026-01-01 10:00:00",
                }
            )
        bob.invalidate_recordset()
        self.assertFalse(self.bob.mkt_optin_date)
        # other fields stay editable, and writing the unchanged value is harmless
        bob.write({"phone": "+32470000099", "mkt_optin_date": False})
        self.assertEqual(self.env.user.group_ids, groups)

    @users("mkt_manager")
    def test_optin_date_writable_by_manager(self):
        """A marketing campaign manager may record a consent obtained
        elsewhere (e.g. an imported list of mailing contacts)."""
        contact = self.env["mailing.contact"].create(
            {
                "name": "Imported",
                "email": "imported@example.com",
                "mkt_optin_date": "2026-01-01 10:00:00",
            }
        )
        self.assertTrue(contact.mkt_optin_date)
        contact.write({"mkt_optin_date": False})
        self.assertFalse(contact.mkt_optin_date)

    # ------------------------------------------------------------------
    # Record rules
    # ------------------------------------------------------------------

    @users("mkt_manager")
    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_company_rules(self):
        """A manager whose only company is A sees none of company B's WhatsApp
        templates (nor their variables), push devices, refinements or
        previous-campaign lines."""
        sudo = self.env(su=True)
        company_b = self.company_2
        self.assertNotIn(company_b, self.env.user.company_ids)
        template_b = sudo["mkt.whatsapp.template"].create(
            {
                "name": "B offer",
                "template_name": "b_offer",
                "company_id": company_b.id,
                "body": "Hello {{1}}",
                "variable_ids": [(0, 0, {"index": 1, "field_path": "name", "sample": "X"})],
            }
        )
        template_a = sudo["mkt.whatsapp.template"].create(
            {
                "name": "A offer",
                "template_name": "a_offer",
                "body": "Hello",
                "company_id": self.env.company.id,
            }
        )
        partner_b = sudo["res.partner"].create({"name": "Bea B", "company_id": company_b.id})
        partner_shared = sudo["res.partner"].create({"name": "Sid Shared", "company_id": False})
        device_b, device_shared = sudo["mkt.push.token"].create(
            [
                {"partner_id": partner_b.id, "token": "device-b"},
                {"partner_id": partner_shared.id, "token": "device-shared"},
            ]
        )
        campaign_b = sudo["mkt.campaign"].create(
            {
                "name": "B campaign",
                "model_id": self.partner_model.id,
                "company_id": company_b.id,
                "domain": self.audience_domain,
            }
        )
        refinement_b = sudo["mkt.campaign.refinement"].create(
            {"campaign_id": campaign_b.id, "res_id": self.alice.id}
        )
        previous_b = sudo["mkt.campaign.previous"].create(
            {"campaign_id": campaign_b.id, "previous_campaign_id": self.campaign.id}
        )

        Template = self.env["mkt.whatsapp.template"]
        self.assertEqual(Template.search([("id", "in", (template_a | template_b).ids)]), template_a)
        self.assertFalse(
            self.env["mkt.whatsapp.template.variable"].search([("template_id", "=", template_b.id)])
        )
        self.assertEqual(
            self.env["mkt.push.token"].search([("id", "in", (device_b | device_shared).ids)]),
            device_shared,
        )
        self.assertFalse(self.env["mkt.campaign.refinement"].search([("id", "=", refinement_b.id)]))
        self.assertFalse(self.env["mkt.campaign.previous"].search([("id", "=", previous_b.id)]))
        for record in (template_b, device_b, refinement_b, previous_b):
            with self.subTest(model=record._name), self.assertRaises(AccessError):
                record.with_user(self.env.user).read(["display_name"])

    # ------------------------------------------------------------------
    # Neutralization
    # ------------------------------------------------------------------

    def test_neutralize(self):
        """A neutralized copy of the database sends nothing: the addon's
        crons are off, WhatsApp and Firebase credentials and endpoints are
        cleared (the webhook is then closed) and push devices are gone."""
        params = self.env["ir.config_parameter"].sudo()
        keys = (
            "whatsapp_endpoint",
            "whatsapp_token",
            "whatsapp_phone_number_id",
            "whatsapp_account_id",
            "whatsapp_verify_token",
            "whatsapp_app_secret",
            "fcm_service_account",
            "fcm_endpoint",
            "feedback_secret",
        )
        for key in keys:
            params.set_param(f"mkt_campaign.{key}", f"value-of-{key}")
        params.set_param("mkt_campaign.batch_size", 321)
        self.env["mkt.push.token"].create({"partner_id": self.alice.id, "token": "device-x"})
        crons = (
            self.env["ir.cron"]
            .search([])
            .filtered(lambda cron: cron.get_external_id()[cron.id].startswith("mkt_campaign."))
        )
        # enrolment, queue, WhatsApp template approvals, A/B test winners,
        # phase transitions
        self.assertEqual(len(crons), 5)
        crons.active = True

        queries = list(get_neutralization_queries(["mkt_campaign"]))
        self.assertEqual(len(queries), 1, "data/neutralize.sql is found")
        self.env.flush_all()
        for query in queries:
            self.env.cr.execute(query)
        self.env.invalidate_all()
        self.env.registry.clear_cache()

        self.assertFalse(any(crons.mapped("active")))
        for key in keys:
            self.assertFalse(params.get_param(f"mkt_campaign.{key}"), key)
        self.assertEqual(params.get_param("mkt_campaign.batch_size"), "321", "other settings kept")
        self.assertFalse(self.env["mkt.push.token"].with_context(active_test=False).search([]))
        # the WhatsApp webhook is closed now
        body = self._failed_status_body()
        with mute_logger("odoo.addons.mkt_campaign.controllers.main"):
            self.assertEqual(
                self._post_webhook(body, _sign(body, "value-of-whatsapp_app_secret")).status_code,
                403,
            )
        self.assertTraceUntouched()
