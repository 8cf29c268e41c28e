from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged

from .common import T0, MktCampaignCommon
from .loopback_fcm import LoopbackFCMServer


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPush(MktCampaignCommon):
    """Push steps notify the registered devices of each participant's contact
    through Firebase Cloud Messaging (HTTP v1, service-account OAuth)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fcm = LoopbackFCMServer(project_id="shop-app").start()
        cls.addClassCleanup(cls.fcm.stop)
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("mkt_campaign.fcm_service_account", cls.fcm.service_account())
        params.set_param("mkt_campaign.fcm_endpoint", cls.fcm.endpoint)
        Token = cls.env["mkt.push.token"]
        cls.alice_phone = Token.create({"partner_id": cls.alice.id, "token": "tok-alice-phone"})
        cls.alice_old = Token.create({"partner_id": cls.alice.id, "token": "tok-alice-old"})
        cls.bob_tablet = Token.create(
            {"partner_id": cls.bob.id, "token": "tok-bob", "platform": "ios"}
        )
        cls.carol_gone = Token.create({"partner_id": cls.carol.id, "token": "tok-carol"})

    def _push_campaign(self):
        return self._create_campaign(
            [
                (
                    "push",
                    {
                        "activity_type": "push",
                        "push_title": "Hi {{ object.name }}",
                        "push_body": "Spring sale: -20% in the app",
                    },
                ),
            ]
        )

    def test_push_step(self):
        self.fcm.unregistered |= {"tok-alice-old", "tok-carol"}
        self.fcm.unavailable_once.add("tok-bob")
        campaign, steps = self._push_campaign()
        self._launch(campaign)
        self._run_queue(T0)
        self.assertTraceStates(
            steps["push"],
            {
                self.alice: "processed",  # her phone got it, her old device is gone
                self.bob: "scheduled",  # Firebase unavailable: retried
                self.carol: "rejected",  # her only device is gone
                self.alice_dup: "rejected",  # no device
                self.dan: "rejected",
            },
        )
        sent = {m["token"]: m for m in self.fcm.messages}
        self.assertEqual(set(sent), {"tok-alice-phone"})
        self.assertEqual(
            sent["tok-alice-phone"]["notification"],
            {"title": "Hi Alice Audience", "body": "Spring sale: -20% in the app"},
        )
        self.assertEqual(sent["tok-alice-phone"]["data"]["campaign"], str(campaign.id))
        self.assertFalse(self.alice_old.active, "a device Firebase no longer knows is deactivated")
        self.assertIn("UNREGISTERED", self.alice_old.last_error)
        self.assertTrue(self.alice_phone.active)
        dan = self._traces(steps["push"], self.dan)
        self.assertEqual(dan.error_message, "No push device registered for this contact.")
        carol = self._traces(steps["push"], self.carol)
        self.assertIn(
            "No device of this contact accepts notifications anymore", carol.error_message
        )

        self._run_queue(T0.replace(hour=10))
        self.assertEqual(self._traces(steps["push"], self.bob).state, "processed")
        campaign.invalidate_recordset()
        self.assertEqual(campaign.sent_push_count, 2)

    def test_push_content_checked_at_launch(self):
        campaign, steps = self._push_campaign()
        steps["push"].push_title = "Hi {{ object.nickname }}"
        with self.assertRaises(UserError) as error:  # ValidationError included
            campaign.action_start()
        self.assertIn("The title of step push does not render", str(error.exception))
        steps["push"].push_title = " "
        with self.assertRaises(UserError) as error:
            campaign.action_start()
        self.assertIn("write its title and text", str(error.exception))

    def test_bad_service_account(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "mkt_campaign.fcm_service_account", '{"project_id": "x"}'
        )
        campaign, steps = self._push_campaign()
        self._launch(campaign)
        self._run_queue(T0)
        alice = self._traces(steps["push"], self.alice)
        self.assertEqual(alice.state, "failed")
        self.assertIn(
            "is not valid JSON with project_id, client_email and private_key", alice.error_message
        )


@tagged("post_install", "-at_install", "mkt_campaign")
class TestPushRegistration(HttpCase):
    def test_register_device(self):
        """A signed-in user's app registers its device, once, for their contact."""
        user = self.env["res.users"].create(
            {
                "name": "Paul Portal",
                "login": "paul.portal",
                "password": "paul.portal",
                "email": "paul@example.com",
                "group_ids": [(6, 0, [self.env.ref("base.group_portal").id])],
            }
        )
        self.authenticate("paul.portal", "paul.portal")
        for _attempt in range(2):
            result = self.make_jsonrpc_request(
                "/mkt_campaign/push/register", {"token": "device-123", "platform": "ios"}
            )
        devices = self.env["mkt.push.token"].search([("token", "=", "device-123")])
        self.assertEqual(len(devices), 1)
        self.assertEqual(result["id"], devices.id)
        self.assertEqual((devices.partner_id, devices.platform), (user.partner_id, "ios"))
        self.make_jsonrpc_request("/mkt_campaign/push/unregister", {"token": "device-123"})
        self.assertFalse(devices.active)
