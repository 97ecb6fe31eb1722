//! Pump, bypass, flow meter, normally-closed valve, nozzle and (under fault) a leak.
//!
//! Layout: reservoir → diaphragm pump (internal bypass back to the tank) → hall flow meter →
//! branch point (the `Leak` fault opens a hole here) → NC spray valve → nozzle with an
//! anti-drip check valve.
//!
//! The pump is positive-displacement: it delivers a flow set by its speed, and the pressure
//! rises until the downstream restrictions pass that flow, or until the bypass opens at
//! dead-head pressure (the rest of the flow recirculates inside the pump and never reaches the
//! meter). Pressure and flow follow their steady-state values with the line's compliance
//! time constant.

/// Pump delivery at 100 % duty with a free outlet, L/min (a small 12 V diaphragm pump
/// throttled for misting).
pub(crate) const PUMP_FLOW_FULL_L_MIN: f64 = 0.2;

/// Pump speed at 1 % duty as a fraction of full speed: PWM below about half voltage stalls a
/// small DC motor, so the driver maps 1–100 % onto 50–100 % speed.
const PUMP_MIN_SPEED: f64 = 0.5;

/// Pressure at which the pump's bypass opens (dead-head), bar (docs/REQUIREMENTS.md §5.3: ~3.5 bar).
pub(crate) const BYPASS_BAR: f64 = 3.5;

/// Cracking pressure of the nozzle's anti-drip check valve, bar (misting nozzles: 0.7–1.5).
const NOZZLE_CRACK_BAR: f64 = 1.2;

/// Nozzle orifice coefficient above cracking: Q = C·√(P − Pcrack), L/min/√bar. With the
/// check valve this gives 0.2 L/min at 2.4 bar and 0.1 L/min at 1.5 bar.
const NOZZLE_C: f64 = 0.1825;

/// Leak coefficient under `Leak`: Q = C·√P, L/min/√bar (a split fitting; 0.2 L/min escapes at
/// 0.25 bar).
const LEAK_C: f64 = 0.4;

/// Pressure a pump running dry (sucking air) produces, bar.
const DRY_BAR: f64 = 0.05;

/// Compliance time constant of the line (hose elasticity, motor spin-up, valve stroke), s.
const LINE_TAU: f64 = 0.1;

/// Below this volume the float switch reports water low, L.
pub(crate) const FLOAT_LOW_LITRES: f64 = 0.25;

/// Below this volume the pump's pick-up sucks air, L.
pub(crate) const PICKUP_DRY_LITRES: f64 = 0.08;

/// What drives the hydraulics during one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HydraulicDrive {
    /// Pump output on.
    pub pump_on: bool,
    /// Pump duty, 1–100 %.
    pub duty: u8,
    /// Spray valve output on (open).
    pub valve_open: bool,
    /// `PumpDead` injected.
    pub pump_dead: bool,
    /// The pump sucks air (`WaterLow` injected or the tank really is nearly empty).
    pub dry: bool,
    /// `NozzleBlocked` injected.
    pub blocked: bool,
    /// `Leak` injected.
    pub leak: bool,
}

/// Steady-state hydraulic operating point.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct OperatingPoint {
    /// Line pressure, bar (gauge).
    pub pressure_bar: f64,
    /// Flow through the meter, L/min.
    pub meter_l_min: f64,
    /// Flow out of the nozzle, L/min.
    pub nozzle_l_min: f64,
}

/// Solves the steady operating point for `d`.
pub(crate) fn operating_point(d: &HydraulicDrive) -> OperatingPoint {
    if !d.pump_on || d.pump_dead {
        return OperatingPoint::default();
    }
    if d.dry {
        return OperatingPoint {
            pressure_bar: DRY_BAR,
            ..OperatingPoint::default()
        };
    }
    let duty = f64::from(d.duty.clamp(1, 100));
    let speed = PUMP_MIN_SPEED + (1.0 - PUMP_MIN_SPEED) * (duty - 1.0) / 99.0;
    let q_pump = PUMP_FLOW_FULL_L_MIN * speed;
    let nozzle_open = d.valve_open && !d.blocked;
    let outflow = |p: f64| -> (f64, f64) {
        let nozzle = if nozzle_open {
            NOZZLE_C * (p - NOZZLE_CRACK_BAR).max(0.0).sqrt()
        } else {
            0.0
        };
        let leak = if d.leak {
            LEAK_C * p.max(0.0).sqrt()
        } else {
            0.0
        };
        (nozzle, leak)
    };
    let (n_max, l_max) = outflow(BYPASS_BAR);
    if n_max + l_max <= q_pump {
        // The restrictions cannot take the pump's flow below bypass pressure: dead-head.
        return OperatingPoint {
            pressure_bar: BYPASS_BAR,
            meter_l_min: n_max + l_max,
            nozzle_l_min: n_max,
        };
    }
    // Outflow is monotonic in pressure: bisect for outflow(P) = q_pump.
    let (mut lo, mut hi) = (0.0_f64, BYPASS_BAR);
    for _ in 0..48 {
        let mid = 0.5 * (lo + hi);
        let (n, l) = outflow(mid);
        if n + l < q_pump {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let p = 0.5 * (lo + hi);
    let (n, _) = outflow(p);
    OperatingPoint {
        pressure_bar: p,
        meter_l_min: q_pump,
        nozzle_l_min: n,
    }
}

/// The dynamic hydraulic state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hydraulics {
    /// Current state (lagged towards the operating point).
    pub now: OperatingPoint,
    /// Cached input of the last solve, so a steady drive costs no bisection.
    last_drive: Option<(bool, u8, bool, bool, bool, bool, bool)>,
    target: OperatingPoint,
}

impl Hydraulics {
    /// Advances by `dt` seconds; returns the litres that passed the meter.
    pub(crate) fn step(&mut self, dt: f64, d: &HydraulicDrive) -> f64 {
        let key = (
            d.pump_on,
            d.duty,
            d.valve_open,
            d.pump_dead,
            d.dry,
            d.blocked,
            d.leak,
        );
        if self.last_drive != Some(key) {
            self.target = operating_point(d);
            self.last_drive = Some(key);
        }
        let before = self.now.meter_l_min;
        let a = 1.0 - (-dt / LINE_TAU).exp();
        self.now.pressure_bar += (self.target.pressure_bar - self.now.pressure_bar) * a;
        self.now.meter_l_min += (self.target.meter_l_min - self.now.meter_l_min) * a;
        self.now.nozzle_l_min += (self.target.nozzle_l_min - self.now.nozzle_l_min) * a;
        // Snap tiny residues to zero so "no flow" is exactly no flow, not 1e-300 L/min.
        for v in [
            &mut self.now.pressure_bar,
            &mut self.now.meter_l_min,
            &mut self.now.nozzle_l_min,
        ] {
            if v.abs() < 1e-9 {
                *v = 0.0;
            }
        }
        // Trapezoid of the flow over the step, L.
        0.5 * (before + self.now.meter_l_min) / 60.0 * dt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive() -> HydraulicDrive {
        HydraulicDrive {
            pump_on: true,
            duty: 100,
            valve_open: true,
            pump_dead: false,
            dry: false,
            blocked: false,
            leak: false,
        }
    }

    #[test]
    fn spraying_operating_point_scales_with_duty() {
        let full = operating_point(&drive());
        let low = operating_point(&HydraulicDrive { duty: 1, ..drive() });
        assert!((full.meter_l_min - 0.2).abs() < 1e-9);
        assert!((full.pressure_bar - 2.4).abs() < 0.02, "{full:?}");
        assert!((low.meter_l_min - 0.1).abs() < 1e-9);
        assert!((low.pressure_bar - 1.5).abs() < 0.02, "{low:?}");
        assert!((full.nozzle_l_min - full.meter_l_min).abs() < 1e-6);
    }

    #[test]
    fn leak_keeps_flow_but_loses_pressure() {
        let p = operating_point(&HydraulicDrive {
            leak: true,
            ..drive()
        });
        assert!(p.pressure_bar < 0.4, "{p:?}");
        assert!((p.meter_l_min - 0.2).abs() < 1e-9);
        assert_eq!(p.nozzle_l_min, 0.0);
    }
}
