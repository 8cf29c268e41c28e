import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/**
 * A small SVG graph of steps processed and rejected per day, from a series
 * {days: [...], processed: [...], rejected: [...]} computed by the server.
 */
export class MktSparkline extends Component {
    static template = "mkt_campaign.Sparkline";
    static props = {
        graph: { type: Object, optional: true },
        width: { type: Number, optional: true },
        height: { type: Number, optional: true },
    };
    static defaultProps = { width: 120, height: 28 };

    get series() {
        const graph = this.props.graph || {};
        return [
            { key: "processed", values: graph.processed || [], className: "o_mkt_spark_processed" },
            { key: "rejected", values: graph.rejected || [], className: "o_mkt_spark_rejected" },
        ];
    }

    get max() {
        return Math.max(1, ...this.series.flatMap((serie) => serie.values));
    }

    points(values) {
        const { width, height } = this.props;
        const step = values.length > 1 ? width / (values.length - 1) : width;
        const max = this.max;
        return values
            .map((value, index) => {
                const x = (index * step).toFixed(1);
                const y = (height - 1 - (value / max) * (height - 2)).toFixed(1);
                return `${x},${y}`;
            })
            .join(" ");
    }

    get title() {
        const graph = this.props.graph || {};
        const processed = (graph.processed || []).reduce((a, b) => a + b, 0);
        const rejected = (graph.rejected || []).reduce((a, b) => a + b, 0);
        return _t("Last 15 days: %(processed)s processed, %(rejected)s rejected", {
            processed,
            rejected,
        });
    }
}

export class MktSparklineField extends Component {
    static template = "mkt_campaign.SparklineField";
    static components = { MktSparkline };
    static props = { ...standardFieldProps };
}

registry.category("fields").add("mkt_sparkline", {
    component: MktSparklineField,
    displayName: _t("Sparkline"),
    supportedTypes: ["json"],
});
