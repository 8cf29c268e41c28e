import { Component, onWillStart, onWillUpdateProps, useEffect, useState } from "@odoo/owl";
import { x2ManyCommands } from "@web/core/orm_service";
import { ConfirmationDialog } from "@web/core/confirmation_dialog/confirmation_dialog";
import { Dropdown } from "@web/core/dropdown/dropdown";
import { DropdownItem } from "@web/core/dropdown/dropdown_item";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { symmetricalDifference } from "@web/core/utils/arrays";
import { useService } from "@web/core/utils/hooks";
import { formatMonetary } from "@web/views/fields/formatters";
import { X2ManyField, x2ManyField } from "@web/views/fields/x2many/x2many_field";
import { MktSparkline } from "../../components/sparkline/sparkline";

// seconds between two refreshes of the figures while the campaign runs
const REFRESH_SECONDS = 30;
const TYPE_ICONS = {
    email: "fa-envelope",
    sms: "fa-mobile",
    whatsapp: "fa-whatsapp",
    push: "fa-bell",
    server_action: "fa-cogs",
};

/** One step of the workflow as a card, its children indented under it. */
export class MktWorkflowNode extends Component {
    static template = "mkt_campaign.WorkflowNode";
    static components = { Dropdown, DropdownItem, MktSparkline };
    static props = { node: Object, tree: Object };

    setup() {
        // the figures loaded by the tree: a card renders again when they change
        this.figuresState = useState(this.props.tree.state);
    }

    get record() {
        return this.props.node.record;
    }
    get data() {
        return this.record.data;
    }
    get tree() {
        return this.props.tree;
    }
    get icon() {
        return TYPE_ICONS[this.data.activity_type] || "fa-cog";
    }
    get typeLabel() {
        return this.tree.selectionLabel("activity_type", this.data.activity_type);
    }
    get figures() {
        return (this.record.resId && this.figuresState.figures[this.record.resId]) || null;
    }
    get stateFigures() {
        const figures = this.figures;
        return [
            { key: "scheduled", label: _t("Scheduled"), className: "text-info" },
            { key: "processed", label: _t("Processed"), className: "text-success" },
            { key: "rejected", label: _t("Rejected"), className: "text-warning" },
            { key: "failed", label: _t("Failed"), className: "text-danger" },
        ].map((figure) => ({ ...figure, value: figures ? figures[figure.key] : 0 }));
    }
    get rateFigures() {
        const figures = this.figures;
        if (!figures) {
            return [];
        }
        const labels = {
            opened: this.data.activity_type === "whatsapp" ? _t("Read") : _t("Opened"),
            clicked: _t("Clicked"),
            replied: _t("Replied"),
            bounced: _t("Bounced"),
        };
        return Object.entries(figures.rates || {}).map(([key, rate]) => ({
            key,
            label: labels[key],
            rate,
            value: figures[key],
        }));
    }
    get isMessage() {
        return ["email", "sms", "whatsapp", "push"].includes(this.data.activity_type);
    }
    /** Planned and actual cost, when the workflow's list has them (budget). */
    get costs() {
        if (!this.data.planned_cost && !this.data.actual_cost) {
            return null;
        }
        const currencyId = this.data.currency_id && this.data.currency_id.id;
        return {
            planned: formatMonetary(this.data.planned_cost, { currencyId }),
            actual: formatMonetary(this.data.actual_cost, { currencyId }),
        };
    }
    get childTriggers() {
        return this.tree.childTriggers(this.data.activity_type);
    }
}
MktWorkflowNode.components.MktWorkflowNode = MktWorkflowNode;

/**
 * The Workflow tab: the campaign's steps (its one2many, so that steps and
 * parents can be added before the campaign is saved) rendered as a tree of
 * cards with their figures (mkt.campaign.get_workflow_figures: a few
 * grouped queries for the whole campaign).
 */
export class MktWorkflowTreeField extends X2ManyField {
    static template = "mkt_campaign.WorkflowTreeField";
    static components = { ...X2ManyField.components, MktWorkflowNode };

    setup() {
        super.setup();
        this.orm = useService("orm");
        this.dialogService = useService("dialog");
        this.state = useState({ figures: {}, triggers: {}, running: false, loading: false });
        // what the cards call (the component itself, not a template scope)
        this.treeApi = this;
        this.loadedKey = null;
        onWillStart(() => this.loadFigures());
        onWillUpdateProps((nextProps) => {
            if (this.figuresKey(nextProps) !== this.loadedKey) {
                this.loadFigures(nextProps);
            }
        });
        useEffect(
            (running) => {
                if (!running) {
                    return;
                }
                const interval = setInterval(() => this.loadFigures(), REFRESH_SECONDS * 1000);
                return () => clearInterval(interval);
            },
            () => [this.state.running]
        );
    }

    figuresKey(props = this.props) {
        const record = props.record;
        return `${record.resId}-${record.data.state}-${this.list.resIds.join(",")}`;
    }

    async loadFigures(props = this.props) {
        this.loadedKey = this.figuresKey(props);
        const resId = props.record.resId;
        this.state.loading = true;
        try {
            const result = await this.orm.call(
                "mkt.campaign",
                "get_workflow_figures",
                [resId ? [resId] : []],
                { context: props.context }
            );
            Object.assign(this.state, {
                figures: result.activities,
                triggers: result.triggers,
                running: result.running,
            });
        } finally {
            this.state.loading = false;
        }
    }

    get isReadonly() {
        return this.props.readonly || !this.activeActions.create;
    }

    get nodes() {
        const records = this.list.records;
        const byId = new Map(records.filter((r) => r.resId).map((r) => [r.resId, r]));
        const children = new Map();
        const roots = [];
        for (const record of records) {
            const parentId = record.data.parent_id && record.data.parent_id.id;
            if (parentId && parentId !== record.resId && byId.has(parentId)) {
                if (!children.has(parentId)) {
                    children.set(parentId, []);
                }
                children.get(parentId).push(record);
            } else {
                roots.push(record);
            }
        }
        const seen = new Set();
        const build = (record, level) => {
            seen.add(record.id);
            const kids = (record.resId && children.get(record.resId)) || [];
            return {
                id: record.id,
                record,
                level,
                children: kids.filter((kid) => !seen.has(kid.id)).map((kid) => build(kid, level + 1)),
            };
        };
        return roots.map((record) => build(record, 0));
    }

    selectionLabel(fieldName, value) {
        const field = this.list.fields[fieldName];
        const option = (field?.selection || []).find(([key]) => key === value);
        return option ? option[1] : value || "";
    }

    /** The triggers a child of a step of this type may have. */
    childTriggers(activityType) {
        const keys = ["after_parent", ...(this.state.triggers[activityType] || [])];
        return keys.map((key) => ({ key, label: this.selectionLabel("trigger_type", key) }));
    }

    async onAddRoot() {
        await this.onAdd({ context: { default_trigger_type: "begin" } });
    }

    async onAddChild(record, trigger) {
        const parentId = await this.savedId(record);
        if (!parentId) {
            return;
        }
        const negative = trigger.includes("_not_");
        await this.onAdd({
            context: {
                default_parent_id: parentId,
                default_trigger_type: trigger,
                default_interval_number: negative ? 2 : 0,
                default_interval_type: negative ? "days" : "hours",
            },
        });
    }

    /**
     * The database id of a step: a step added in this form is saved with the
     * campaign first (as the x2many field does before opening it in a form
     * view), so that it can be chosen as a parent.
     */
    async savedId(record) {
        if (!record.isNew) {
            return record.resId;
        }
        const createCommands = this.list._commands.filter(
            ([command]) => command === x2ManyCommands.CREATE
        );
        const index = createCommands.findIndex(([, virtualId]) => virtualId === record._virtualId);
        const previousIds = this.list.resIds;
        if (!(await this.props.record.save())) {
            return false;
        }
        const newIds = symmetricalDifference(this.list.resIds, previousIds).sort((a, b) => a - b);
        return newIds[index] || false;
    }

    onEdit(record) {
        return this._openRecord({
            record,
            context: this.props.context,
            readonly: this.props.readonly,
        });
    }

    onDelete(node) {
        const subtree = [];
        const collect = (n) => {
            n.children.forEach(collect);
            subtree.push(n.record);
        };
        collect(node);
        const remove = async () => {
            for (const record of subtree) {
                await this.list.delete(record);
            }
        };
        if (subtree.length === 1) {
            return remove();
        }
        this.dialogService.add(ConfirmationDialog, {
            body: _t("Delete step %(step)s and the %(count)s steps under it?", {
                step: node.record.data.name,
                count: subtree.length - 1,
            }),
            confirm: remove,
            cancel: () => {},
        });
    }

    async onFigureClick(record, figure) {
        if (!this.props.record.resId || !record.resId) {
            return;
        }
        const action = await this.orm.call(
            "mkt.campaign",
            "action_view_workflow_traces",
            [[this.props.record.resId], record.resId, figure],
            { context: this.props.context }
        );
        await this.action.doAction(action);
    }
}

export const mktWorkflowTreeField = {
    ...x2ManyField,
    component: MktWorkflowTreeField,
    displayName: _t("Workflow Tree"),
    supportedTypes: ["one2many"],
};

registry.category("fields").add("mkt_workflow_tree", mktWorkflowTreeField);
