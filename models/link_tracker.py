from odoo import api, models


class MktLinkCache(dict):
    """Link trackers already found or created while rendering one chunk of a
    campaign e-mail step (``mailing.mailing._mkt_fast_values``), by their
    values. Hashed by identity so that it can ride in a context."""

    __hash__ = object.__hash__


class LinkTracker(models.Model):
    _inherit = "link.tracker"

    @api.model
    def search_or_create(self, vals_list):
        """With ``mkt_link_cache`` in the context (a ``MktLinkCache``), the
        links of a chunk's bodies are looked up once for the chunk: the body
        of every recipient holds the same links, which link_tracker's
        ``_shorten_links`` otherwise searches (or creates) record by record."""
        cache = self.env.context.get("mkt_link_cache")
        if not isinstance(cache, MktLinkCache) or not isinstance(vals_list, list):
            return super().search_or_create(vals_list)
        keys = [
            tuple(sorted((key, repr(value)) for key, value in vals.items())) for vals in vals_list
        ]
        missing = {
            key: vals for key, vals in zip(keys, vals_list, strict=False) if key not in cache
        }
        if missing:
            trackers = super().search_or_create(list(missing.values()))
            cache.update(zip(missing, trackers.ids, strict=False))
        return self.browse([cache[key] for key in keys])
