import contextlib
import hashlib
from collections import defaultdict
from datetime import date

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain
from odoo.tools import SQL, OrderedSet
from odoo.tools.query import Query

# What counts as a purchase
# - sale.order in state 'sale': the confirmed orders (19.0 has no 'done' state
#   any more: a locked order stays 'sale'); quotations and cancelled orders don't;
# - pos.order in state 'paid' or 'done' (posted); 19.0 has no 'invoiced' state.
#   A refund (is_refund) is no order: it is not counted and its products are
#   not "bought", but its negative amount is deducted from the amount spent;
# - for "Is a Customer" only: posted customer invoices (account.move out_invoice).
# Purchases belong to the order's customer (partner_id) only: a company's
# figures do not include the orders of its contacts, nor the reverse.
# Only the orders and invoices of the user's companies (env.companies) count:
# the figures and filters never reveal what was bought in another company
# (an audience is searched in its campaign's company).
#
# The constants below are written literally in the SQL so that PostgreSQL can
# use the partial indexes that models/sale_order.py, models/pos_order.py,
# models/sale_order_line.py and models/pos_order_line.py declare.
SALE_ORDERS = SQL("sale_order WHERE state = 'sale'")
POS_ORDERS = SQL("pos_order WHERE state IN ('paid', 'done') AND partner_id IS NOT NULL")
# amount in the currency of the order's company (currency_rate is the rate of
# the order's currency to the company's at the order date)
AMOUNT = SQL("amount_total / COALESCE(NULLIF(currency_rate, 0), 1)")
NOT_REFUND = SQL("is_refund IS NOT TRUE")
UTC_NOW = SQL("(now() AT TIME ZONE 'UTC')")

# field name -> (statistic, period in days)
PURCHASE_STATS = {
    "mkt_order_count": ("count", None),
    "mkt_amount_spent": ("amount", None),
    "mkt_amount_spent_30d": ("amount", 30),
    "mkt_amount_spent_90d": ("amount", 90),
    "mkt_amount_spent_365d": ("amount", 365),
    "mkt_last_purchase_date": ("last", None),
}
SQL_COMPARATORS = {"<": SQL("<"), ">": SQL(">"), "<=": SQL("<="), ">=": SQL(">=")}

CUSTOMER_HELP = (
    "At least one confirmed sale order, paid POS order or posted customer invoice. "
    "Only the contact's own orders and invoices count: a company's figures do not "
    "include the ones of its contacts. A lead has the figures of its contact."
)
ORDERS_HELP = (
    " Counts the confirmed sale orders and the paid or posted POS orders (refunds "
    "deducted) whose customer is this very contact: the orders of a company's "
    "contacts are not included in the company's figures. A lead has the figures "
    "of its contact; a lead without contact, none."
)


class MktPurchaseMixin(models.AbstractModel):
    """Purchase-behaviour fields (orders, amounts, products bought) that the
    domain editor can filter on, for models whose records designate a contact:
    res.partner (the record itself) and crm.lead (its partner_id)."""

    _name = "mkt.purchase.mixin"
    _description = "Purchase Behaviour"

    mkt_is_customer = fields.Boolean(
        "Is a Customer",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_is_customer",
        help=CUSTOMER_HELP,
    )
    mkt_product_ids = fields.Many2many(
        "product.product",
        string="Products Bought",
        compute="_compute_mkt_products",
        search="_search_mkt_product_ids",
        help="Products of the contact's confirmed sale orders and paid POS orders." + ORDERS_HELP,
    )
    mkt_product_categ_ids = fields.Many2many(
        "product.category",
        string="Product Categories Bought",
        compute="_compute_mkt_products",
        search="_search_mkt_product_categ_ids",
        help="Categories of the products bought, and their parent categories: "
        "filtering on a category matches the products of its subcategories too." + ORDERS_HELP,
    )
    mkt_order_count = fields.Integer(
        "Number of Orders",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_order_count",
        help="Number of sale and POS orders." + ORDERS_HELP,
    )
    mkt_amount_spent = fields.Monetary(
        "Amount Spent",
        currency_field="mkt_currency_id",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_amount_spent",
        help="Total of the orders, taxes included, in the currency of the company "
        "that sold." + ORDERS_HELP,
    )
    mkt_amount_spent_30d = fields.Monetary(
        "Amount Spent (last 30 days)",
        currency_field="mkt_currency_id",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_amount_spent_30d",
        help="Total of the orders of the last 30 days." + ORDERS_HELP,
    )
    mkt_amount_spent_90d = fields.Monetary(
        "Amount Spent (last 90 days)",
        currency_field="mkt_currency_id",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_amount_spent_90d",
        help="Total of the orders of the last 90 days." + ORDERS_HELP,
    )
    mkt_amount_spent_365d = fields.Monetary(
        "Amount Spent (last 365 days)",
        currency_field="mkt_currency_id",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_amount_spent_365d",
        help="Total of the orders of the last 365 days." + ORDERS_HELP,
    )
    mkt_last_purchase_date = fields.Datetime(
        "Last Purchase",
        compute="_compute_mkt_purchase_stats",
        search="_search_mkt_last_purchase_date",
        help="Date of the latest order." + ORDERS_HELP,
    )
    mkt_currency_id = fields.Many2one(
        "res.currency",
        "Purchase Currency",
        compute="_compute_mkt_currency_id",
    )

    # ------------------------------------------------------------------
    # Computes: one query per batch of contacts
    # ------------------------------------------------------------------

    def _compute_mkt_currency_id(self):
        self.mkt_currency_id = self.env.company.currency_id

    # the orders of the user's companies: the figures depend on them
    @api.depends_context("uid", "allowed_company_ids")
    def _compute_mkt_purchase_stats(self):
        partner_ids = self._mkt_partner_ids()
        stats = self._mkt_read_purchase_stats(set(partner_ids.values()) - {False})
        for record in self:
            values = stats.get(partner_ids[record], {})
            for fname in PURCHASE_STATS:
                record[fname] = values.get(fname) or False
            record.mkt_is_customer = values.get("mkt_is_customer", False)

    # the orders of the user's companies: the figures depend on them
    @api.depends_context("uid", "allowed_company_ids")
    def _compute_mkt_products(self):
        partner_ids = self._mkt_partner_ids()
        partners = set(partner_ids.values()) - {False}
        products, categories = self._mkt_read_products(partners)
        for record in self:
            record.mkt_product_ids = products.get(partner_ids[record], [])
            record.mkt_product_categ_ids = categories.get(partner_ids[record], [])

    def _mkt_partner_ids(self):
        """{record: id of the contact whose purchases it shows, or False}"""
        key = self._mkt_partner_field()
        return {
            record: (record if key == "id" else record[key])._origin.id or False for record in self
        }

    def _mkt_read_purchase_stats(self, partner_ids):
        """Purchase statistics of the given contacts: {partner id: {field: value}}."""
        if not partner_ids:
            return {}
        self._mkt_flush_purchases()
        periods = sorted({days for stat, days in PURCHASE_STATS.values() if days})
        self.env.cr.execute(
            SQL(
                """
            SELECT o.key, count(*) FILTER (WHERE o.is_order), sum(o.amount),
                   %(period_sums)s,
                   max(o.date_order) FILTER (WHERE o.is_order)
              FROM (SELECT partner_id AS key, %(amount)s AS amount, date_order,
                           TRUE AS is_order
                      FROM %(sale_orders)s AND partner_id = ANY(%(ids)s)
                       AND %(companies)s
                     UNION ALL
                    SELECT partner_id, %(amount)s, date_order, %(not_refund)s
                      FROM %(pos_orders)s AND partner_id = ANY(%(ids)s)
                       AND %(companies)s) o
          GROUP BY o.key
            """,
                period_sums=SQL(", ").join(
                    SQL(
                        "sum(o.amount) FILTER (WHERE o.date_order >= %s - interval '1 day' * %s)",
                        UTC_NOW,
                        days,
                    )
                    for days in periods
                ),
                amount=AMOUNT,
                not_refund=NOT_REFUND,
                sale_orders=SALE_ORDERS,
                pos_orders=POS_ORDERS,
                ids=list(partner_ids),
                companies=self._mkt_companies_sql(),
            )
        )
        stats = {}
        amount_fields = {
            days: fname
            for fname, (stat, days) in PURCHASE_STATS.items()
            if stat == "amount" and days
        }
        for key, count, amount, *rest in self.env.cr.fetchall():
            values = {
                "mkt_order_count": count,
                "mkt_amount_spent": amount,
                "mkt_last_purchase_date": rest[-1],
                "mkt_is_customer": True,
            }
            for days, period_amount in zip(periods, rest[:-1], strict=True):
                values[amount_fields[days]] = period_amount
            stats[key] = values
        self.env.cr.execute(
            SQL(
                """
            SELECT DISTINCT partner_id FROM account_move
             WHERE move_type = 'out_invoice' AND state = 'posted'
               AND partner_id = ANY(%s) AND %s
            """,
                list(partner_ids),
                self._mkt_companies_sql(),
            )
        )
        for (key,) in self.env.cr.fetchall():
            stats.setdefault(key, {})["mkt_is_customer"] = True
        return stats

    def _mkt_read_products(self, partner_ids):
        """Products and categories bought: two dicts {partner id: [ids]}."""
        products, categories = defaultdict(list), defaultdict(OrderedSet)
        if not partner_ids:
            return products, categories
        self._mkt_flush_purchases()
        # the categories of the products and their parents: a contact who bought
        # in "Garden / Seeds" bought in "Garden" too, as the search has it
        self.env.cr.execute(
            SQL(
                """
            SELECT DISTINCT b.key, b.product_id, pc.parent_path
              FROM (SELECT order_partner_id AS key, product_id
                      FROM sale_order_line
                     WHERE state = 'sale' AND order_partner_id = ANY(%(ids)s)
                       AND product_id IS NOT NULL AND %(companies)s
                     UNION ALL
                    SELECT po.partner_id, pol.product_id
                      FROM pos_order po
                      JOIN pos_order_line pol ON pol.order_id = po.id
                     WHERE po.state IN ('paid', 'done') AND po.partner_id = ANY(%(ids)s)
                       AND pol.qty > 0 AND %(po_companies)s) b
              JOIN product_product pp ON pp.id = b.product_id
              JOIN product_template pt ON pt.id = pp.product_tmpl_id
              LEFT JOIN product_category pc ON pc.id = pt.categ_id
          ORDER BY b.key, b.product_id
            """,
                ids=list(partner_ids),
                companies=self._mkt_companies_sql(),
                po_companies=self._mkt_companies_sql("po"),
            )
        )
        for key, product_id, parent_path in self.env.cr.fetchall():
            if not products[key] or products[key][-1] != product_id:
                products[key].append(product_id)
            categories[key].update(int(c) for c in (parent_path or "").split("/") if c)
        return products, {key: list(categs) for key, categs in categories.items()}

    def _mkt_flush_purchases(self):
        """The purchase SQL reads these tables directly: write pending changes."""
        for model, fnames in (
            (
                "sale.order",
                [
                    "state",
                    "partner_id",
                    "amount_total",
                    "currency_rate",
                    "date_order",
                    "company_id",
                ],
            ),
            ("sale.order.line", ["state", "order_partner_id", "product_id", "company_id"]),
            (
                "pos.order",
                [
                    "state",
                    "partner_id",
                    "amount_total",
                    "currency_rate",
                    "date_order",
                    "is_refund",
                    "company_id",
                ],
            ),
            ("pos.order.line", ["order_id", "product_id", "qty"]),
            ("account.move", ["move_type", "state", "partner_id", "company_id"]),
            ("product.product", ["product_tmpl_id"]),
            ("product.template", ["categ_id"]),
            ("product.category", ["parent_path"]),
        ):
            self.env[model].flush_model(fnames)

    def _mkt_companies_sql(self, alias=None):
        """The condition keeping the orders and invoices of the user's companies."""
        column = SQL.identifier(alias, "company_id") if alias else SQL("company_id")
        return SQL("%s = ANY(%s)", column, self.env.companies.ids)

    # ------------------------------------------------------------------
    # Search methods
    # ------------------------------------------------------------------

    def _search_mkt_is_customer(self, operator, value):
        return self._mkt_purchase_domain("mkt_is_customer", operator, value)

    def _search_mkt_product_ids(self, operator, value):
        return self._mkt_purchase_domain("mkt_product_ids", operator, value)

    def _search_mkt_product_categ_ids(self, operator, value):
        return self._mkt_purchase_domain("mkt_product_categ_ids", operator, value)

    def _search_mkt_order_count(self, operator, value):
        return self._mkt_purchase_domain("mkt_order_count", operator, value)

    def _search_mkt_amount_spent(self, operator, value):
        return self._mkt_purchase_domain("mkt_amount_spent", operator, value)

    def _search_mkt_amount_spent_30d(self, operator, value):
        return self._mkt_purchase_domain("mkt_amount_spent_30d", operator, value)

    def _search_mkt_amount_spent_90d(self, operator, value):
        return self._mkt_purchase_domain("mkt_amount_spent_90d", operator, value)

    def _search_mkt_amount_spent_365d(self, operator, value):
        return self._mkt_purchase_domain("mkt_amount_spent_365d", operator, value)

    def _search_mkt_last_purchase_date(self, operator, value):
        return self._mkt_purchase_domain("mkt_last_purchase_date", operator, value)

    def _mkt_purchase_domain(self, fname, operator, value):
        """The domain of a purchase-behaviour condition ``(fname, operator, value)``:
        the purchases compared are those of the record's contact
        (``_mkt_partner_field``).

        The whole matching is SQL: every statistic is a LEFT JOIN of the searched
        table to one aggregate per partner and per source table (sale orders,
        POS orders, invoices) or to the set of contacts having bought given
        products. The joins don't depend on the operator nor the value, so that
        all conditions of a domain on a statistic share theirs; they scale to
        millions of orders (hash or merge joins over index-only scans) and,
        unlike ``id IN (subquery)``, stay cheap under an OR. Operators are the
        normalised ones; ``not in``/``not any`` are left to the ORM (NotImplemented),
        which negates the positive condition.
        """
        key = self._mkt_partner_field()
        field = self._fields[fname]
        if operator == "=":
            # not a normalised operator: the ORM tries it when 'in' raised, to
            # raise that error again
            operator, value = "in", [value]
        if fname == "mkt_is_customer":
            if operator != "in":
                return NotImplemented
            values = {bool(v) for v in value}
            if values == {True, False}:
                return Domain.TRUE
            negate = values == {False}
            return self._mkt_custom_domain(
                lambda query, alias: self._mkt_is_customer_sql(query, alias, key),
                negate=negate,
                predicate=lambda rec: rec.mkt_is_customer != negate,
            )
        if fname in ("mkt_product_ids", "mkt_product_categ_ids"):
            return self._mkt_products_domain(field, operator, value, key)
        stat, days = PURCHASE_STATS[fname]
        if operator not in ("in", *SQL_COMPARATORS):
            return NotImplemented
        if stat == "last":
            value = self._mkt_check_datetimes(field, operator, value)
        else:
            value = self._mkt_check_numbers(field, operator, value)
        return self._mkt_custom_domain(
            lambda query, alias: self._mkt_compare_sql(
                self._mkt_stat_sql(query, alias, key, stat, days),
                stat,
                operator,
                value,
            ),
            predicate=lambda rec: _compare(rec[fname], stat, operator, value),
        )

    def _mkt_custom_domain(self, to_sql, negate=False, predicate=None):
        self._mkt_flush_purchases()

        def sql(model, alias, query):
            condition = to_sql(query, alias)
            return SQL("NOT (%s)", condition) if negate else condition

        if predicate is None:
            return Domain.custom(to_sql=sql)
        return Domain.custom(to_sql=sql, predicate=predicate)

    # -- statistics -----------------------------------------------------

    def _mkt_join(self, query, alias, key, link, table):
        """LEFT JOIN ``table`` (a subquery with a ``key`` column unique per
        contact) on the searched table's ``key`` column; return its alias."""
        join_alias = query.make_alias(alias, link)
        query.add_join(
            "LEFT JOIN",
            join_alias,
            SQL("(%s)", table),
            SQL(
                "%s = %s",
                SQL.identifier(join_alias, "key"),
                SQL.identifier(alias, key),
            ),
        )
        return join_alias

    def _mkt_stat_sql(self, query, alias, key, stat, days):
        """SQL expression of a statistic of the contact in ``alias.key``."""
        period = (
            SQL(
                " AND date_order >= %s - interval '1 day' * %s",
                UTC_NOW,
                days,
            )
            if days
            else SQL()
        )
        if stat == "count":
            sale_value = SQL("count(*)")
            pos_value = SQL("count(*) FILTER (WHERE %s)", NOT_REFUND)
        elif stat == "amount":
            sale_value = pos_value = SQL("sum(%s)", AMOUNT)
        else:
            sale_value = SQL("max(date_order)")
            pos_value = SQL("max(date_order) FILTER (WHERE %s)", NOT_REFUND)
        suffix = f"{stat}{days or ''}"
        companies = self._mkt_companies_sql()
        sale = self._mkt_join(
            query,
            alias,
            key,
            f"mkt_so_{suffix}",
            SQL(
                "SELECT partner_id AS key, %s AS value FROM %s AND %s%s GROUP BY partner_id",
                sale_value,
                SALE_ORDERS,
                companies,
                period,
            ),
        )
        pos = self._mkt_join(
            query,
            alias,
            key,
            f"mkt_pos_{suffix}",
            SQL(
                "SELECT partner_id AS key, %s AS value FROM %s AND %s%s GROUP BY partner_id",
                pos_value,
                POS_ORDERS,
                companies,
                period,
            ),
        )
        sale_sql, pos_sql = SQL.identifier(sale, "value"), SQL.identifier(pos, "value")
        if stat == "last":
            return SQL("GREATEST(%s, %s)", sale_sql, pos_sql)
        return SQL("(COALESCE(%s, 0) + COALESCE(%s, 0))", sale_sql, pos_sql)

    def _mkt_compare_sql(self, expr, stat, operator, value):
        if operator in SQL_COMPARATORS:
            # the last purchase of a contact without orders is NULL: no match
            comparator = SQL_COMPARATORS[operator]
            return SQL("COALESCE(%s %s %s, FALSE)", expr, comparator, value)
        # operator 'in': False is "not set" (no purchase, zero)
        values = [v for v in value if v is not False]
        if stat == "last":
            conditions = [SQL("%s IS NULL", expr)] if False in value else []
            if values:
                conditions.append(SQL("COALESCE(%s IN %s, FALSE)", expr, tuple(values)))
            return SQL("(%s)", SQL(" OR ").join(conditions))
        if False in value:
            values.append(0)
        if stat == "amount":
            expr = SQL("round(%s, 2)", expr)
        return SQL("%s IN %s", expr, tuple(values))

    def _mkt_is_customer_sql(self, query, alias, key):
        invoices = self._mkt_join(
            query,
            alias,
            key,
            "mkt_inv",
            SQL(
                """SELECT partner_id AS key FROM account_move
                WHERE move_type = 'out_invoice' AND state = 'posted'
                  AND partner_id IS NOT NULL AND %s
             GROUP BY partner_id""",
                self._mkt_companies_sql(),
            ),
        )
        return SQL(
            "(%s > 0 OR %s IS NOT NULL)",
            self._mkt_stat_sql(query, alias, key, "count", None),
            SQL.identifier(invoices, "key"),
        )

    # -- products -------------------------------------------------------

    def _mkt_products_domain(self, field, operator, value, key):
        if operator == "in":
            ids = self._mkt_check_ids(field, value)
            not_set = False in value
        elif operator in ("any", "any!"):
            ids, not_set = self._mkt_subquery(field, operator, value), False
        else:
            return NotImplemented
        if field.name == "mkt_product_categ_ids" and ids:
            ids = SQL(
                """(SELECT pp.id FROM product_product pp
                      JOIN product_template pt ON pt.id = pp.product_tmpl_id
                      JOIN product_category pc ON pc.id = pt.categ_id
                      JOIN product_category sel
                        ON pc.parent_path LIKE sel.parent_path || '%%'
                     WHERE sel.id IN %s)""",
                ids,
            )

        def to_sql(query, alias):
            conditions = []
            if ids:
                conditions.append(self._mkt_bought_sql(query, alias, key, ids))
            if not_set:
                # nothing bought: no order (an order always has product lines)
                conditions.append(
                    SQL(
                        "%s = 0",
                        self._mkt_stat_sql(query, alias, key, "count", None),
                    )
                )
            if not conditions:
                return SQL("FALSE")
            return SQL("(%s)", SQL(" OR ").join(conditions))

        return self._mkt_custom_domain(to_sql)

    def _mkt_bought_sql(self, query, alias, key, product_ids):
        """Whether the contact in ``alias.key`` bought one of ``product_ids`` (a
        tuple of ids or a parenthesised SQL subquery)."""
        bought = SQL(
            """SELECT order_partner_id AS key FROM sale_order_line
                WHERE state = 'sale' AND product_id IN %(products)s
                  AND order_partner_id IS NOT NULL AND %(companies)s
                UNION
               SELECT po.partner_id FROM pos_order_line pol
                 JOIN pos_order po ON po.id = pol.order_id
                WHERE pol.product_id IN %(products)s AND pol.qty > 0
                  AND po.state IN ('paid', 'done') AND po.partner_id IS NOT NULL
                  AND %(po_companies)s""",
            products=product_ids,
            companies=self._mkt_companies_sql(),
            po_companies=self._mkt_companies_sql("po"),
        )
        digest = hashlib.sha256(repr((bought.code, bought.params)).encode()).hexdigest()
        link = f"mkt_bought_{digest[:12]}"
        join_alias = self._mkt_join(query, alias, key, link, bought)
        return SQL("%s IS NOT NULL", SQL.identifier(join_alias, "key"))

    def _mkt_subquery(self, field, operator, value):
        """The ids of the comodel matching ``value`` (a domain, Query or SQL),
        as a parenthesised SQL subquery."""
        comodel = self.env[field.comodel_name].with_context(active_test=False)
        if operator == "any!":
            # 'any!' is the ORM's unrestricted 'any': the comodel without record rules
            comodel = comodel.sudo()
        if isinstance(value, SQL):
            return SQL("(%s)", value)
        if isinstance(value, Query):
            return value.subselect()
        return comodel._search(value).subselect()

    # -- values ---------------------------------------------------------

    def _mkt_invalid(self, field, expected, value):
        return UserError(
            self.env._(
                "Invalid value %(value)r for %(field)s (%(model)s): %(expected)s expected.",
                value=value,
                field=field._description_string(self.env),
                model=self._description,
                expected=expected,
            )
        )

    def _mkt_check_ids(self, field, value):
        ids = []
        for v in value:
            if v is False:
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise self._mkt_invalid(field, self.env._("record ids"), v)
            ids.append(v)
        return tuple(ids)

    def _mkt_check_numbers(self, field, operator, value):
        def number(v):
            if v is False and operator == "in":
                return v
            if isinstance(v, str):
                with contextlib.suppress(ValueError):  # not a number: refused below
                    return float(v.strip())
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                return v
            raise self._mkt_invalid(field, self.env._("a number"), v)

        if operator == "in":
            return OrderedSet(number(v) for v in value)
        return number(value)

    def _mkt_check_datetimes(self, field, operator, value):
        def to_datetime(v):
            if v is False and operator == "in":
                return v
            if isinstance(v, (str, date)):
                try:
                    result = fields.Datetime.to_datetime(v)
                except ValueError:
                    result = None
                if result:
                    return result
            raise self._mkt_invalid(field, self.env._("a date"), v)

        if operator == "in":
            return OrderedSet(to_datetime(v) for v in value)
        return to_datetime(value)


def _compare(field_value, stat, operator, value):
    """Python twin of ``_mkt_compare_sql``, for ``filtered_domain``."""
    if stat == "last":
        if operator == "in":
            return (field_value or False) in value
        if not field_value:
            return False
    else:
        field_value = field_value or 0
        if operator == "in":
            if stat == "amount":
                field_value = round(field_value, 2)
            return field_value in value or (not field_value and False in value)
    return {
        "<": field_value < value,
        ">": field_value > value,
        "<=": field_value <= value,
        ">=": field_value >= value,
    }[operator]
