//! The standard `process_*` metrics. The `prometheus` crate's process collector counts CPU
//! time in an integer counter of whole seconds (`(utime + stime) / CLK_TCK` in integer
//! arithmetic), so `process_cpu_seconds_total` moved in 1 s steps and `rate()` over a scrape
//! interval read 0 or 1/15 (issue 14, defect 6). Its CPU family is replaced here by one read
//! from `getrusage(RUSAGE_SELF)` at microsecond resolution; the other families are kept.

use super::family::Family;
use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;

/// Name of the CPU-time family (the Prometheus client-library convention).
const CPU_SECONDS: &str = "process_cpu_seconds_total";

/// The process metrics of this daemon.
pub(crate) struct ProcessMetrics {
    collector: ProcessCollector,
}

impl ProcessMetrics {
    /// Metrics of the calling process.
    pub(crate) fn for_self() -> ProcessMetrics {
        ProcessMetrics {
            collector: ProcessCollector::for_self(),
        }
    }

    /// Appends the process families to `out`.
    pub(crate) fn collect(&self, out: &mut Vec<MetricFamily>) {
        out.extend(
            self.collector
                .collect()
                .into_iter()
                .filter(|f| f.name() != CPU_SECONDS),
        );
        Family::counter(
            CPU_SECONDS,
            "Total user and system CPU time spent in seconds.",
        )
        .maybe(&[], cpu_seconds())
        .into(out);
    }
}

/// User plus system CPU time of the whole process, in seconds; `None` if the kernel refuses.
pub(crate) fn cpu_seconds() -> Option<f64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(secs(usage.user_time()) + secs(usage.system_time()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exported(families: &[MetricFamily]) -> f64 {
        let f = families
            .iter()
            .find(|f| f.name() == CPU_SECONDS)
            .expect("cpu family present");
        assert_eq!(f.get_metric().len(), 1, "exactly one cpu series");
        f.get_metric()[0].get_counter().get_value()
    }

    /// Burns CPU until the process has used a whole number of seconds plus a clear fraction,
    /// then checks the exported counter carries that fraction (it was truncated before).
    #[test]
    fn cpu_seconds_keep_their_fraction() {
        let mut x = 0u64;
        loop {
            let used = cpu_seconds().expect("getrusage");
            let fraction = used.fract();
            if (0.25..0.75).contains(&fraction) {
                break;
            }
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
            }
        }
        std::hint::black_box(x);
        let before = cpu_seconds().expect("getrusage");
        let mut families = Vec::new();
        ProcessMetrics::for_self().collect(&mut families);
        let after = cpu_seconds().expect("getrusage");
        let value = exported(&families);
        assert!(
            value >= before - 0.001 && value <= after + 0.001,
            "exported {value} s, process used {before}..{after} s"
        );
        assert!(value.fract() > 0.0, "{value} is a whole number of seconds");
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert!(
            names.contains(&"process_resident_memory_bytes"),
            "{names:?}"
        );
        assert_eq!(names.iter().filter(|n| **n == CPU_SECONDS).count(), 1);
    }
}
