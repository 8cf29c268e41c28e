import hashlib
import hmac
import json

from odoo.exceptions import UserError, ValidationError
from odoo.tests import HttpCase, tagged

from .common import T0, MktCampaignCommon
from .loopback_whatsapp import LoopbackWhatsAppServer


class WhatsAppMixin:
    """A loopback WhatsApp Cloud API, configured in the settings."""

    @classmethod
    def _start_whatsapp(cls):
        cls.wa = LoopbackWhatsAppServer(token="test-token").start()
        cls.addClassCleanup(cls.wa.stop)
        params = cls.env["ir.config_parameter"].sudo()
        for key, value in (
            ("whatsapp_endpoint", cls.wa.endpoint),
            ("whatsapp_token", "test-token"),
            ("whatsapp_account_id", cls.wa.account_id),
            ("whatsapp_phone_number_id", cls.wa.phone_number_id),
        ):
            params.set_param(f"mkt_campaign.{key}", value)

    @classmethod
    def _approved_template(cls, **values):
        template = cls.env["mkt.whatsapp.template"].create(
            {
                "name": "Spring sale",
                "template_name": "spring_sale",
                "body": "Hello {{1}}, our spring sale starts today!",
                "variable_ids": [(0, 0, {"index": 1, "field_path": "name", "sample": "Alice"})],
                **values,
            }
        )
        template.action_submit()
        cls.wa.set_template_status(template.template_name, "APPROVED")
        template.action_refresh_status()
        return template


@tagged("post_install", "-at_install", "mkt_campaign")
class TestWhatsApp(WhatsAppMixin, MktCampaignCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_whatsapp()

    def test_template_approval(self):
        """A template is submitted to WhatsApp, approved or rejected there, and
        goes back to draft when its content changes."""
        template = self.env["mkt.whatsapp.template"].create(
            {
                "name": "Welcome",
                "template_name": "welcome_pt",
                "language": "pt_BR",
                "body": "Olá {{1}}, bem-vindo à {{2}}!",
                "variable_ids": [
                    (0, 0, {"index": 1, "field_path": "name", "sample": "Ana"}),
                    (0, 0, {"index": 2, "field_path": "company_id.name", "sample": "Loja"}),
                ],
            }
        )
        self.assertEqual(template.status, "draft")
        template.action_submit()
        self.assertEqual(template.status, "pending")
        sent = self.wa.template_requests[-1]
        self.assertEqual(sent["category"], "MARKETING")
        self.assertEqual(sent["components"][0]["example"], {"body_text": [["Ana", "Loja"]]})
        self.wa.set_template_status("welcome_pt", "REJECTED", "INVALID_FORMAT")
        self.env["mkt.whatsapp.template"]._cron_refresh_pending()
        self.assertEqual(
            (template.status, template.rejection_reason), ("rejected", "INVALID_FORMAT")
        )
        template.action_submit()
        self.wa.set_template_status("welcome_pt", "APPROVED")
        template.action_refresh_status()
        self.assertEqual(template.status, "approved")
        template.body = "Olá {{1}}, bem-vinda à {{2}}!"
        self.assertEqual(template.status, "draft", "changed content must be approved again")

    def test_template_checks(self):
        with self.assertRaises(ValidationError) as error:
            self.env["mkt.whatsapp.template"].create(
                {"name": "Bad", "template_name": "Spring Sale!", "body": "Hi"}
            )
        self.assertIn("lowercase letters", str(error.exception))
        with self.assertRaises(ValidationError) as error:
            self.env["mkt.whatsapp.template"].create(
                {
                    "name": "Bad",
                    "template_name": "bad",
                    "body": "Hi {{1}} and {{3}}",
                    "variable_ids": [(0, 0, {"index": 1, "field_path": "name"})],
                }
            )
        self.assertIn("without gaps", str(error.exception))
        with self.assertRaises(ValidationError) as error:
            self.env["mkt.whatsapp.template"].create(
                {
                    "name": "Bad",
                    "template_name": "bad",
                    "body": "Hi {{1}}",
                    "variable_ids": [(0, 0, {"index": 1, "field_path": "nickname"})],
                }
            )
        self.assertIn("has no field nickname", str(error.exception))

    def test_campaign_step(self):
        """A WhatsApp step sends the approved template to each participant's
        number in E.164 with the variables filled; invalid and blacklisted
        numbers are rejected, throttling is retried, undeliverable fails;
        read receipts and replies from the webhook drive the branches."""
        template = self._approved_template()
        self.carol.phone = "not a number"
        self.env["phone.blacklist"].sudo().add("+32470000004")  # Carol's old number, unused
        self.env["phone.blacklist"].sudo().add("+32470000005")  # Dan
        self.wa.throttle_once.add("+32470000002")  # Bob: 429 once
        self.wa.undeliverable.add("+32470000003")  # Alice Again
        campaign, steps = self._create_campaign(
            [
                ("hello", {"activity_type": "whatsapp", "whatsapp_template_id": template.id}),
                (
                    "read",
                    {
                        "parent": "hello",
                        "trigger_type": "whatsapp_read",
                        "activity_type": "server_action",
                    },
                ),
                (
                    "not_read",
                    {
                        "parent": "hello",
                        "trigger_type": "whatsapp_not_read",
                        "activity_type": "server_action",
                        "interval_number": 1,
                        "interval_type": "days",
                    },
                ),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        hello = steps["hello"]
        self.assertTraceStates(
            hello,
            {
                self.alice: "processed",
                self.bob: "scheduled",
                self.alice_dup: "failed",
                self.carol: "rejected",
                self.dan: "rejected",
            },
        )
        by_partner = {self.env["res.partner"].browse(t.res_id): t for t in hello.trace_ids}
        self.assertEqual(
            by_partner[self.carol].error_message, "No valid phone number for WhatsApp."
        )
        self.assertEqual(by_partner[self.dan].error_message, "The phone number is blacklisted.")
        self.assertIn("131026", by_partner[self.alice_dup].error_message)
        self.assertIn("130429", by_partner[self.bob].error_message)
        message = self.wa.messages[0]
        self.assertEqual(message["to"], "+32470000001")
        self.assertEqual(
            message["template"]["components"][0]["parameters"],
            [{"type": "text", "text": "Alice Audience"}],
        )
        # Bob's retry goes through after the back-off
        self._run_queue(T0.replace(hour=10))
        self.assertEqual(by_partner[self.bob].state, "processed")
        self.assertEqual(len(self.wa.messages), 2)

        # Alice reads it: the "read" branch is queued, "not read" canceled
        wamid = by_partner[self.alice].whatsapp_message_id
        self.assertTrue(wamid.startswith("wamid."))
        used = self.env["mkt.whatsapp.template"]._process_webhook(
            {
                "entry": [
                    {
                        "changes": [
                            {
                                "value": {
                                    "statuses": [
                                        {"id": wamid, "status": "delivered"},
                                        {"id": wamid, "status": "read"},
                                    ],
                                    "messages": [
                                        {
                                            "from": "32470000001",
                                            "id": "wamid.in1",
                                            "type": "text",
                                            "text": {"body": "Yes!"},
                                            "context": {"id": wamid},
                                        }
                                    ],
                                }
                            }
                        ]
                    }
                ]
            }
        )
        self.assertEqual(used, 3)
        self.env.invalidate_all()
        self.assertTrue(by_partner[self.alice].open_datetime)
        self.assertTrue(by_partner[self.alice].reply_datetime)
        self.assertEqual(self._traces(steps["not_read"], self.alice).state, "canceled")
        self.assertEqual(self._traces(steps["read"], self.alice).state, "scheduled")
        campaign.invalidate_recordset()
        self.assertEqual((campaign.sent_whatsapp_count, campaign.read_count), (2, 1))
        self.assertAlmostEqual(campaign.read_rate, 50.0)

        # WhatsApp accepted Bob's message, then reports it undeliverable: the
        # step fails with WhatsApp's error and its follow-up is canceled; a
        # late or repeated status never moves Alice's read message backwards
        bob_wamid = by_partner[self.bob].whatsapp_message_id
        failed = {
            "id": bob_wamid,
            "status": "failed",
            "errors": [{"code": 131049, "title": "Message not delivered"}],
        }
        self.env["mkt.whatsapp.template"]._process_webhook(
            {
                "entry": [
                    {
                        "changes": [
                            {
                                "value": {
                                    "statuses": [
                                        failed,
                                        {"id": wamid, "status": "failed", "errors": [{"code": 1}]},
                                    ],
                                }
                            }
                        ]
                    }
                ]
            }
        )
        self.env.invalidate_all()
        self.assertEqual(by_partner[self.bob].state, "failed")
        self.assertIn("Message not delivered", by_partner[self.bob].error_message)
        self.assertEqual(self._traces(steps["not_read"], self.bob).state, "canceled")
        self.assertEqual(by_partner[self.alice].state, "processed")
        campaign.invalidate_recordset()
        self.assertEqual(campaign.sent_whatsapp_count, 1, "an undelivered message is not sent")

    def test_campaign_step_payload_variable(self):
        """A variable may read a key of the participant's payload: each
        recipient gets their own value; without the key (or without a
        payload) the placeholder falls back to "-" as a missing field does."""
        template = self._approved_template(
            name="Coupon",
            template_name="coupon_code",
            body="Hello {{1}}, your code is {{2}} ({{3}}).",
            variable_ids=[
                (0, 0, {"index": 1, "field_path": "name", "sample": "Alice"}),
                (0, 0, {"index": 2, "payload_key": "coupon", "sample": "WELCOME10"}),
                (0, 0, {"index": 3, "payload_key": "tier"}),
            ],
        )
        self.assertEqual(
            self.wa.template_requests[-1]["components"][0]["example"],
            {"body_text": [["Alice", "WELCOME10", "payload.tier"]]},
        )
        campaign, steps = self._create_campaign(
            [("hello", {"activity_type": "whatsapp", "whatsapp_template_id": template.id})],
            domain=repr([("id", "in", (self.alice | self.bob | self.carol).ids)]),
        )
        self._launch(campaign)
        by_res = {p.res_id: p for p in campaign.participant_ids}
        by_res[self.alice.id].payload = {"coupon": "ALICE-10", "tier": 2}
        by_res[self.bob.id].payload = {"other": "x"}  # no coupon, no tier
        # Carol has no payload at all
        self._run_queue(T0)
        self.assertEqual(set(steps["hello"].trace_ids.mapped("state")), {"processed"})
        texts = {
            m["to"]: [p["text"] for p in m["template"]["components"][0]["parameters"]]
            for m in self.wa.messages
        }
        self.assertEqual(
            texts,
            {
                "+32470000001": ["Alice Audience", "ALICE-10", "2"],
                "+32470000002": ["Bob Buyer", "-", "-"],
                "+32470000004": ["Carol Customer", "-", "-"],
            },
        )

    def test_payload_variable_checks(self):
        """A variable reads a field or a payload key, not both nor none; a
        payload key is not checked as a field of the target."""
        Template = self.env["mkt.whatsapp.template"]
        base = {"name": "Bad", "template_name": "bad", "body": "Hi {{1}}"}
        for variable in (
            {"index": 1},
            {"index": 1, "field_path": "name", "payload_key": "coupon"},
            {"index": 1, "payload_key": " "},
        ):
            with self.subTest(variable=variable), self.assertRaises(ValidationError):
                Template.create({**base, "variable_ids": [(0, 0, variable)]})
        template = Template.with_user(self.user_mkt_manager).create(
            {**base, "variable_ids": [(0, 0, {"index": 1, "payload_key": "coupon"})]}
        )
        self.assertEqual(template.variable_ids._label(), "payload.coupon")
        self.assertEqual(template.variable_ids._value(self.alice), "")
        self.assertEqual(template.variable_ids._value(self.alice, {"coupon": "C1"}), "C1")

    def test_webhook_statuses_out_of_order(self):
        """WhatsApp's statuses come late, twice or out of order: delivered
        after read, failed repeated, read after failed, failed with read in the
        same payload. A step never moves backwards: a read message stays
        processed and read, a failed one stays failed with its first reason."""
        template = self._approved_template()
        campaign, steps = self._create_campaign(
            [
                ("hello", {"activity_type": "whatsapp", "whatsapp_template_id": template.id}),
            ]
        )
        self._launch(campaign)
        self._run_queue(T0)
        hello = steps["hello"]
        by_partner = {self.env["res.partner"].browse(t.res_id): t for t in hello.trace_ids}
        alice, bob, carol = by_partner[self.alice], by_partner[self.bob], by_partner[self.carol]
        self.assertEqual(set((alice | bob | carol).mapped("state")), {"processed"})
        sent = campaign.sent_whatsapp_count

        def webhook(*statuses):
            self.env["mkt.whatsapp.template"]._process_webhook(
                {
                    "entry": [
                        {
                            "changes": [
                                {
                                    "value": {
                                        "statuses": [
                                            {
                                                "id": trace.whatsapp_message_id,
                                                "status": status,
                                                "errors": [{"title": title}] if title else [],
                                            }
                                            for trace, status, title in statuses
                                        ]
                                    }
                                },
                            ]
                        }
                    ]
                }
            )
            self.env.invalidate_all()

        # Alice: read, then a late 'delivered' and 'sent'
        webhook((alice, "read", None))
        read_at = alice.open_datetime
        self.assertTrue(read_at)
        webhook((alice, "delivered", None), (alice, "sent", None))
        self.assertEqual((alice.state, alice.open_datetime), ("processed", read_at))
        # Bob: failed, repeated with another reason, then 'delivered' and 'read'
        webhook((bob, "failed", "Message undeliverable"))
        self.assertEqual(bob.state, "failed")
        reason = bob.error_message
        self.assertIn("Message undeliverable", reason)
        webhook((bob, "failed", "Other reason"), (bob, "delivered", None), (bob, "read", None))
        self.assertEqual((bob.state, bob.error_message), ("failed", reason))
        self.assertFalse(bob.open_datetime)
        # Carol: read and failed in one payload (failed first): she read it
        webhook((carol, "failed", "Late failure"), (carol, "read", None))
        self.assertEqual(carol.state, "processed")
        self.assertTrue(carol.open_datetime)
        campaign.invalidate_recordset()
        self.assertEqual(campaign.sent_whatsapp_count, sent - 1, "Bob's is not counted as sent")

    def test_launch_refuses_unapproved_template(self):
        template = self.env["mkt.whatsapp.template"].create(
            {"name": "Draft one", "template_name": "draft_one", "body": "Hi"}
        )
        campaign, _steps = self._create_campaign(
            [
                ("hello", {"activity_type": "whatsapp", "whatsapp_template_id": template.id}),
            ]
        )
        with self.assertRaises(UserError) as error:  # ValidationError included
            campaign.action_start()
        self.assertIn("is not approved by WhatsApp", str(error.exception))

    def test_not_configured(self):
        self.env["ir.config_parameter"].sudo().set_param("mkt_campaign.whatsapp_token", False)
        with self.assertRaises(UserError) as error:
            self.env["mkt.whatsapp.template"].create(
                {"name": "X", "template_name": "x", "body": "Hi"}
            ).action_submit()
        self.assertIn("WhatsApp is not configured: set the access token", str(error.exception))


@tagged("post_install", "-at_install", "mkt_campaign")
class TestWhatsAppWebhook(HttpCase):
    """The webhook WhatsApp calls: subscription check and signed payloads."""

    def setUp(self):
        super().setUp()
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("mkt_campaign.whatsapp_verify_token", "let-me-in")
        params.set_param("mkt_campaign.whatsapp_app_secret", "app-secret")

    def test_verify(self):
        url = "/mkt_campaign/whatsapp/webhook?hub.mode=subscribe&hub.challenge=42&hub.verify_token="
        response = self.url_open(url + "let-me-in")
        self.assertEqual((response.status_code, response.text), (200, "42"))
        self.assertEqual(self.url_open(url + "wrong").status_code, 403)

    def test_signature(self):
        body = json.dumps({"entry": []}).encode()
        signature = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
        ok = self.url_open(
            "/mkt_campaign/whatsapp/webhook",
            data=body,
            headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        )
        self.assertEqual(ok.status_code, 200)
        forged = self.url_open(
            "/mkt_campaign/whatsapp/webhook",
            data=body,
            headers={"X-Hub-Signature-256": "sha256=0000", "Content-Type": "application/json"},
        )
        self.assertEqual(forged.status_code, 403)
