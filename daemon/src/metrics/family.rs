//! Small builders for the metric families made fresh at every scrape from the snapshot and
//! the telemetry counters (the `prometheus` crate's registry only holds the event-fed ones).

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

/// One metric family being built.
pub(crate) struct Family {
    inner: MetricFamily,
}

impl Family {
    fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut inner = MetricFamily::default();
        inner.set_name(name.to_string());
        inner.set_help(help.to_string());
        inner.set_field_type(kind);
        Family { inner }
    }

    /// A gauge family.
    pub(crate) fn gauge(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::GAUGE)
    }

    /// A counter family (the name must end in `_total`).
    pub(crate) fn counter(name: &str, help: &str) -> Family {
        debug_assert!(name.ends_with("_total"), "{name}");
        Family::new(name, help, MetricType::COUNTER)
    }

    /// A histogram family.
    pub(crate) fn histogram(name: &str, help: &str) -> Family {
        Family::new(name, help, MetricType::HISTOGRAM)
    }

    /// Adds one sample of a gauge or counter family.
    pub(crate) fn value(mut self, labels: &[(&str, &str)], value: f64) -> Family {
        let mut metric = Metric::from_label(label_pairs(labels));
        match self.inner.get_field_type() {
            MetricType::COUNTER => {
                let mut c = Counter::default();
                c.set_value(value);
                metric.set_counter(c);
            }
            _ => {
                let mut g = Gauge::default();
                g.set_value(value);
                metric.set_gauge(g);
            }
        }
        self.inner.mut_metric().push(metric);
        self
    }

    /// Adds a gauge or counter sample when `value` is known.
    pub(crate) fn maybe(self, labels: &[(&str, &str)], value: Option<f64>) -> Family {
        match value {
            Some(v) => self.value(labels, v),
            None => self,
        }
    }

    /// Adds one histogram from per-bucket (non-cumulative) counts: `counts[i]` observations fell
    /// at or below `bounds[i]` and above the previous bound; `counts[bounds.len()]` above all.
    pub(crate) fn histogram_value(
        mut self,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> Family {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(bounds.len());
        for (bound, count) in bounds.iter().zip(counts) {
            cumulative = cumulative.saturating_add(*count);
            let mut b = Bucket::default();
            b.set_upper_bound(*bound);
            b.set_cumulative_count(cumulative);
            buckets.push(b);
        }
        let total = counts.iter().fold(0u64, |acc, c| acc.saturating_add(*c));
        let mut h = Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(total);
        h.set_sample_sum(sum);
        let mut metric = Metric::from_label(label_pairs(labels));
        metric.set_histogram(h);
        self.inner.mut_metric().push(metric);
        self
    }

    /// Adds the family to `out` unless it has no samples (the text encoder refuses those).
    pub(crate) fn into(self, out: &mut Vec<MetricFamily>) {
        if !self.inner.get_metric().is_empty() {
            out.push(self.inner);
        }
    }
}

/// Label pairs sorted by name, as the registry's own metrics are.
fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    let mut sorted = labels.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_string());
            pair.set_value((*value).to_string());
            pair
        })
        .collect()
}

/// 1.0 for true, 0.0 for false.
pub(crate) fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}
