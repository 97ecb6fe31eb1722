//! What the MLX90614 skin sensor sees: the radiometric mix of the treated spot, the untreated
//! skin around it and the mist in the path, through the chip's filter.
//!
//! * Field of view: the MLX90614xCC has a 35° FOV (Melexis datasheet, rev. 13, "field of
//!   view", 50 % sensitivity); at `distance` it sees a disc of area π·(d·tan 17.5°)². The spot
//!   fills `min(spot/disc, 0.9)` of the signal: the FOV is specified at half sensitivity, so
//!   ~10 % of the signal always comes from outside it (the datasheet's FOV plot).
//! * Radiometry: each part contributes ε·σ·T⁴ plus the room it reflects, (1 − ε)·σ·Ta⁴; the
//!   chip turns the total into an object temperature with its emissivity setting (default
//!   1.0 in EEPROM, set to 0.98 for skin: Steketee, Phys. Med. Biol. 18 (1973) 686).
//! * Mist: while spraying, droplets in the optical path at the water's temperature fill
//!   [`MIST_PATH_FRACTION`] of the signal, and a wet spot is seen at its water film's
//!   surface (≈ the skin surface for a 20 µm film) with water's emissivity 0.96.
//! * Filter: the chip's IIR/FIR filter modelled as a first-order lag whose 95 % settling time
//!   is configurable (datasheet, "IIR and FIR settings": settling from tens of ms to above a
//!   second; 20–300 ms covers the usable settings). τ = settling/3.

/// Share of the signal from droplets in the path while spraying.
const MIST_PATH_FRACTION: f64 = 0.05;

/// Half of the MLX90614xCC field of view, degrees.
const HALF_FOV_DEG: f64 = 17.5;

/// Largest share of the signal the spot can fill.
const MAX_FILL: f64 = 0.9;

/// Emissivity of skin (Steketee 1973: 0.98 ± 0.01).
const SKIN_EMISSIVITY: f64 = 0.98;

/// Emissivity of water (8–14 µm).
const WATER_EMISSIVITY: f64 = 0.96;

/// How the sensor is fitted and set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IrSetup {
    /// 95 % settling time of the chip's filter, s (0: none).
    pub settle_s: f64,
    /// Sensor to skin, m.
    pub distance_m: f64,
    /// Treated spot, m².
    pub spot_m2: f64,
    /// The chip's emissivity setting.
    pub emissivity_setting: f64,
}

impl IrSetup {
    /// The sensor `cfg` fits, looking at its spot.
    pub(crate) fn of(cfg: &super::SimConfig) -> Self {
        Self {
            settle_s: cfg.ir_settle_ms.clamp(0.0, 5000.0) * 1e-3,
            distance_m: cfg.ir_distance_mm.clamp(5.0, 500.0) * 1e-3,
            spot_m2: cfg.spot_cm2.clamp(0.1, 1000.0) * 1e-4,
            emissivity_setting: 0.98,
        }
    }

    /// Share of the signal from the treated spot.
    pub(crate) fn fill(&self) -> f64 {
        let r = self.distance_m * HALF_FOV_DEG.to_radians().tan();
        let disc = std::f64::consts::PI * r * r;
        (self.spot_m2 / disc).min(MAX_FILL)
    }
}

/// What the sensor looks at this step, °C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IrScene {
    /// Surface of the treated spot.
    pub spot_c: f64,
    /// Surface of the untreated skin around it.
    pub around_c: f64,
    /// The room (reflected).
    pub ambient_c: f64,
    /// Water at the nozzle, if spraying.
    pub mist_c: Option<f64>,
    /// The spot is wet.
    pub wet: bool,
}

/// The sensor's filtered object temperature.
#[derive(Debug, Clone)]
pub(crate) struct IrSensor {
    setup: IrSetup,
    /// Filtered object temperature, °C.
    pub object_c: f64,
}

fn radiance(c: f64) -> f64 {
    (c + 273.15).powi(4)
}

impl IrSensor {
    /// A sensor settled on `c`.
    pub(crate) fn new(setup: IrSetup, c: f64) -> Self {
        Self { setup, object_c: c }
    }

    /// The object temperature the chip computes for `scene` without its filter, °C.
    pub(crate) fn instantaneous(&self, scene: &IrScene) -> f64 {
        let fill = self.setup.fill();
        let mist_share = if scene.mist_c.is_some() {
            MIST_PATH_FRACTION
        } else {
            0.0
        };
        let spot_e = if scene.wet {
            WATER_EMISSIVITY
        } else {
            SKIN_EMISSIVITY
        };
        let amb = radiance(scene.ambient_c);
        let part = |c: f64, e: f64| e * radiance(c) + (1.0 - e) * amb;
        let mut w = (1.0 - mist_share)
            * (fill * part(scene.spot_c, spot_e)
                + (1.0 - fill) * part(scene.around_c, SKIN_EMISSIVITY));
        if let Some(m) = scene.mist_c {
            w += mist_share * part(m, WATER_EMISSIVITY);
        }
        let e = self.setup.emissivity_setting.clamp(0.1, 1.0);
        let t4 = ((w - (1.0 - e) * amb) / e).max(0.0);
        t4.powf(0.25) - 273.15
    }

    /// Advances the filter by `dt` s towards what the chip sees in `scene`.
    pub(crate) fn step(&mut self, dt: f64, scene: &IrScene) {
        let target = self.instantaneous(scene);
        let tau = self.setup.settle_s / 3.0;
        if tau <= 0.0 {
            self.object_c = target;
        } else {
            self.object_c += (target - self.object_c) * (1.0 - (-dt / tau).exp());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(spot_cm2: f64) -> IrSetup {
        IrSetup {
            settle_s: 0.3,
            distance_m: 0.05,
            spot_m2: spot_cm2 * 1e-4,
            emissivity_setting: 0.98,
        }
    }

    fn scene(spot_c: f64) -> IrScene {
        IrScene {
            spot_c,
            around_c: 32.0,
            ambient_c: 22.0,
            mist_c: None,
            wet: false,
        }
    }

    #[test]
    fn a_uniform_dry_scene_reads_true() {
        let s = IrSensor::new(setup(100.0), 32.0);
        assert!((s.instantaneous(&scene(32.0)) - 32.0).abs() < 0.01);
    }

    #[test]
    fn warm_skin_around_a_small_spot_pulls_the_reading_up() {
        let small = IrSensor::new(setup(2.0), 32.0);
        let big = IrSensor::new(setup(100.0), 32.0);
        let (rs, rb) = (
            small.instantaneous(&scene(15.0)),
            big.instantaneous(&scene(15.0)),
        );
        assert!(rs > rb + 3.0, "{rs} vs {rb}");
        assert!(rb > 15.5 && rb < 17.5, "{rb}");
    }

    #[test]
    fn the_twin_tells_the_view_of_the_sensor_it_fits() {
        use crate::sim::{SimConfig, TwinModel};
        use crate::SkinSensorView;
        assert_eq!(
            SimConfig::default().skin_sensor_view(),
            SkinSensorView::IDEAL
        );
        // 50 cm² seen from 50 mm (a 7.8 cm² disc): the spot fills the most it can.
        let realistic = SimConfig::realistic().skin_sensor_view();
        assert_eq!(realistic.spot_fill, MAX_FILL);
        assert!((realistic.settle_s - 0.1).abs() < 1e-12, "{realistic:?}");
        // 5 cm² from 100 mm (a 31 cm² disc): a sixth of the signal.
        let far = SimConfig {
            model: TwinModel::Realistic,
            spot_cm2: 5.0,
            ir_distance_mm: 100.0,
            ir_settle_ms: 300.0,
            ..SimConfig::default()
        }
        .skin_sensor_view();
        assert!((far.spot_fill - 0.16).abs() < 0.005, "{far:?}");
        assert!((far.settle_s - 0.3).abs() < 1e-12);
    }

    #[test]
    fn the_filter_settles_to_95_percent_in_its_settling_time() {
        let mut s = IrSensor::new(setup(100.0), 32.0);
        let target = s.instantaneous(&scene(12.0));
        for _ in 0..30 {
            s.step(0.01, &scene(12.0));
        }
        let done = (32.0 - s.object_c) / (32.0 - target);
        assert!((done - 0.95).abs() < 0.01, "{done}");
    }
}
