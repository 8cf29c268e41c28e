"""The addon speaks its users' languages: the four shipped translations are
complete and load, and no English term of the addon is missing from the .pot."""

import os
import re

import polib

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import TranslationModuleReader

I18N = os.path.join(os.path.dirname(os.path.dirname(__file__)), "i18n")
LANGS = ("pt_BR", "vi", "ro", "it")
# the languages users pick (res.lang codes) and the file each reads
USER_LANGS = {"pt_BR": "pt_BR", "vi_VN": "vi", "ro_RO": "ro", "it_IT": "it"}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\{.*?\}\}")
TAG = re.compile(r"</?([a-zA-Z][\w-]*)")


@tagged("post_install", "-at_install", "mkt_campaign", "i18n")
class TestI18n(TransactionCase):
    def _po(self, lang):
        return polib.pofile(os.path.join(I18N, f"{lang}.po"))

    def test_translations_complete(self):
        """Every entry of the .pot is translated in each language, keeping
        placeholders and markup."""
        pot = {entry.msgid for entry in polib.pofile(os.path.join(I18N, "mkt_campaign.pot"))}
        for lang in LANGS:
            with self.subTest(lang=lang):
                po = self._po(lang)
                self.assertEqual(po.metadata.get("Language"), lang)
                entries = [e for e in po if not e.obsolete]
                self.assertEqual({e.msgid for e in entries}, pot, "the .po follows the .pot")
                untranslated = [e.msgid for e in entries if not e.msgstr or e.fuzzy]
                self.assertFalse(untranslated[:10], f"{len(untranslated)} untranslated")
                for entry in entries:
                    self.assertEqual(
                        sorted(PLACEHOLDER.findall(entry.msgid)),
                        sorted(PLACEHOLDER.findall(entry.msgstr)),
                        f"placeholders of {entry.msgid!r}",
                    )
                    self.assertEqual(
                        sorted(TAG.findall(entry.msgid)),
                        sorted(TAG.findall(entry.msgstr)),
                        f"markup of {entry.msgid!r}",
                    )

    def test_pot_is_current(self):
        """A term of the addon (field, view, menu, message in the code) that
        is not in i18n/mkt_campaign.pot fails here: run scripts/i18n-export."""
        pot = {entry.msgid for entry in polib.pofile(os.path.join(I18N, "mkt_campaign.pot"))}
        terms = {
            source
            for module, _type, _name, _res_id, source, _value, _comments in TranslationModuleReader(
                self.env.cr, ["mkt_campaign"]
            )
            if module == "mkt_campaign" and source
        }
        missing = sorted(terms - pot)
        self.assertFalse(
            missing[:20], f"{len(missing)} terms missing from the .pot: run scripts/i18n-export"
        )

    def test_addon_in_each_language(self):
        """A user working in each language sees the addon's menus, campaign
        form labels and error messages translated."""
        for lang in USER_LANGS:
            self.env["res.lang"]._activate_lang(lang)
        # as Settings > Languages does: the addon's terms of the active languages
        self.env["ir.module.module"]._load_module_terms(["mkt_campaign"], list(USER_LANGS))
        self.env.invalidate_all()
        menu = self.env.ref("mkt_campaign.mkt_trace_menu")
        for lang, po_name in USER_LANGS.items():
            with self.subTest(lang=lang):
                po = {e.msgid: e.msgstr for e in self._po(po_name)}
                env = self.env(context={"lang": lang})
                self.assertEqual(menu.with_env(env).name, po["Send Queue"])
                fields = env["mkt.campaign"].fields_get(["domain", "reentry_days", "mode"])
                self.assertEqual(fields["domain"]["string"], po["Filter"])
                self.assertEqual(fields["reentry_days"]["string"], po["Re-entry After (days)"])
                self.assertIn(po["Manual confirmation"], dict(fields["mode"]["selection"]).values())
                arch = env["mkt.campaign"].get_views([(False, "form")])["views"]["form"]["arch"]
                self.assertIn(po["Launch"], arch)
                message = po[
                    "Campaign %(campaign)s: the registration window and the re-entry "
                    "cooldown cannot be negative."
                ]
                with self.assertRaises(ValidationError) as raised:
                    env["mkt.campaign"].create(
                        {
                            "name": "Teste",
                            "registered_days": -1,
                            "model_id": self.env["ir.model"]._get_id("res.partner"),
                        }
                    )
                self.assertEqual(str(raised.exception), message % {"campaign": "Teste"})
